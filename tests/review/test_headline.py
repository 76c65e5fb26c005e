"""The project page's review headline and the run page's review outcomes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from review.models import ReviewPolicy
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def test_project_page_tells_review_items_from_images(client, admin, fx):
    client.force_login(admin)

    page = client.get(reverse("labeling:project-detail", args=[fx.project.slug])).content.decode()

    # 10 succeeded captions: 6 approved, 2 rejected, img5's hosted-a one and img6's still open
    assert "Review items (captions)" in page
    assert "6 approved · 2 rejected · 0 awaiting adjudication · 2 open" in page
    # images: img1-img4 decided (img2 approved through local-b, img3 through hosted-a), img5 and
    # img6 still have an open caption
    assert "4 approved · 0 rejected · 2 in review" in page


def test_admins_see_rates_and_costs_per_route_and_every_link(client, admin, fx):
    client.force_login(admin)

    page = client.get(reverse("labeling:project-detail", args=[fx.project.slug])).content.decode()

    assert 'id="route-headline"' in page
    # hosted-a over the whole project: 3 accepted of 4 reviewed, $0.04 counted spend
    assert "75.0%" in page and "$0.0133" in page
    for name in ("review:work", "review:adjudication", "review:compare", "review:policy"):
        assert reverse(name, args=[fx.project.slug]) in page


def test_annotators_see_progress_but_rates_only_where_the_project_allows(client, fx):
    client.force_login(fx.reviewers[0])
    url = reverse("labeling:project-detail", args=[fx.project.slug])

    page = client.get(url).content.decode()
    assert "Review items (captions)" in page
    assert 'id="route-headline"' not in page
    assert reverse("review:compare", args=[fx.project.slug]) not in page
    assert reverse("review:adjudication", args=[fx.project.slug]) not in page

    ReviewPolicy.objects.update_or_create(
        project=fx.project, defaults={"annotators_see_metrics": True}
    )
    page = client.get(url).content.decode()
    assert 'id="route-headline"' in page
    assert reverse("review:compare", args=[fx.project.slug]) in page


def test_run_page_shows_review_outcomes_as_they_arrive(client, admin, fx):
    client.force_login(admin)

    page = client.get(reverse("routing:run-progress", args=[fx.run.pk])).content.decode()

    assert 'id="run-review-outcomes"' in page
    row = page.split('data-key="hosted-a"')[1].split("</tr>")[0]
    # 5 outputs, 4 reviewed, 2 as-is, 1 after edit, 1 rejected, 1 disputed
    cells = [c.split("</td>")[0].split("<")[0] for c in row.split("<td>")[1:7]]
    assert cells == ["hosted-a", "5", "4", "2", "1", "1"]
    assert "75.0%" in row
    assert f"?run={fx.run.pk}" in page  # the way to the same-images comparison


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="rollups are PostgreSQL's (big projects)"
)
def test_a_big_projects_headline_reads_the_rollup(client, admin, fx):
    from review.rollups import metric_rollup_refresh

    metric_rollup_refresh(project=fx.project)
    client.force_login(admin)

    page = client.get(reverse("labeling:project-detail", args=[fx.project.slug])).content.decode()

    assert "Review items and route figures as of" in page
    assert "6 approved · 2 rejected · 0 awaiting adjudication · 2 open" in page
    assert "4 approved · 0 rejected · 2 in review" in page
