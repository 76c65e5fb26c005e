"""Password rules beyond Django's own validators."""

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
