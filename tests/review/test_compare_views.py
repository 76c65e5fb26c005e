"""The comparison pages as an admin, an annotator and an outsider see them."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from labeling.models import Project
from review.models import ReviewPolicy
from routing.models import Caption, CaptionRun
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def compare_url(fx, name="review:compare", **params):
    query = "&".join(f"{k}={v}" for k, v in {"run": fx.run.pk, **params}.items())
    return f"{reverse(name, args=[fx.project.slug])}?{query}"


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_admin_reads_the_comparison_with_intervals(client, admin, fx, settings):
    settings.COMPARISON_MIN_IMAGES = 3
    client.force_login(admin)

    page = client.get(compare_url(fx)).content.decode()

    assert 'data-images="3"' in page
    assert "Not enough data yet" not in page
    assert "Accepted-output rate" in page and "66.7%" in page
    assert "95% CI 20.8% – 93.9% · 2 of 3" in page
    assert "$0.0150" in page and "$0.0025" in page  # cost per accepted output, a and b


def test_under_the_minimum_sample_the_page_says_so_and_shows_no_rates(client, admin, fx, settings):
    settings.COMPARISON_MIN_IMAGES = 30
    client.force_login(admin)

    page = client.get(compare_url(fx)).content.decode()

    assert "Not enough data yet" in page
    assert "3 of the 30 shared, decided images" in page
    assert "Outputs produced" in page  # counts stay
    assert "Accepted-output rate" not in page and "Cost per accepted output" not in page


def test_a_single_route_is_not_a_comparison(client, admin, fx):
    client.force_login(admin)

    page = client.get(compare_url(fx, routes=fx.a.pk)).content.decode()

    assert "Pick at least two routes to compare." in page


def test_table_csv_has_the_selector_figures(client, admin, fx):
    client.force_login(admin)

    rows = read_csv(client.get(compare_url(fx, name="review:compare-csv")))

    header, body = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert header[0] == "group" and set(body) == {"hosted-a", "local-b"}
    assert body["hosted-a"]["images"] == "3"
    assert float(body["hosted-a"]["accepted_rate"]) == pytest.approx(2 / 3, abs=1e-5)
    assert float(body["local-b"]["cost_per_accepted_usd"]) == pytest.approx(0.0025)
    assert body["local-b"]["reject_reasons"] == "hallucinated_detail=2; misread_text=1"


def test_side_by_side_filters(client, admin, fx):
    client.force_login(admin)
    img = [image.pk for image in fx.images]

    def shown(show):
        page = client.get(compare_url(fx, name="review:compare-images", show=show))
        return page.content.decode(), [
            i for i in img if f'data-image="{i}"' in page.content.decode()
        ]

    everything, ids = shown("")
    assert ids == img[:3]
    assert "A bar chart of sales." in everything  # the adjudicated text
    assert "by rita" in everything  # admins see who decided
    assert shown("differ")[1] == [img[1], img[2]]
    assert shown("one_accepted")[1] == [img[1], img[2]]
    assert shown("disputed")[1] == [img[2]]


def test_images_csv_lists_every_route_and_defuses_formulas(client, admin, fx):
    Caption.objects.filter(pk=fx.captions[1, "a"].pk).update(text="=HYPERLINK(1)")
    client.force_login(admin)

    rows = read_csv(client.get(compare_url(fx, name="review:compare-images-csv")))

    assert rows[0][:3] == ["image_id", "file_name", "hosted-a caption"]
    assert [int(r[0]) for r in rows[1:]] == [image.pk for image in fx.images[:3]]
    assert rows[1][2] == "'=HYPERLINK(1)"
    assert rows[3][rows[0].index("hosted-a outcome")] == "approved"
    assert (
        "reject (hallucinated_detail; misread_text)" in rows[3][rows[0].index("local-b verdicts")]
    )


def test_model_text_is_escaped(client, admin, fx):
    Caption.objects.filter(pk=fx.captions[2, "a"].pk).update(text="<script>alert(1)</script>")
    client.force_login(admin)

    page = client.get(compare_url(fx, name="review:compare-images")).content.decode()

    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- who may look ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["review:compare", "review:compare-csv", "review:compare-images", "review:compare-images-csv"],
)
def test_annotators_see_the_comparison_only_where_the_project_allows_it(client, fx, name):
    rita = fx.reviewers[0]
    client.force_login(rita)
    assert client.get(compare_url(fx, name=name)).status_code == 403

    ReviewPolicy.objects.update_or_create(
        project=fx.project, defaults={"annotators_see_metrics": True}
    )
    response = client.get(compare_url(fx, name=name))
    assert response.status_code == 200
    if name == "review:compare-images":
        assert "by rita" not in response.content.decode()  # names stay with admins


@pytest.mark.parametrize("name", ["review:compare", "review:compare-images-csv"])
def test_outsiders_get_a_404(client, outsider, fx, name):
    client.force_login(outsider)
    assert client.get(compare_url(fx, name=name)).status_code == 404


def test_another_projects_run_cannot_be_compared_through_this_project(client, admin, fx):
    other = Project.objects.create(name="Elsewhere", slug="elsewhere")
    foreign = CaptionRun.objects.create(project=other, kind=CaptionRun.Kind.COMPARISON)
    client.force_login(admin)

    page = client.get(compare_url(fx).replace(f"run={fx.run.pk}", f"run={foreign.pk}"))

    assert "Some filters are not valid" in page.content.decode()
    assert "data-images=" not in page.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, fx):
    response = client.get(compare_url(fx))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_without_postgresql_the_pages_say_what_they_need(client, admin, fx, monkeypatch):
    # A database the measures' SQL is not written for (neither PostgreSQL nor a first run's
    # SQLite): the pages explain instead.
    from review import metrics_views

    monkeypatch.setattr(metrics_views, "metrics_supported", lambda: False)
    client.force_login(admin)

    response = client.get(compare_url(fx))

    assert response.status_code == 501
    assert "need PostgreSQL" in response.content.decode()


def test_the_api_gives_the_latency_intervals_of_the_table(client, admin, fx):
    client.force_login(admin)
    url = reverse("api:metrics", args=[fx.project.slug])

    data = client.get(
        url, {"compare": "true", "run": fx.run.pk, "routes": [fx.a.pk, fx.b.pk]}
    ).json()

    row = next(r for r in data["rows"] if r["key"] == "hosted-a")
    # the same figures as the page (test_metrics.py works them out)
    assert (row["attempt_p50_ci"]["low"], row["attempt_p50_ci"]["high"]) == (1000, 15400)
    assert row["e2e_p50_ci"] == {"low": 1000, "high": 31000, "method": "bootstrap"}
