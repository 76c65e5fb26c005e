"""Images and flags: risk badges on the grid, filters by category and near the threshold, bulk
correction from the grid, and the image page's captions and reviews."""

from __future__ import annotations

import re
import uuid

import pytest

from labeling.models import Membership
from review.models import RiskCorrection, RiskFlag
from review.services import queue
from review.services.items import review_items_sync
from review.services.verdict import verdict_submit
from tests.factories import CaptionFactory, ImageFactory, RouteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user(username="pam", password="project-admin-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


def _flag(image, category, score, flagged):
    RiskFlag.objects.create(
        image=image, category=category, score=score, flagged=flagged, analyser_version="t"
    )


@pytest.fixture
def images(project):
    """A clear chart, a borderline screenshot, a photo; thresholds are the default 0.5."""
    chart = ImageFactory(project=project, original_name="sales-chart.png")
    _flag(chart, "chart", 0.95, True)
    borderline = ImageFactory(project=project, original_name="maybe-screen.png")
    _flag(borderline, "screenshot", 0.45, False)
    photo = ImageFactory(project=project, original_name="beach.png")
    _flag(photo, "chart", 0.05, False)
    return chart, borderline, photo


def _names(client, project, query="") -> list[str]:
    page = client.get(f"/projects/{project.slug}/{query}").content.decode()
    return re.findall(r'<div class="name">([^<]+)</div>', page)


def test_tiles_carry_risk_badges_and_the_grid_filters_by_risk(client, project, annotator, images):
    client.force_login(annotator)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    tile = page[page.index(f'data-image="{images[0].pk}"') :]
    assert '<span class="badge risk">Chart</span>' in tile[: tile.index("</a>")]
    assert sorted(_names(client, project)) == ["beach.png", "maybe-screen.png", "sales-chart.png"]
    assert _names(client, project, "?risk=chart") == ["sales-chart.png"]
    assert _names(client, project, "?risk=any") == ["sales-chart.png"]
    assert _names(client, project, "?risk=screenshot") == []
    # Near the threshold: 0.45 is within 0.1 of 0.5; 0.95 and 0.05 are not.
    assert _names(client, project, "?threshold=on") == ["maybe-screen.png"]
    assert _names(client, project, "?risk=chart&threshold=on") == []


def test_an_admin_corrects_many_images_at_once_and_the_grid_follows(
    client, project, project_admin, annotator, images
):
    chart, borderline, photo = images
    client.force_login(project_admin)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert 'form="bulk-risk"' in page
    response = client.post(
        f"/review/projects/{project.slug}/risk/",
        {
            "images": [borderline.pk, photo.pk],
            "category": "screenshot",
            "flagged": "1",
            "note": "UI captures",
            "query": "risk=screenshot",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/projects/{project.slug}/?risk=screenshot"
    assert "Screenshot: 2 images marked flagged." in response.content.decode()
    assert sorted(_names(client, project, "?risk=screenshot")) == ["beach.png", "maybe-screen.png"]
    assert (
        RiskCorrection.objects.filter(corrected_by=project_admin, note="UI captures").count() == 2
    )

    # Annotators cannot; images of another project are ignored.
    other = ImageFactory(original_name="elsewhere.png")
    client.force_login(annotator)
    assert (
        client.post(
            f"/review/projects/{project.slug}/risk/",
            {"images": [chart.pk], "category": "chart", "flagged": "0"},
        ).status_code
        == 403
    )
    client.force_login(project_admin)
    client.post(
        f"/review/projects/{project.slug}/risk/",
        {"images": [other.pk], "category": "chart", "flagged": "1"},
    )
    assert not RiskCorrection.objects.filter(image=other).exists()


def test_annotators_see_no_bulk_correction(client, project, annotator, images):
    client.force_login(annotator)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert "bulk-risk" not in page and 'name="images"' not in page


def test_the_image_page_shows_its_captions_and_reviews(
    client, project, project_admin, annotator, django_user_model
):
    image = ImageFactory(project=project)
    route = RouteFactory(name="florence-local")
    CaptionFactory(image=image, text="A cat on a mat.", route=route, model_name="florence-2")
    CaptionFactory(image=image, text="A dog on a rug.", model_name="blip2")
    review_items_sync(project=project)
    lease = queue.lease_claim_next(project=project, reviewer=annotator)
    verdict_submit(
        lease=lease,
        reviewer=annotator,
        decision="reject",
        reasons=["wrong_subject"],
        idempotency_key=uuid.uuid4(),
    )
    other = django_user_model.objects.create_user(username="bea", password="x-pass-123456")
    Membership.objects.create(project=project, user=other, role=Membership.Role.ANNOTATOR)
    lease = queue.lease_claim_next(project=project, reviewer=other)
    verdict_submit(
        lease=lease,
        reviewer=other,
        decision="edit",
        text="A grey cat.",
        idempotency_key=uuid.uuid4(),
    )

    client.force_login(project_admin)
    page = re.sub(r"\s+", " ", client.get(f"/images/{image.pk}/").content.decode())
    assert "Caption 1 of 2" in page and "Caption 2 of 2" in page
    assert "A cat on a mat." in page and "A dog on a rug." in page
    assert "florence-local (florence-2)" in page
    assert "Wrong subject" in page and "“A grey cat.”" in page
    assert "<strong>bea</strong>" in page

    # An annotator sees the captions and their own verdict, not the others' (nor model names).
    client.force_login(annotator)
    page = re.sub(r"\s+", " ", client.get(f"/images/{image.pk}/").content.decode())
    assert "A cat on a mat." in page and "Wrong subject" in page
    assert "<strong>bea</strong>" not in page and "florence-2" not in page
    # The approved text is the project's result, not anyone's verdict: everyone sees it.
    assert "Approved text: A grey cat." in re.sub(r"<[^>]+>", "", page)
