"""The adjudication page of an item nobody needs to decide any more says so, instead of offering a
form whose answer would only be refused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from review.models import ReviewItem
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


def test_a_settled_item_shows_its_decision_and_no_form(client, project, admin):
    fx = build(project, admin)
    settled = ReviewItem.objects.get(caption=fx.captions[(3, "a")])
    assert settled.state == "approved"
    client.force_login(admin)

    page = client.get(reverse("review:adjudicate", args=[settled.pk])).content.decode()

    assert 'id="already-decided"' in page and 'id="adjudicate-form"' not in page
    assert "approved it" in page and "A bar chart of sales." in page
    refused = client.post(
        reverse("review:adjudicate", args=[settled.pk]), {"decision": "reject", "text": ""}
    )
    assert refused.status_code == 200
    assert "not waiting for a decision" in refused.content.decode()
    settled.refresh_from_db()
    assert settled.state == "approved"
