"""Reject reasons read as words wherever a person sees them, not as their stored codes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


def test_the_side_by_side_page_names_reject_reasons_in_words(client, project, admin):
    fx = build(project, admin)
    client.force_login(admin)
    url = reverse("review:compare-images", args=[project.slug])
    page = client.get(url, {"run": fx.run.pk}).content.decode()
    assert "Wrong subject" in page and "wrong_subject" not in page
