"""Views of the routing app."""
