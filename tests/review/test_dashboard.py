"""Dashboards: every plot drawn with its table and CSV, with no data, one day of data, and the
figures the hand-worked fixture gives (metrics_fixture.py)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from labeling.models import Project
from review.charts import bar_chart, line_chart, nice_ticks
from review.models import ReviewPolicy
from routing.models import CaptionRun
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def plot_csv(client, project, plot, query=""):
    url = reverse("review:dashboard-csv", args=[project.slug, plot]) + query
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_every_plot_is_drawn_with_its_table_and_csv(client, admin, fx):
    client.force_login(admin)

    page = client.get(reverse("review:dashboard", args=[fx.project.slug])).content.decode()

    for plot in ("rate", "cost", "latency", "spend", "throughput", "risk"):
        section = page.split(f'id="plot-{plot}"')[1].split("</section>")[0]
        assert "<svg" in section and 'class="mark"' in section, plot
        assert "No data yet for these filters" not in section, plot
        assert "data-plot-empty" not in section, plot
        assert reverse("review:dashboard-csv", args=[fx.project.slug, plot]) in section
        assert f'data-plot-table="{plot}"' in section


def test_plot_tables_hold_the_selector_figures(client, admin, fx):
    fx.run.budget_usd = Decimal("1")
    fx.run.save()
    client.force_login(admin)
    today = date.today().isoformat()

    rate = plot_csv(client, fx.project, "rate")
    assert rate[0] == ["route", "day", "accepted", "reviewed", "rate"]
    assert ["hosted-a", today, "3", "4", "0.75"] in rate

    cost = {row[0]: row for row in plot_csv(client, fx.project, "cost")[1:]}
    assert float(cost["hosted-a"][3]) == pytest.approx(0.04 / 3)

    latency = plot_csv(client, fx.project, "latency")[1:]
    attempts = {
        key: sum(int(r[2]) for r in latency if r[0] == key) for key in ("hosted-a", "local-b")
    }
    assert attempts == {"hosted-a": 7, "local-b": 8}

    spend = plot_csv(client, fx.project, "spend")
    # hosted-a $0.05, local-b 6.2 s + the chain's 1 s of GPU time
    assert float(spend[-1][2]) == pytest.approx(0.0572)
    page = client.get(reverse("review:dashboard", args=[fx.project.slug])).content.decode()
    assert "budget $1.0000" in page

    throughput = plot_csv(client, fx.project, "throughput")
    assert ["rita", today, "8", "2"] in throughput and ["sam", today, "2", "2"] in throughput

    risk = {row[0]: row for row in plot_csv(client, fx.project, "risk")[1:]}
    assert risk["Chart"][1:] == ["1", "0.5"] and risk["Not flagged"][1:] == ["1", "0.5"]


def test_filters_narrow_the_plots(client, admin, fx):
    client.force_login(admin)

    charts_only = plot_csv(client, fx.project, "risk", "?risk=chart")
    assert {row[0]: row[1] for row in charts_only[1:]}["Chart"] == "1"
    assert {row[0]: row[1] for row in charts_only[1:]}["Not flagged"] == "0"
    one_route = plot_csv(client, fx.project, "latency", f"?routes={fx.a.pk}")
    assert {row[0] for row in one_route[1:]} == {"hosted-a"}


def test_a_project_without_data_draws_empty_plots(client, admin):
    empty = Project.objects.create(name="Fresh", slug="fresh")
    client.force_login(admin)

    page = client.get(reverse("review:dashboard", args=[empty.slug])).content.decode()

    assert page.count("No data yet for these filters") == 6
    assert plot_csv(client, empty, "rate") == [["route", "day", "accepted", "reviewed", "rate"]]
    # No open, empty "Table (0 rows)": each plot says in a line that it has no data yet, and a
    # (collapsed) table is there only where a plot has rows to show.
    assert 'plot-table" open' not in page
    assert "Table (0 rows)" not in page
    for plot in ("rate", "cost", "latency", "spend", "throughput", "risk"):
        section = page.split(f'id="plot-{plot}"')[1].split("</section>")[0]
        assert f'data-plot-empty="{plot}"' in section, plot
        assert "No data yet for this plot" in section, plot


def test_annotators_see_dashboards_where_allowed_without_other_reviewers_names(client, fx):
    client.force_login(fx.reviewers[1])
    url = reverse("review:dashboard", args=[fx.project.slug])
    assert client.get(url).status_code == 403

    ReviewPolicy.objects.update_or_create(
        project=fx.project, defaults={"annotators_see_metrics": True}
    )
    throughput = plot_csv(client, fx.project, "throughput")
    names = {row[0] for row in throughput[1:]}
    assert names == {"you", "reviewer 1"}  # sam sees himself; rita stays anonymous


def test_outsiders_and_unknown_plots_get_404(client, outsider, admin, fx):
    client.force_login(outsider)
    assert client.get(reverse("review:dashboard", args=[fx.project.slug])).status_code == 404
    client.force_login(admin)
    url = reverse("review:dashboard-csv", args=[fx.project.slug, "nope"])
    assert client.get(url).status_code == 404


def test_another_projects_run_is_not_a_filter_here(client, admin, fx):
    other = Project.objects.create(name="Elsewhere", slug="elsewhere")
    foreign = CaptionRun.objects.create(project=other, kind=CaptionRun.Kind.CHAIN)
    client.force_login(admin)

    url = reverse("review:dashboard", args=[fx.project.slug]) + f"?run={foreign.pk}"
    assert "Some filters are not valid" in client.get(url).content.decode()


# --- the chart geometry ------------------------------------------------------------------------


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 0.0572)[-1] >= 0.0572
    assert len(nice_ticks(5, 5)) >= 2  # a flat series still gets an axis


def test_one_point_is_drawn_in_the_middle_and_no_data_draws_a_frame():
    one = line_chart("t", [("a", [(date(2026, 1, 1), 0.5)])], y_format=str, x_format=str, y_max=1.0)
    (mark,) = one.series[0].marks
    assert mark.x == pytest.approx((one.plot_left + one.plot_right) / 2)
    assert not one.empty
    assert line_chart("t", [], y_format=str, x_format=str).empty
    assert bar_chart("t", [("a", None, None)], y_format=str).empty


def test_bars_carry_their_interval():
    chart = bar_chart("t", [("a", 2.0, (1.0, 3.0)), ("b", 1.0, None)], y_format=str)
    a, b = (s.marks[0] for s in chart.series)
    assert a.high < a.y < a.low  # pixels grow downwards
    assert b.low is None
    assert a.h > b.h


def test_marks_are_drawn_as_escaped_svg_with_one_decimal():
    chart = bar_chart("t", [("<b>a</b>", 2.0, (1.0, 3.0)), ("b", 1.0, None)], y_format=str)
    a, b = (s.marks[0] for s in chart.series)
    svg = str(a.bar)
    assert f'x="{a.x:.1f}"' in svg and f'height="{a.h:.1f}"' in svg
    assert "&lt;b&gt;a&lt;/b&gt;" in svg and "<b>" not in svg  # the title is escaped
    assert f'class="whisker" x1="{a.centre:.1f}"' in svg and f'y2="{a.high:.1f}"' in svg
    assert "whisker" not in str(b.bar)
    line = line_chart("t", [("a & b", [(1.0, 0.25)])], y_format=str, x_format=str, y_max=1.0)
    (point,) = line.series[0].marks
    assert str(point.circle).startswith(f'<circle class="mark" cx="{point.x:.1f}"')
    assert "a &amp; b" in str(point.circle)
    assert line.y_ticks[0].px == f"{line.y_ticks[0].pos:.1f}"
