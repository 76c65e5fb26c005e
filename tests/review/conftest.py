"""Fixtures for the review queue tests: captions waiting for review, and project reviewers."""

from __future__ import annotations

import pytest

from labeling.models import Membership
from review.models import ReviewItem, RiskFlag
from review.services.items import review_items_sync
from tests.factories import CaptionFactory, ImageFactory, UserFactory


@pytest.fixture
def make_items():
    """make_items(project, n, risky=False, texts=None) -> review items, oldest first."""

    def make(project, n, *, risky=False, texts=None):
        captions = []
        for i in range(n):
            image = ImageFactory(project=project)
            if risky:
                RiskFlag.objects.create(
                    image=image,
                    category="chart",
                    score=0.97,
                    flagged=True,
                    reason="Axes and bars found.",
                    analyser_version="test",
                )
            text = texts[i] if texts else f"A photo of thing number {image.pk}."
            captions.append(CaptionFactory(image=image, text=text))
        review_items_sync(project=project)
        return list(ReviewItem.objects.filter(caption__in=captions).order_by("queued_at", "id"))

    return make


@pytest.fixture
def make_reviewers():
    """make_reviewers(project, n) -> annotators who are members of the project."""

    def make(project, n, prefix="rev"):
        users = []
        for i in range(n):
            user = UserFactory(username=f"{prefix}{i}-{project.slug}")
            user.save()  # the factory sets the password without saving it
            Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
            users.append(user)
        return users

    return make
