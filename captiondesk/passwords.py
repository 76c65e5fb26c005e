"""Password rules beyond Django's own validators, and the username login throttling counts."""

from __future__ import annotations

from difflib import SequenceMatcher

from django.core.exceptions import ValidationError


class ProductNameSimilarityValidator:
    """Refuses passwords that are this product's name or close to it ('captiondesk',
    'CaptionDesk1'): the first word an attacker tries on a captiondesk login page. A long
    passphrase that merely contains the name passes."""

    names = ("captiondesk", "caption desk")

    def __init__(self, max_similarity: float = 0.7) -> None:
        self.max_similarity = max_similarity

    def validate(self, password: str, user=None) -> None:
        lowered = password.lower()
        for name in self.names:
            if SequenceMatcher(a=lowered, b=name).ratio() >= self.max_similarity:
                raise ValidationError(
                    "This password is too similar to the name of this site.",
                    code="password_too_similar",
                )

    def get_help_text(self) -> str:
        return "Your password can't be the name of this site or close to it."


def login_username(request, credentials: dict | None = None) -> str | None:
    """The username django-axes counts failures against, cut to the longest a user can have:
    axes stores it in a 255-character column, and a 6,000-character guess was a 500."""
    source = credentials if credentials else getattr(request, "data", request.POST)
    username = source.get("username")
    return username[:150] if isinstance(username, str) else username
