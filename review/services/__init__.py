"""Writes of the review app, one module per concern (queue, verdict, items, policy, effort)."""
