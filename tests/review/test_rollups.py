"""Big projects read their figures from rollups: the same figures as live, percentiles within a
histogram bin, rebuilt by the periodic task and the management command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from review import rollups, tasks
from review.dashboards import dashboard_plots
from review.metrics import (
    IMAGE_FILTERS,
    Scope,
    comparison_image_count,
    comparison_image_page,
    route_metrics,
)
from review.models import ImageRollup, MetricRollupState
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
    found = build(project, admin)
    # The project's current prompt is the one its captions used (comparisons across runs).
    found.project.caption_prompt = found.run.prompt
    found.project.save(update_fields=["caption_prompt"])
    return found


def scopes(fx):
    rita, sam = (r.pk for r in fx.reviewers)
    today = timezone.now().date()
    both = (fx.a.pk, fx.b.pk)
    prompt = fx.run.prompt
    return {
        "project": Scope(project=fx.project),
        "run": Scope(project=fx.project, run_id=fx.run.pk),
        "comparison": Scope(
            project=fx.project, run_id=fx.run.pk, route_ids=(fx.a.pk, fx.b.pk), same_images=True
        ),
        "model": Scope(project=fx.project, group_by="model"),
        "charts": Scope(project=fx.project, run_id=fx.run.pk, risk_category="chart"),
        # the reviewer filter, and comparisons of a chosen set of routes across runs
        "sam": Scope(project=fx.project, reviewer_id=sam),
        "rita's run": Scope(project=fx.project, run_id=fx.run.pk, reviewer_id=rita),
        "rita's comparison": Scope(
            project=fx.project, run_id=fx.run.pk, route_ids=both, same_images=True, reviewer_id=rita
        ),
        "sam's comparison": Scope(
            project=fx.project, run_id=fx.run.pk, route_ids=both, same_images=True, reviewer_id=sam
        ),
        "across runs": Scope(project=fx.project, route_ids=both, prompt=prompt, same_images=True),
        "across runs, sam": Scope(
            project=fx.project, route_ids=both, prompt=prompt, same_images=True, reviewer_id=sam
        ),
        "across runs, charts": Scope(
            project=fx.project,
            route_ids=both,
            prompt=prompt,
            same_images=True,
            risk_category="chart",
        ),
        "one route of the run": Scope(project=fx.project, run_id=fx.run.pk, route_ids=(fx.a.pk,)),
        # a date range reads the per-day histograms, the others their sums over days
        "today": Scope(project=fx.project, run_id=fx.run.pk, date_from=today, date_to=today),
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
    # The slices are not empty: what each scope keeps, worked out from metrics_fixture's table.
    assert live["across runs"].row("hosted-a").reviewed == 3  # img1-img3, as in the run
    # sam reviewed img3 only (both routes): a comparison of his outputs is that image
    assert [(r.key, r.reviewed) for r in live["sam's comparison"].rows] == [
        ("hosted-a", 1),
        ("local-b", 1),
    ]
    # rita claimed every item first: a verdict (img5's a skip) on all five hosted-a outputs
    assert live["rita's run"].row("hosted-a").produced == 5


def test_histogram_totals_are_the_daily_histograms_summed(fx):
    from django.db.models import Sum

    from review.models import HistogramRollup, HistogramTotal

    rollups.metric_rollup_refresh(project=fx.project)

    keys = ("route", "kind", "bin", "reviewer", "run_routes", "prompt_routes")
    daily = HistogramRollup.objects.values(*keys).annotate(n=Sum("n")).order_by(*keys)
    totals = HistogramTotal.objects.values(*keys).annotate(n=Sum("n")).order_by(*keys)
    assert list(totals) == list(daily) and len(daily) > 10
    assert rollups.histogram_table(scopes(fx)["today"]) == "review_histogramrollup"
    assert rollups.histogram_table(scopes(fx)["run"]) == "review_histogramtotal"


def test_filters_the_rollup_does_not_keep_are_computed_live(fx):
    rollups.metric_rollup_refresh(project=fx.project)
    both = (fx.a.pk, fx.b.pk)

    other_prompt = Scope(
        project=fx.project, route_ids=both, prompt="Another prompt.", same_images=True
    )
    no_prompt = Scope(project=fx.project, route_ids=both, same_images=True)

    assert route_metrics(scope=other_prompt).as_of is None
    assert route_metrics(scope=no_prompt).as_of is None
    # a new prompt on the project: the rollup knows the old one's captions only
    fx.project.caption_prompt = "A new prompt."
    fx.project.save(update_fields=["caption_prompt"])
    new_prompt = Scope(project=fx.project, route_ids=both, prompt="A new prompt.", same_images=True)
    assert route_metrics(scope=new_prompt).as_of is None


def test_reviewer_and_cross_run_rollup_reads_use_indexes(fx):
    """EXPLAIN of the rollup read behind a reviewer's comparison across runs: an index on the
    project and reviewer, no sequential scan of the rollup table (planner told to avoid one,
    as it would on a big table)."""
    from django.db import connection

    from review.rollups import rollup_where

    rollups.metric_rollup_refresh(project=fx.project)
    scope = scopes(fx)["across runs, sam"]
    where, params = rollup_where(scope)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            f"EXPLAIN SELECT o.route_id, sum(o.reviewed) FROM review_outcomerollup o"  # noqa: S608
            f" WHERE {where} GROUP BY 1",
            params,
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "outcomerollup_reviewer" in plan, plan


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

    # A rollup's counts are kept until the next rebuild: no second count of its images.
    with CaptureQueriesContext(connection) as queries:
        again = [comparison_image_count(scope=scope, show=show) for scope, show in cases]
    assert again == counts
    assert not [q["sql"] for q in queries if "review_imagerollup" in q["sql"]]
    # A rebuild (a new rollup, taken later) counts again, and sees what changed.
    ImageRollup.objects.filter(project=fx.project).update(shared=False)
    MetricRollupState.objects.filter(project=fx.project).update(
        refreshed_at=timezone.now() + timedelta(seconds=1)
    )
    assert comparison_image_count(scope=comparison) == 0
    rollups.metric_rollup_refresh(project=fx.project)
    assert comparison_image_count(scope=comparison) == 3


def test_side_by_side_of_a_reviewer_and_across_runs_reads_the_rollup(fx):
    """The reviewer filter and a chosen set of routes across runs: the same pages of images (with
    the same captions in each cell) and counts from ImageRouteRollup as live, for every image
    filter; a date range still computes live."""
    from review.metrics import _image_slice_sql, comparison_image_rows

    names = (
        "rita's comparison",
        "sam's comparison",
        "across runs",
        "across runs, sam",
        "across runs, charts",
    )
    cases = [(scopes(fx)[name], show) for name in names for show in IMAGE_FILTERS]

    def rows(scope, show):
        page = comparison_image_page(scope=scope, show=show)
        cells = [
            (row.image.pk, {k: [c.caption.pk for c in v] for k, v in row.cells.items()})
            for row in comparison_image_rows(scope=scope, page=page)
        ]
        return page, cells

    live = [rows(scope, show) for scope, show in cases]
    counts = [comparison_image_count(scope=scope, show=show) for scope, show in cases]
    assert all(_image_slice_sql(scope, show) is None for scope, show in cases)

    rollups.metric_rollup_refresh(project=fx.project)

    with CaptureQueriesContext(connection) as queries:
        rolled = [rows(scope, show) for scope, show in cases]
        rolled_counts = [comparison_image_count(scope=scope, show=show) for scope, show in cases]
    assert rolled == live
    assert rolled_counts == counts
    # Not empty: sam reviewed img3 on both routes; across runs, img1-img3 (as in the run).
    keys = [(name, show) for name in names for show in IMAGE_FILTERS]
    by_name = dict(zip(keys, counts, strict=True))
    assert by_name[("sam's comparison", "")] == 1
    assert by_name[("across runs", "")] == 3
    assert sum(counts) > 5
    reads = [q["sql"] for q in queries if "review_imagerouterollup" in q["sql"]]
    assert len(reads) >= 2 * len(cases)  # every page and count read the rollup
    assert not [q["sql"] for q in queries if "count(DISTINCT caps.arm)" in q["sql"]]  # no live

    # EXPLAIN: the page of a reviewer's images reads the table's index on project, reviewer and
    # image (planner told to avoid a sequential scan, as it would on a big table).
    sql, params = _image_slice_sql(scopes(fx)["across runs, sam"], "")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql} ORDER BY image_id LIMIT 20", params)  # noqa: S608
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "imagerouterollup_image" in plan, plan

    today = timezone.now().date()
    dated = Scope(
        project=fx.project,
        route_ids=(fx.a.pk, fx.b.pk),
        prompt=fx.run.prompt,
        same_images=True,
        date_from=today,
    )
    assert _image_slice_sql(dated, "") is None


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


def test_a_periodic_rebuild_skips_while_another_runs(fx):
    """A rebuild slower than the interval: the next tick's task finds the project's lock taken
    (here by another connection) and returns at once instead of queueing behind it."""
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    other = psycopg.connect(
        host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"]
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [rollups._REFRESH_LOCK, fx.project.pk])
        assert tasks.metric_rollup_refresh.apply(kwargs={"project_id": fx.project.pk}).get() == 0
        assert not MetricRollupState.objects.filter(project=fx.project).exists()
    finally:
        other.close()
    assert tasks.metric_rollup_refresh.apply(kwargs={"project_id": fx.project.pk}).get() == 11


def test_the_command_rebuilds_one_project(fx):
    out = StringIO()
    call_command("metrics_rollup", "--project", fx.project.slug, stdout=out)

    line = json.loads(out.getvalue())
    assert (line["project"], line["captions"]) == (fx.project.slug, 11)


def test_rollup_rows_go_with_what_they_point_to(fx):
    """The rollups' keys have no database constraint (a rebuild's deferred checks cost about
    30 s at 1M verdicts): Django's cascade still deletes them with a run and with the project
    (reviewers with verdicts are never deleted: verdicts protect them)."""
    from review.models import (
        CallRollup,
        HistogramRollup,
        HistogramTotal,
        ImageRollup,
        LabelRollup,
        OutcomeRollup,
    )

    tables = (OutcomeRollup, CallRollup, HistogramRollup, HistogramTotal, LabelRollup)
    rollups.metric_rollup_refresh(project=fx.project)
    for model in (*tables, ImageRollup):
        assert model.objects.filter(run=fx.run).exists(), model
    run_id, project_id = fx.run.pk, fx.project.pk
    fx.run.delete()
    for model in (*tables, ImageRollup):
        assert not model.objects.filter(run_id=run_id).exists(), model
    rollups.metric_rollup_refresh(project=fx.project)
    assert OutcomeRollup.objects.filter(project_id=project_id).exists()
    fx.project.delete()
    for model in (*tables, ImageRollup):
        assert not model.objects.filter(project_id=project_id).exists(), model


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
