"""Finding the work: what an annotator and an admin see on the project page and the queue list."""

from __future__ import annotations

import re

import pytest

from labeling.models import Membership
from review.models import RiskFlag
from review.services.items import review_items_sync
from review.services.queue import lease_claim_next
from tests.factories import CaptionFactory, ImageFactory, RouteFactory, UserFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_an_annotator_sees_the_way_to_the_queue_and_no_admin_hints(client, project, annotator):
    RouteFactory(name="gpt4o-eden")
    client.force_login(annotator)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert f'href="/review/projects/{project.slug}/"' in page
    assert f'href="/projects/{project.slug}/guidelines/"' in page
    # Model routes, keys and GPU hints are for admins to act on.
    assert "Model routes" not in page and "gpt4o-eden" not in page
    assert "Import images" not in page and "/members/" not in page


def test_an_admin_sees_routes_team_export_and_the_review_pages(client, project, admin):
    RouteFactory(name="gpt4o-eden")
    client.force_login(admin)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    for href in ("/members/", "/export/", "/import/", "/review/projects/street-photos/policy/"):
        assert href in page, href
    assert "Model routes" in page and "gpt4o-eden" in page


def test_image_counts_are_in_words(client, project, annotator):
    ImageFactory(project=project, status="in_review")
    ImageFactory(project=project, status="in_review")
    ImageFactory(project=project, status="new")
    client.force_login(annotator)
    text = _text(client.get(f"/projects/{project.slug}/"))
    assert "Images: 1 new · 0 captioned · 2 in review · 0 approved · 0 rejected" in text
    assert "in_review" not in text


def test_the_queue_counts_captions_waiting_before_and_after_the_first_claim(
    client, project, annotator
):
    # Three images, two models each: six captions. One image is a chart needing two reviews.
    images = [ImageFactory(project=project) for _ in range(3)]
    for image in images:
        CaptionFactory(image=image, model_name="blip2")
        CaptionFactory(image=image, model_name="florence2")
    RiskFlag.objects.create(
        image=images[0], category="chart", score=0.9, flagged=True, analyser_version="t"
    )
    client.force_login(annotator)

    def shown() -> str:
        return _text(client.get("/review/"))

    # Nothing has been queued yet, and still the six captions are counted.
    assert "Street photos 6 0" in shown()
    review_items_sync(project=project)
    assert "Street photos 6 (8 reviews) 0" in shown()
    # The chart comes first (risky first). It is in one reviewer's hands and still needs a
    # second one, so six captions still wait for somebody; seven reviews are still to give.
    lease_claim_next(project=project, reviewer=annotator)
    assert "Street photos 6 (7 reviews) 1 " in shown()
    # A second reviewer takes the chart's other slot: now five captions wait.
    bea = UserFactory(username="bea")
    Membership.objects.create(project=project, user=bea, role="annotator")
    lease_claim_next(project=project, reviewer=bea)
    assert "Street photos 5 (6 reviews) 2 " in shown()


def test_every_list_reachable_from_the_navigation(client, project, annotator):
    Membership.objects.filter(user=annotator).update(role="annotator")
    client.force_login(annotator)
    home = client.get("/", follow=True).content.decode()
    assert 'href="/review/"' in home  # the Review queues, from every page's top bar
    assert f'href="/review/projects/{project.slug}/"' in home
