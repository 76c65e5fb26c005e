"""Views of the review app."""
