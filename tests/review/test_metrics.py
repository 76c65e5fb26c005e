"""The metric selectors against figures worked out by hand on a small comparison (see the table in
metrics_fixture.py), and the interval helpers against known values."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from review.metrics import Scope, route_metrics
from review.stats import (
    bootstrap_percentiles,
    bootstrap_ratio,
    rank_quantile_bounds,
    ratio_normal,
    wilson,
)
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def comparison(fx, **kwargs):
    scope = Scope(
        project=fx.project,
        run_id=fx.run.pk,
        route_ids=(fx.a.pk, fx.b.pk),
        same_images=True,
        **kwargs,
    )
    return route_metrics(scope=scope)


# --- interval helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (2, 3, 0.2077, 0.9385),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    interval = wilson(k, n)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_wilson_has_no_interval_without_a_sample():
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(4, 3)


def test_bootstrap_of_a_ratio_spans_what_resampling_can_give():
    # Two images: $1 for one accepted caption, $3 for one. Resamples give 1, 2 or 3 (1/4, 1/2, 1/4).
    interval = bootstrap_ratio([1.0, 3.0], [1, 1])
    assert (interval.low, interval.high, interval.method) == (1.0, 3.0, "bootstrap")
    # Every image costs the same per accepted caption: no uncertainty at all.
    same = bootstrap_ratio([0.02, 0.04, 0.06], [1, 2, 3])
    assert same.low == pytest.approx(0.02) and same.high == pytest.approx(0.02)
    # Nothing accepted: no ratio.
    assert bootstrap_ratio([0.5, 0.5], [0, 0]) is None


def test_bootstrap_is_seeded_and_agrees_with_the_normal_approximation_on_many_images():
    import numpy as np

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=4000).astype(float)
    x = rng.gamma(2.0, 0.01, size=4000)
    first, again = bootstrap_ratio(x, y), bootstrap_ratio(x, y)
    assert first == again
    normal = ratio_normal(
        n=len(x),
        sum_x=x.sum(),
        sum_y=y.sum(),
        sum_xx=(x * x).sum(),
        sum_yy=(y * y).sum(),
        sum_xy=(x * y).sum(),
    )
    width = first.high - first.low
    assert normal.low == pytest.approx(first.low, abs=0.1 * width)
    assert normal.high == pytest.approx(first.high, abs=0.1 * width)


def test_bootstrap_of_percentiles_resamples_images_with_all_their_values():
    import numpy as np

    groups = [[800.0, 30000.0], [1000.0], [1200.0], [650.0, 700.0, 9000.0]]
    found = bootstrap_percentiles(groups, [0.5, 0.95], resamples=400, seed=3)
    # The same resamples drawn image by image, pooled and np.percentile'd (linear, as
    # percentile_cont): the vectorised helper gives exactly the same intervals.
    rng = np.random.default_rng(3)
    medians, tops = [], []
    for _ in range(400):
        pooled = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        medians.append(np.percentile(pooled, 50))
        tops.append(np.percentile(pooled, 95))
    for interval, drawn in zip(found, (medians, tops), strict=True):
        expected = tuple(np.percentile(drawn, [2.5, 97.5]))
        assert (interval.low, interval.high) == pytest.approx(expected)
    assert found[0].method == "bootstrap"
    # One value everywhere: no uncertainty; nothing: no interval.
    same = bootstrap_percentiles([[5.0], [5.0, 5.0]], [0.5])[0]
    assert (same.low, same.high) == (5.0, 5.0)
    assert bootstrap_percentiles([], [0.5]) == [None]


def test_order_statistic_bounds_of_a_quantile():
    # n = 100, q = 0.5: ranks 50 -/+ 1.96 * 5, i.e. quantiles 0.402 and 0.598.
    low, high = rank_quantile_bounds(0.5, 100)
    assert (low, high) == (pytest.approx(0.40200, abs=1e-5), pytest.approx(0.59800, abs=1e-5))
    assert rank_quantile_bounds(0.95, 4) == (pytest.approx(0.7364, abs=1e-4), 1.0)
    assert rank_quantile_bounds(0.5, 0) is None


# --- the comparison on shared images -----------------------------------------------------------


def test_only_images_both_routes_captioned_and_review_decided_are_compared(fx):
    table = comparison(fx)

    # img4 (local-b failed) and img5 (hosted-a still open) are left out for both routes.
    assert table.images == 3
    a, b = table.row("hosted-a"), table.row("local-b")
    assert (a.produced, a.reviewed, b.produced, b.reviewed) == (3, 3, 3, 3)


def test_review_outcomes_per_route(fx):
    table = comparison(fx)
    a, b = table.row("hosted-a"), table.row("local-b")

    assert (a.accepted_as_is, a.accepted_after_edit, a.rejected) == (1, 1, 1)
    assert (a.awaiting_adjudication, a.adjudicated, a.disputed) == (0, 1, 1)
    assert (b.accepted_as_is, b.accepted_after_edit, b.rejected, b.disputed) == (1, 1, 1, 0)
    assert (a.accepted_rate.k, a.accepted_rate.n) == (2, 3)
    assert a.accepted_rate.interval.low == pytest.approx(0.2077, abs=1e-4)
    assert a.reject_reasons == {"wrong_subject": 1}
    assert b.reject_reasons == {"hallucinated_detail": 2, "misread_text": 1}


def test_spend_counts_every_attempt_and_costs_gpu_time(fx):
    table = comparison(fx)
    a, b = table.row("hosted-a"), table.row("local-b")

    # hosted-a: $0.01 per answer, the timed-out try free: 3 x $0.01 for 2 accepted captions.
    assert a.spend_usd == pytest.approx(0.03)
    assert a.cost_per_accepted.usd == pytest.approx(0.015)
    # local-b: 2 s + (0.5 s malformed + 1.5 s retry) + 1 s of GPU at $0.001/s, 2 accepted.
    assert b.spend_usd == pytest.approx(0.005)
    assert b.cost_per_accepted.usd == pytest.approx(0.0025)
    # Resampling the 3 images: the ratio runs from $0.01 (only accepted images drawn) up to $0.03.
    interval = a.cost_per_accepted.interval
    assert interval.method == "bootstrap"
    assert 0.01 <= interval.low <= 0.015 <= interval.high <= 0.03


def test_reviewer_time_is_added_at_the_configured_rate(fx, settings):
    settings.REVIEWER_HOURLY_USD = 36.0  # one cent a second
    table = comparison(fx)
    a, b = table.row("hosted-a"), table.row("local-b")

    # hosted-a items took 4 s, 5 s and 6 s + 7 s of reviewers' time: $0.22.
    assert a.review_usd == pytest.approx(0.22)
    assert a.cost_per_accepted_with_review.usd == pytest.approx((0.03 + 0.22) / 2)
    assert b.cost_per_accepted_with_review.usd == pytest.approx((0.005 + 0.22) / 2)


def test_reviewer_time_is_left_out_without_a_rate(fx, settings):
    settings.REVIEWER_HOURLY_USD = 0
    assert comparison(fx).row("hosted-a").cost_per_accepted_with_review.usd is None


def test_reliability_from_the_call_log(fx):
    table = comparison(fx)
    a, b = table.row("hosted-a"), table.row("local-b")

    assert (a.attempts, a.retries, a.timeouts, a.errors, a.malformed) == (4, 1, 1, 1, 0)
    assert (b.attempts, b.retries, b.timeouts, b.errors, b.malformed) == (4, 1, 0, 1, 1)
    assert a.timeout_rate.value == pytest.approx(0.25)
    assert b.malformed_rate.value == pytest.approx(0.25)
    # per attempt: 800, 1000, 1200, 30000 ms; end to end: 1000, 1200, 31000 ms
    assert a.attempt_p50_ms == pytest.approx(1100)
    assert a.attempt_p95_ms == pytest.approx(1200 + 0.85 * 28800)
    assert a.e2e_p50_ms == pytest.approx(1200)
    assert b.attempt_p50_ms == pytest.approx(1250)


def test_latency_percentiles_have_bootstrap_intervals_over_images(fx):
    a = comparison(fx).row("hosted-a")

    # hosted-a's attempts per image: img1 800 + 30000 ms, img2 1000, img3 1200. No resample has
    # a median under 1000 (img1 brings a 30000 with each 800), and one in 27 draws img1 three
    # times, whose median 15400 is the top (over 2.5% of resamples at each end).
    assert (a.attempt_p50_ci.low, a.attempt_p50_ci.high) == (1000, 15400)
    assert a.attempt_p50_ci.method == "bootstrap"
    # p95: img2 three times gives 1000; img1 twice or more gives 30000 (7 in 27).
    assert (a.attempt_p95_ci.low, a.attempt_p95_ci.high) == (1000, 30000)
    # End to end, one value per image (31000, 1000, 1200): two draws of an image fix the median.
    assert (a.e2e_p50_ci.low, a.e2e_p50_ci.high) == (1000, 31000)
    assert a.e2e_p95_ci.high == 31000
    assert a.attempt_p50_ci.low <= a.attempt_p50_ms <= a.attempt_p50_ci.high


def test_latency_intervals_above_the_bootstrap_size_are_order_statistics(fx, monkeypatch):
    from review import metrics

    monkeypatch.setattr(metrics, "BOOTSTRAP_MAX_IMAGES", 1)
    a = comparison(fx).row("hosted-a")

    # n = 4 attempts: p50's ranks 0.5 -/+ 1.96 * 0.25, i.e. the quantiles 0.0100 and 0.9900 of
    # 800, 1000, 1200, 30000 ms, interpolated as percentile_cont does (position q * 3).
    low, high = rank_quantile_bounds(0.5, 4)
    assert a.attempt_p50_ci.method == "order statistic"
    assert a.attempt_p50_ci.low == pytest.approx(800 + (3 * low) * 200)
    assert a.attempt_p50_ci.high == pytest.approx(1200 + (3 * high - 2) * 28800)
    assert (a.attempt_p50_ci.low, a.attempt_p50_ci.high) == pytest.approx((806, 29136), abs=1)
    assert a.attempt_p95_ci.high == pytest.approx(30000)


def test_correction_effort_review_time_and_agreement(fx):
    table = comparison(fx)
    a, b = table.row("hosted-a"), table.row("local-b")

    # "A bar chart." -> "A bar chart of sales.": 9 characters of 21, 3 words of 5
    assert a.char_effort == pytest.approx(9 / 21)
    assert a.word_effort == pytest.approx(3 / 5)
    # "A car." -> "A red car.": 4 characters of 10, 1 word of 3
    assert b.char_effort == pytest.approx(0.4)
    assert b.word_effort == pytest.approx(1 / 3)
    # per decided item: 4 s, 5 s, 13 s (two reviewers) | 9 s, 3 s, 10 s
    assert a.review_ms_median == pytest.approx(5000)
    assert b.review_ms_median == pytest.approx(9000)
    # img3 was reviewed twice: hosted-a's reviewers disagreed, local-b's both rejected.
    assert (a.agreement.k, a.agreement.n) == (0, 1)
    assert (b.agreement.k, b.agreement.n) == (1, 1)


# --- other scopes ------------------------------------------------------------------------------


def test_a_whole_run_counts_every_output_and_failed_captions_in_the_cost(fx):
    table = route_metrics(scope=Scope(project=fx.project, run_id=fx.run.pk))
    a, b = table.row("hosted-a"), table.row("local-b")

    assert table.images == 5
    assert (a.produced, a.reviewed, a.accepted, a.rejected) == (5, 4, 3, 1)
    # img5's open caption cost $0.01 but has no outcome yet: in the spend, not in the cost.
    assert a.spend_usd == pytest.approx(0.05)
    assert a.cost_per_accepted.usd == pytest.approx(0.04 / 3)
    # local-b's failed img4 (0.6 s of GPU) is part of what its accepted captions cost.
    assert (b.produced, b.reviewed, b.accepted) == (4, 4, 3)
    assert b.spend_usd == pytest.approx(0.0062)
    assert b.cost_per_accepted.usd == pytest.approx(0.0062 / 3)


def test_fallbacks_are_counted_against_the_route_that_gave_up(fx):
    table = route_metrics(scope=Scope(project=fx.project))
    a = table.row("hosted-a")

    # 6 attempts in the run + the chain's first try on img6, which fell back to local-b
    assert (a.attempts, a.fallbacks) == (7, 1)
    # The chain caption belongs to the route that answered it.
    assert table.row("local-b").produced == 5


def test_filters_by_risk_category_reviewer_model_and_dates(fx):
    charts = route_metrics(scope=Scope(project=fx.project, run_id=fx.run.pk, risk_category="chart"))
    assert charts.images == 1
    assert (charts.row("hosted-a").accepted_after_edit, charts.row("local-b").rejected) == (1, 1)

    sam = fx.reviewers[1]
    by_sam = route_metrics(scope=Scope(project=fx.project, run_id=fx.run.pk, reviewer_id=sam.pk))
    # sam saw img3 (both routes) and skipped img5's hosted-a caption
    assert (by_sam.row("hosted-a").produced, by_sam.row("hosted-a").reviewed) == (2, 1)

    by_model = route_metrics(scope=Scope(project=fx.project, run_id=fx.run.pk, group_by="model"))
    assert [r.key for r in by_model.rows] == ["Salesforce/blip2-opt-2.7b", "openai/gpt-4o"]

    today = date.today()
    later = route_metrics(
        scope=Scope(project=fx.project, date_from=today + timedelta(days=1), date_to=None)
    )
    assert later.rows == [] and later.images == 0
    now = route_metrics(scope=Scope(project=fx.project, date_from=today, date_to=today))
    assert now.images == 6


def test_another_projects_outputs_never_count(fx, django_user_model):
    from labeling.models import Project

    other = Project.objects.create(name="Other", slug="other")
    assert route_metrics(scope=Scope(project=other)).rows == []
