"""Big projects read their figures from rollups: the same figures as live, percentiles within a
histogram bin, rebuilt by the periodic task and the management command."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from review import rollups, tasks
from review.dashboards import dashboard_plots
from review.metrics import (
    IMAGE_FILTERS,
    Scope,
    comparison_image_count,
    comparison_image_page,
    route_metrics,
)
from review.models import MetricRollupState
from review.rollups import histogram_percentile
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db

COUNTS = (
    "produced",
    "reviewed",
    "accepted_as_is",
    "accepted_after_edit",
    "rejected",
    "awaiting_adjudication",
    "adjudicated",
    "attempts",
    "retries",
    "timeouts",
    "errors",
    "fallbacks",
    "malformed",
    "multi_reviewed",
    "agreed",
)


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def scopes(fx):
    return {
        "project": Scope(project=fx.project),
        "run": Scope(project=fx.project, run_id=fx.run.pk),
        "comparison": Scope(
            project=fx.project, run_id=fx.run.pk, route_ids=(fx.a.pk, fx.b.pk), same_images=True
        ),
        "model": Scope(project=fx.project, group_by="model"),
        "charts": Scope(project=fx.project, run_id=fx.run.pk, risk_category="chart"),
    }


def test_rollup_figures_equal_live_figures(fx):
    live = {name: route_metrics(scope=scope) for name, scope in scopes(fx).items()}
    assert all(table.as_of is None for table in live.values())

    rollups.metric_rollup_refresh(project=fx.project)

    for name, scope in scopes(fx).items():
        rolled = route_metrics(scope=scope)
        assert rolled.as_of is not None, name
        assert [r.key for r in rolled.rows] == [r.key for r in live[name].rows], name
        for before, after in zip(live[name].rows, rolled.rows, strict=True):
            for field in COUNTS:
                assert getattr(after, field) == getattr(before, field), (name, after.key, field)
            assert after.spend_usd == pytest.approx(before.spend_usd), (name, after.key)
            assert after.reject_reasons == before.reject_reasons
            if before.cost_per_accepted.usd is not None:
                assert after.cost_per_accepted.usd == pytest.approx(before.cost_per_accepted.usd)
            if before.char_effort is not None:
                assert after.char_effort == pytest.approx(before.char_effort)
            # Percentiles come from log bins; on eight values the live figure interpolates
            # between two observations far apart, so only the order of magnitude is checked
            # here (accuracy on many values: test_binned_percentiles_are_within_a_bin).
            for p in ("attempt_p50_ms", "e2e_p50_ms", "review_ms_median"):
                exact, binned = getattr(before, p), getattr(after, p)
                if exact is not None:
                    assert binned == pytest.approx(exact, rel=0.5), (name, after.key, p)
    assert route_metrics(scope=scopes(fx)["comparison"]).images == 3


def test_filters_the_rollup_does_not_keep_are_computed_live(fx):
    rollups.metric_rollup_refresh(project=fx.project)

    by_reviewer = route_metrics(scope=Scope(project=fx.project, reviewer_id=fx.reviewers[1].pk))
    across_runs = Scope(
        project=fx.project,
        route_ids=(fx.a.pk, fx.b.pk),
        prompt=fx.run.prompt,
        same_images=True,
    )
    one_route = Scope(project=fx.project, run_id=fx.run.pk, route_ids=(fx.a.pk,))

    assert by_reviewer.as_of is None
    assert route_metrics(scope=across_runs).as_of is None
    assert route_metrics(scope=one_route).as_of is not None  # a route filter it keeps


def test_side_by_side_reads_the_same_images_from_the_rollup(fx):
    comparison = scopes(fx)["comparison"]
    charts = Scope(
        project=fx.project,
        run_id=fx.run.pk,
        route_ids=(fx.a.pk, fx.b.pk),
        same_images=True,
        risk_category="chart",
    )
    cases = [(comparison, show) for show in IMAGE_FILTERS] + [(charts, "")]
    live = [comparison_image_page(scope=scope, show=show) for scope, show in cases]
    counts = [comparison_image_count(scope=scope, show=show) for scope, show in cases]

    rollups.metric_rollup_refresh(project=fx.project)

    assert [comparison_image_page(scope=scope, show=show) for scope, show in cases] == live
    assert [comparison_image_count(scope=scope, show=show) for scope, show in cases] == counts
    assert counts == [3, 2, 2, 1, 1]


def test_dashboards_read_the_same_figures_from_the_rollup(fx, admin):
    def tables():
        plots = dashboard_plots(scope=Scope(project=fx.project), viewer=admin, names_visible=True)
        return {plot.id: plot.rows for plot in plots}

    live = tables()
    rollups.metric_rollup_refresh(project=fx.project)
    rolled = tables()

    for plot in ("rate", "latency", "spend", "throughput", "risk"):
        assert len(rolled[plot]) == len(live[plot]), plot
        for a, b in zip(live[plot], rolled[plot], strict=True):
            assert [str(x) for x in a] == [str(x) for x in b] or all(
                x == pytest.approx(y) for x, y in zip(a, b, strict=True)
            ), plot


def test_pages_say_when_the_figures_were_taken(client, admin, fx):
    rollups.metric_rollup_refresh(project=fx.project)
    client.force_login(admin)

    compare = client.get(reverse("review:compare", args=[fx.project.slug]) + f"?run={fx.run.pk}")
    dashboard = client.get(reverse("review:dashboard", args=[fx.project.slug]))

    assert 'id="as-of"' in compare.content.decode()
    assert 'id="as-of"' in dashboard.content.decode()


def test_only_big_projects_are_rolled_up_by_the_periodic_task(fx, settings):
    settings.METRICS_ROLLUP_MIN_CAPTIONS = 1_000
    assert rollups.projects_to_roll_up() == []

    settings.METRICS_ROLLUP_MIN_CAPTIONS = 10  # the fixture has 10 review items
    assert rollups.projects_to_roll_up() == [fx.project]

    rebuilt = tasks.metric_rollup_refresh.apply(kwargs={"project_id": fx.project.pk}).get()

    assert rebuilt == 11  # every caption, the failed one included
    assert MetricRollupState.objects.get(project=fx.project).captions == 11
    # once rolled up, a project stays so even if it shrinks below the threshold
    settings.METRICS_ROLLUP_MIN_CAPTIONS = 1_000
    assert rollups.projects_to_roll_up() == [fx.project]


def test_the_command_rebuilds_one_project(fx):
    out = StringIO()
    call_command("metrics_rollup", "--project", fx.project.slug, stdout=out)

    line = json.loads(out.getvalue())
    assert (line["project"], line["captions"]) == (fx.project.slug, 11)


def test_histogram_percentiles():
    assert histogram_percentile({}, 0.5) is None
    low, high = rollups.bin_bounds(50)
    assert low <= histogram_percentile({50: 10}, 0.5) <= high
    # the 95th percentile of 95 fast and 5 slow values sits in the fast bin's top
    assert histogram_percentile({10: 95, 80: 5}, 0.95) <= rollups.bin_bounds(10)[1]


def test_binned_percentiles_are_within_a_bin_of_the_exact_ones():
    import math

    import numpy as np

    values = np.random.default_rng(5).lognormal(mean=7.0, sigma=1.0, size=20_000)
    counts: dict[int, int] = {}
    for v in values:
        b = min(
            max(math.floor(math.log(v) / math.log(rollups.BIN_HIGH_MS) * rollups.BINS) + 1, 1), 96
        )
        counts[b] = counts.get(b, 0) + 1
    for q in (0.5, 0.95):
        exact = float(np.quantile(values, q))
        assert histogram_percentile(counts, q) == pytest.approx(exact, rel=0.08)
