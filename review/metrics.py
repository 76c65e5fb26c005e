"""Metric selectors: which route (or model) gives the most accepted captions per dollar, how
reliable and fast each was, how much correcting each needed. Every figure is aggregated in
the database (``FILTER`` aggregates, percentiles, a window for fallbacks) on PostgreSQL and, on
a first run, SQLite (``review.sql`` spells what differs); Python only turns sums into intervals
and resamples per-image figures for the bootstrap intervals.

The measures (the same definitions in the UI, CSV downloads and benchmarks):

- **Outputs produced**: succeeded captions. A caption belongs to the route it was asked of
  (``target_route``: comparison runs, the caption command) or else to the route that served it (a
  chain's fallback that answered). Questions the risk analyser asks the model are not outputs.
- **Reviewed**: outputs whose review item is decided (approved or rejected). **Accepted as-is** /
  **accepted after edit**: approved with the model's text / with an edited text. **Rejected**.
  **Disputed**: reviewers disagreed (awaiting adjudication now, or adjudicated).
- **Accepted-output rate** = accepted (as-is + after edit) / reviewed, with a 95% Wilson interval.
- **Model spend**: every attempt (retries and fallbacks included) of the outputs in scope. A local
  GPU call without a recorded cost is costed at its latency times the route's $/GPU-hour (the
  default rate when the route has none), so local and hosted routes compare.
- **Cost per accepted output** = spend on the reviewed outputs and on the captions that failed
  outright (the price of getting outputs at all) / accepted outputs, with a 95% bootstrap interval
  over images. "Incl. review" adds reviewers' time (every verdict, skips included) at
  ``REVIEWER_HOURLY_USD`` when that is set.
- **Latency** p50 / p95 per attempt (the call log, cached answers left out) and end to end (the
  caption's own latency, every attempt and wait included), each with a 95% bootstrap interval
  over images (resampling images with all their attempts and recomputing the percentile); above
  ``BOOTSTRAP_MAX_IMAGES`` images, the distribution-free order-statistic interval (the
  percentiles at q -/+ 1.96 sqrt(q (1 - q) / n)), labelled so.
- **Timeout / error / fallback / malformed-output rates** per attempt from the call log, Wilson
  intervals. Error: the attempt failed or its worker was lost. Fallback: the next attempt on the
  same caption was a fallback to another route. Malformed: the answer was empty, a refusal,
  failed its schema or could not be parsed. Cached answers and calls still in flight are not
  attempts.
- **Correction effort**: mean normalised edit distance (characters and words, 0..1) between the
  model's caption and the approved text, over outputs accepted after an edit.
- **Review time**: median of the reviewers' time per decided item (every verdict on it).
- **Agreement**: share of items with two or more counted verdicts on which all reviewers agreed
  (all approved the same text, or all rejected), Wilson interval.

Scope filters: project, run, prompt, routes, date range (when the output was made), risk category
(an admin's latest correction overriding the analyser), reviewer (outputs that reviewer gave a
verdict on). A comparison also keeps only the images that every compared route captioned and
that review has decided, so every route is measured on the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from labeling.models import Project
from review import sql as dialect
from review.risk.captions import RISK_QUESTION
from review.stats import (
    BOOTSTRAP_MAX_IMAGES,
    Z95,
    Interval,
    Rate,
    bootstrap_percentiles,
    bootstrap_ratio,
    rank_quantile_bounds,
    ratio_normal,
)

# SQL here is assembled from fixed fragments and the column names in GROUPS only (hence the S608
# exemptions); every value reaches the database as a query parameter.
GROUPS = {"route": "name", "model": "model"}
DECIDED = ("approved", "rejected")
MALFORMED_CLASSES = ("malformed", "empty", "refusal", "schema")


def metrics_supported() -> bool:
    """The measures are SQL for PostgreSQL and for a first run's SQLite."""
    return connection.vendor in ("postgresql", "sqlite")


def reviewer_hourly_usd() -> float:
    return float(getattr(settings, "REVIEWER_HOURLY_USD", 0.0) or 0.0)


def comparison_min_images() -> int:
    return int(getattr(settings, "COMPARISON_MIN_IMAGES", 30))


def default_gpu_hour_usd() -> Decimal:
    from routing.services.routes import DEFAULT_GPU_HOUR_USD

    return DEFAULT_GPU_HOUR_USD


@dataclass(frozen=True)
class Scope:
    """Which outputs a measure is computed over."""

    project: Project
    run_id: int | None = None
    route_ids: tuple[int, ...] = ()
    prompt: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    risk_category: str = ""
    reviewer_id: int | None = None
    group_by: str = "route"
    same_images: bool = False  # only images every route in route_ids captioned and review decided

    def __post_init__(self) -> None:
        if self.group_by not in GROUPS:
            raise ValueError(f"group_by must be one of {sorted(GROUPS)}")
        if self.same_images and len(self.route_ids) < 2:
            raise ValueError("A same-images comparison needs at least two routes.")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def scope_sql(
    scope: Scope, *, image_ids: Sequence[int] | None = None
) -> tuple[str, dict[str, Any]]:
    """The ``caps`` CTE (captions in scope with their route, ``arm``) and ``scoped`` (narrowed to
    the shared, decided images for a comparison), with their parameters; with ``image_ids``, of
    those images only."""
    where = [
        "i.project_id = %(project)s",
        "NOT (c.task = 'question' AND c.prompt = %(risk_question)s)",
    ]
    params: dict[str, Any] = {"project": scope.project.pk, "risk_question": RISK_QUESTION}
    if image_ids is not None:
        where.append(dialect.any_of("c.image_id", "image_ids"))
        params["image_ids"] = dialect.list_param(list(image_ids))
    if scope.run_id is not None:
        where.append("c.run_id = %(run)s")
        params["run"] = scope.run_id
    if scope.prompt is not None:
        where.append("c.prompt = %(prompt)s")
        params["prompt"] = scope.prompt
    if scope.route_ids:
        where.append(dialect.any_of("COALESCE(c.target_route_id, c.route_id)", "routes"))
        params["routes"] = dialect.list_param(scope.route_ids)
    if scope.date_from:
        where.append("c.created_at >= %(date_from)s")
        params["date_from"] = dialect.datetime_param(_day_start(scope.date_from))
    if scope.date_to:
        where.append("c.created_at < %(date_to)s")
        params["date_to"] = dialect.datetime_param(_day_start(scope.date_to + timedelta(days=1)))
    if scope.risk_category:
        # An admin's latest correction wins; without one, the analyser's flag.
        where.append(
            "COALESCE((SELECT rc.flagged FROM review_riskcorrection rc"
            " WHERE rc.image_id = c.image_id AND rc.category = %(risk)s"
            " ORDER BY rc.created_at DESC, rc.id DESC LIMIT 1),"
            " EXISTS (SELECT 1 FROM review_riskflag rf WHERE rf.image_id = c.image_id"
            " AND rf.category = %(risk)s AND rf.flagged))"
        )
        params["risk"] = scope.risk_category
    if scope.reviewer_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM review_verdict rv WHERE rv.caption_id = c.id"
            " AND rv.reviewer_id = %(reviewer)s)"
        )
        params["reviewer"] = scope.reviewer_id
    sql = f"""
caps AS MATERIALIZED (
  SELECT c.id, c.image_id, c.status, c.latency_ms, c.created_at,
         COALESCE(c.target_route_id, c.route_id) AS arm
  FROM routing_caption c JOIN labeling_image i ON i.id = c.image_id
  WHERE {" AND ".join(where)}
)"""  # noqa: S608
    if scope.same_images:
        params["arm_count"] = len(set(scope.route_ids))
        sql += """,
common AS (
  SELECT caps.image_id FROM caps JOIN review_reviewitem ri ON ri.caption_id = caps.id
  WHERE ri.state IN ('approved', 'rejected')
  GROUP BY caps.image_id HAVING count(DISTINCT caps.arm) = %(arm_count)s
),
scoped AS MATERIALIZED (SELECT caps.* FROM caps JOIN common USING (image_id))"""
    else:
        sql += ",\nscoped AS (SELECT * FROM caps)"
    return sql, params


def _fetch(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return dialect.fetch(sql, params)


# --- the table ---------------------------------------------------------------------------------


@dataclass
class CostFigure:
    usd: float | None
    interval: Interval | None


@dataclass
class RouteMetrics:
    """One row of the comparison table: a route (or a model) in its scope."""

    key: str
    produced: int = 0
    reviewed: int = 0
    accepted_as_is: int = 0
    accepted_after_edit: int = 0
    rejected: int = 0
    awaiting_adjudication: int = 0
    adjudicated: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    spend_usd: float = 0.0
    counted_spend_usd: float = 0.0
    review_usd: float = 0.0
    images: int = 0
    cost_per_accepted: CostFigure = field(default_factory=lambda: CostFigure(None, None))
    cost_per_accepted_with_review: CostFigure = field(
        default_factory=lambda: CostFigure(None, None)
    )
    attempts: int = 0
    retries: int = 0
    cached: int = 0
    timeouts: int = 0
    errors: int = 0
    fallbacks: int = 0
    malformed: int = 0
    attempt_p50_ms: float | None = None
    attempt_p95_ms: float | None = None
    e2e_p50_ms: float | None = None
    e2e_p95_ms: float | None = None
    # 95% intervals of the four latency percentiles (bootstrap over images, or order statistics)
    attempt_p50_ci: Interval | None = None
    attempt_p95_ci: Interval | None = None
    e2e_p50_ci: Interval | None = None
    e2e_p95_ci: Interval | None = None
    char_effort: float | None = None
    word_effort: float | None = None
    review_ms_median: float | None = None
    multi_reviewed: int = 0
    agreed: int = 0

    @property
    def accepted(self) -> int:
        return self.accepted_as_is + self.accepted_after_edit

    @property
    def disputed(self) -> int:
        return self.awaiting_adjudication + self.adjudicated

    @property
    def accepted_rate(self) -> Rate:
        return Rate(self.accepted, self.reviewed)

    @property
    def timeout_rate(self) -> Rate:
        return Rate(self.timeouts, self.attempts)

    @property
    def error_rate(self) -> Rate:
        return Rate(self.errors, self.attempts)

    @property
    def fallback_rate(self) -> Rate:
        return Rate(self.fallbacks, self.attempts)

    @property
    def malformed_rate(self) -> Rate:
        return Rate(self.malformed, self.attempts)

    @property
    def agreement(self) -> Rate:
        return Rate(self.agreed, self.multi_reviewed)


@dataclass
class MetricsTable:
    scope: Scope
    rows: list[RouteMetrics]
    images: int  # images in scope (for a comparison: shared and decided by every route)
    as_of: datetime | None = None  # when read from the rollup: when it was taken

    def row(self, key: str) -> RouteMetrics | None:
        return next((r for r in self.rows if r.key == key), None)


def _outcomes(cte: str, params: dict[str, Any], keycol: str) -> list[dict[str, Any]]:
    found = _fetch(
        f"""
WITH {cte}
SELECT ar.{keycol} AS key,
  count(*) FILTER (WHERE s.status = 'succeeded') AS produced,
  count(ri.id) FILTER (WHERE ri.state IN ('approved', 'rejected')) AS reviewed,
  count(ri.id) FILTER (WHERE ri.state = 'approved' AND ri.edited IS NOT TRUE) AS accepted_as_is,
  count(ri.id) FILTER (WHERE ri.state = 'approved' AND ri.edited) AS accepted_after_edit,
  count(ri.id) FILTER (WHERE ri.state = 'rejected') AS rejected,
  count(ri.id) FILTER (WHERE ri.state = 'adjudication') AS awaiting_adjudication,
  count(adj.id) AS adjudicated,
  avg(ri.char_effort) FILTER (WHERE ri.state = 'approved' AND ri.edited) AS char_effort,
  avg(ri.word_effort) FILTER (WHERE ri.state = 'approved' AND ri.edited) AS word_effort,
  {dialect.percentile(0.5, "s.latency_ms", "s.status = 'succeeded'")} AS e2e_p50_ms,
  {dialect.percentile(0.95, "s.latency_ms", "s.status = 'succeeded'")} AS e2e_p95_ms
FROM scoped s
JOIN routing_route ar ON ar.id = s.arm
LEFT JOIN review_reviewitem ri ON ri.caption_id = s.id
LEFT JOIN review_adjudication adj ON adj.item_id = ri.id
GROUP BY 1""",  # noqa: S608
        params,
    )
    if dialect.is_sqlite():
        source = (
            f"SELECT ar.{keycol} AS key, s.latency_ms AS v FROM scoped s"  # noqa: S608
            " JOIN routing_route ar ON ar.id = s.arm WHERE s.status = 'succeeded'"
        )
        _fill_percentiles(found, cte, params, source, {"e2e_p50_ms": 0.5, "e2e_p95_ms": 0.95})
    return found


def _fill_percentiles(
    found: list[dict[str, Any]],
    cte: str,
    params: dict[str, Any],
    source: str,
    columns: dict[str, float],
    *,
    with_ctes: str = "",
) -> None:
    """On SQLite, the percentile columns of ``found`` (per key) from ``source`` (key, v)."""
    sql = f"WITH {cte}{with_ctes}" + dialect.percentiles_sql(source, columns)
    values = {row.pop("key"): row for row in _fetch(sql, params)}
    for row in found:
        row.update(values.get(row["key"], dict.fromkeys(columns)))


_COST = """COALESCE(mc.cost_usd, CASE WHEN r.provider = 'local' AND mc.latency_ms IS NOT NULL
  THEN mc.latency_ms / 3600000.0 * COALESCE(r.gpu_hour_usd, %(gpu_hour_usd)s) END, 0)"""


def _per_image_cte(cte: str, keycol: str) -> str:
    """``img``: per (key, image) the counted spend x, accepted outputs y and review time."""
    return f"""
WITH {cte},
spend AS (
  SELECT s.id AS caption_id, s.image_id, s.status, COALESCE(s.arm, mc.route_id) AS arm,
         sum({_COST}) AS usd
  FROM scoped s
  LEFT JOIN routing_modelcall mc ON mc.caption_id = s.id
  LEFT JOIN routing_route r ON r.id = mc.route_id
  GROUP BY 1, 2, 3, 4
),
review_time AS (
  SELECT v.caption_id, sum(v.time_spent_ms) AS ms
  FROM review_verdict v JOIN scoped s ON s.id = v.caption_id GROUP BY 1
),
img AS (
  SELECT ar.{keycol} AS key, sp.image_id,
    coalesce(sum(sp.usd), 0) AS spend_all,
    coalesce(sum(sp.usd) FILTER (
      WHERE ri.state IN ('approved', 'rejected') OR sp.status = 'failed'), 0) AS x,
    count(ri.id) FILTER (WHERE ri.state = 'approved') AS y,
    coalesce(sum(rt.ms) FILTER (WHERE ri.state IN ('approved', 'rejected')), 0) AS review_ms,
    {dialect.bool_or("ri.state IN ('approved', 'rejected') OR sp.status = 'failed'")} AS counts
  FROM spend sp
  JOIN routing_route ar ON ar.id = sp.arm
  LEFT JOIN review_reviewitem ri ON ri.caption_id = sp.caption_id
  LEFT JOIN review_time rt ON rt.caption_id = sp.caption_id
  GROUP BY 1, 2
)"""  # noqa: S608


def _costs(cte: str, params: dict[str, Any], keycol: str) -> list[dict[str, Any]]:
    return _fetch(
        _per_image_cte(cte, keycol)
        + """
SELECT key, CAST(sum(spend_all) AS DOUBLE PRECISION) AS spend_usd,
  CAST(sum(x) AS DOUBLE PRECISION) AS counted_spend_usd,
  CAST(sum(review_ms) AS DOUBLE PRECISION) AS review_ms,
  count(*) FILTER (WHERE counts) AS images,
  sum(y) FILTER (WHERE counts) AS sum_y,
  CAST(sum(x * x) FILTER (WHERE counts) AS DOUBLE PRECISION) AS sum_xx,
  sum(y * y) FILTER (WHERE counts) AS sum_yy,
  CAST(sum(x * y) FILTER (WHERE counts) AS DOUBLE PRECISION) AS sum_xy
FROM img GROUP BY key""",  # noqa: S608
        params,
    )


def _cost_rows(cte: str, params: dict[str, Any], keycol: str) -> dict[str, list[tuple]]:
    rows = _fetch(
        _per_image_cte(cte, keycol) + "\nSELECT key, CAST(x AS DOUBLE PRECISION) AS x, y,"
        " CAST(review_ms AS DOUBLE PRECISION) AS review_ms"
        " FROM img WHERE counts ORDER BY key, image_id",  # noqa: S608
        params,
    )
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row["key"], []).append((row["x"], row["y"], row["review_ms"]))
    return out


def _reliability(cte: str, params: dict[str, Any], keycol: str) -> list[dict[str, Any]]:
    attempt = "status NOT IN ('in_flight', 'cached')"
    found = _fetch(
        f"""
WITH {cte},
calls AS (
  SELECT mc.route_id, mc.status, mc.error_class, mc.latency_ms, mc.trigger,
         lead(mc.trigger) OVER (PARTITION BY mc.caption_id ORDER BY mc.attempt) AS next_trigger
  FROM scoped s JOIN routing_modelcall mc ON mc.caption_id = s.id
)
SELECT r.{keycol} AS key,
  count(*) FILTER (WHERE {attempt}) AS attempts,
  count(*) FILTER (WHERE {attempt} AND trigger = 'retry') AS retries,
  count(*) FILTER (WHERE status = 'cached') AS cached,
  count(*) FILTER (WHERE {attempt} AND error_class = 'timeout') AS timeouts,
  count(*) FILTER (WHERE status IN ('failed', 'lost')) AS errors,
  count(*) FILTER (WHERE {attempt} AND next_trigger LIKE 'fallback:%%') AS fallbacks,
  count(*) FILTER (WHERE {attempt} AND ({dialect.any_of("error_class", "malformed")}
    OR error_class LIKE 'malformed%%')) AS malformed,
  {dialect.percentile(0.5, "latency_ms", attempt)} AS attempt_p50_ms,
  {dialect.percentile(0.95, "latency_ms", attempt)} AS attempt_p95_ms
FROM calls JOIN routing_route r ON r.id = calls.route_id
GROUP BY 1""",  # noqa: S608
        {**params, "malformed": dialect.list_param(MALFORMED_CLASSES)},
    )
    if dialect.is_sqlite():
        source = (
            f"SELECT r.{keycol} AS key, mc.latency_ms AS v FROM scoped s"  # noqa: S608
            " JOIN routing_modelcall mc ON mc.caption_id = s.id"
            " JOIN routing_route r ON r.id = mc.route_id"
            " WHERE mc.status NOT IN ('in_flight', 'cached')"
        )
        columns = {"attempt_p50_ms": 0.5, "attempt_p95_ms": 0.95}
        _fill_percentiles(found, cte, params, source, columns)
    return found


def _review(cte: str, params: dict[str, Any], keycol: str) -> list[dict[str, Any]]:
    per_item = f""",
per_item AS (
  SELECT ar.{keycol} AS key, v.item_id, ri.state,
    sum(v.time_spent_ms) AS ms,
    count(*) FILTER (WHERE v.decision <> 'skip') AS counted,
    ({dialect.bool_and("v.decision IN ('accept', 'edit')")} FILTER (WHERE v.decision <> 'skip')
      AND count(DISTINCT regexp_replace(btrim(v.final_text), '\\s+', ' ', 'g'))
        FILTER (WHERE v.decision <> 'skip') = 1)
    OR coalesce({dialect.bool_and("v.decision = 'reject'")} FILTER (WHERE v.decision <> 'skip'),
      false) AS agreed
  FROM scoped s
  JOIN routing_route ar ON ar.id = s.arm
  JOIN review_verdict v ON v.caption_id = s.id
  JOIN review_reviewitem ri ON ri.id = v.item_id
  GROUP BY 1, 2, 3
)"""  # noqa: S608
    decided = "state IN ('approved', 'rejected')"
    found = _fetch(
        f"""
WITH {cte}{per_item}
SELECT key,
  {dialect.percentile(0.5, "ms", decided)} AS review_ms_median,
  count(*) FILTER (WHERE counted >= 2) AS multi_reviewed,
  count(*) FILTER (WHERE counted >= 2 AND agreed) AS agreed
FROM per_item GROUP BY key""",  # noqa: S608
        params,
    )
    if dialect.is_sqlite():
        source = f"SELECT key, ms AS v FROM per_item WHERE {decided}"  # noqa: S608
        _fill_percentiles(found, cte, params, source, {"review_ms_median": 0.5}, with_ctes=per_item)
    return found


def _reasons(cte: str, params: dict[str, Any], keycol: str) -> list[dict[str, Any]]:
    join, reason = dialect.json_elements("v.reasons", "reason")
    return _fetch(
        f"""
WITH {cte}
SELECT ar.{keycol} AS key, {reason} AS reason, count(*) AS n
FROM scoped s
JOIN routing_route ar ON ar.id = s.arm
JOIN review_verdict v ON v.caption_id = s.id AND v.decision = 'reject'
{join}
GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""",  # noqa: S608
        params,
    )


def _count_images(cte: str, params: dict[str, Any]) -> int:
    sql = f"WITH {cte} SELECT count(DISTINCT image_id) AS n FROM scoped"  # noqa: S608
    return _fetch(sql, params)[0]["n"]


_LATENCY_SOURCES = {
    # kind -> (key and image of each value, the value, which rows count)
    "attempt": (
        "SELECT r.{keycol} AS key, s.image_id, mc.latency_ms AS v FROM scoped s"
        " JOIN routing_modelcall mc ON mc.caption_id = s.id"
        " JOIN routing_route r ON r.id = mc.route_id"
        " WHERE mc.status NOT IN ('in_flight', 'cached') AND mc.latency_ms IS NOT NULL"
    ),
    "e2e": (
        "SELECT ar.{keycol} AS key, s.image_id, s.latency_ms AS v FROM scoped s"
        " JOIN routing_route ar ON ar.id = s.arm"
        " WHERE s.status = 'succeeded' AND s.latency_ms IS NOT NULL"
    ),
}
_QUANTILES = {"p50": 0.5, "p95": 0.95}


def _latency_intervals(
    cte: str, params: dict[str, Any], keycol: str, rows: dict[str, RouteMetrics], images: int
) -> None:
    """95% intervals of each route's latency p50 and p95 (per attempt, end to end).

    Up to BOOTSTRAP_MAX_IMAGES images: the percentile bootstrap over images (each image keeps
    all its attempts), from the per-image value lists aggregated in SQL. Above: the order-statistic
    interval, the percentiles at q -/+ 1.96 sqrt(q (1 - q) / n), computed in SQL."""
    for kind, template in _LATENCY_SOURCES.items():
        source = template.format(keycol=keycol)
        if images <= BOOTSTRAP_MAX_IMAGES:
            groups: dict[str, list[list[float]]] = {}
            for found in _fetch(
                f"WITH {cte} SELECT key, image_id, {dialect.list_agg('v')} AS vs"  # noqa: S608
                f" FROM ({source}) src GROUP BY key, image_id ORDER BY key, image_id",
                params,
            ):
                values = [float(v) for v in dialect.as_list(found["vs"])]
                groups.setdefault(found["key"], []).append(values)
            for key, per_image in groups.items():
                row = rows.setdefault(key, RouteMetrics(key=key))
                intervals = bootstrap_percentiles(per_image, list(_QUANTILES.values()))
                for name, interval in zip(_QUANTILES, intervals, strict=True):
                    setattr(row, f"{kind}_{name}_ci", interval)
            continue
        low_of, high_of = ("max", "min") if dialect.is_sqlite() else ("greatest", "least")
        columns: dict[str, float | str] = {}
        for name, q in _QUANTILES.items():
            half = f"{Z95!r} * sqrt({q * (1 - q)!r} / n)"
            columns[f"{name}_low"] = f"{low_of}(0.0, {q!r} - {half})"
            columns[f"{name}_high"] = f"{high_of}(1.0, {q!r} + {half})"
        sql = f"WITH {cte}" + dialect.percentiles_sql(source, columns)
        for found in _fetch(sql, params):
            row = rows.setdefault(found["key"], RouteMetrics(key=found["key"]))
            for name in _QUANTILES:
                low, high = found[f"{name}_low"], found[f"{name}_high"]
                if low is not None and high is not None:
                    interval = Interval(float(low), float(high), "order statistic")
                    setattr(row, f"{kind}_{name}_ci", interval)


def histogram_intervals(counts: dict[int, int], row: RouteMetrics, kind: str) -> None:
    """The order-statistic intervals of a rollup histogram's p50 and p95."""
    from review.rollups import histogram_percentile

    n = sum(counts.values())
    for name, q in _QUANTILES.items():
        bounds = rank_quantile_bounds(q, n)
        if bounds is None:
            continue
        low, high = (histogram_percentile(counts, b) for b in bounds)
        if low is not None and high is not None:
            setattr(row, f"{kind}_{name}_ci", Interval(low, high, "order statistic"))


def _cost_figures(row: RouteMetrics, moments: dict[str, Any], samples: list[tuple] | None) -> None:
    rate = reviewer_hourly_usd()
    n, sum_y = moments["images"] or 0, float(moments["sum_y"] or 0)
    x_total, review_ms = float(moments["counted_spend_usd"] or 0), float(moments["review_ms"] or 0)
    row.images = n
    row.spend_usd = float(moments["spend_usd"] or 0)
    row.counted_spend_usd = x_total
    row.review_usd = review_ms / 3_600_000 * rate
    if sum_y <= 0:
        return
    if samples is not None:
        xs = [s[0] for s in samples]
        ys = [s[1] for s in samples]
        interval = bootstrap_ratio(xs, ys)
        with_review = (
            bootstrap_ratio([s[0] + s[2] / 3_600_000 * rate for s in samples], ys) if rate else None
        )
    else:
        interval = ratio_normal(
            n=n,
            sum_x=x_total,
            sum_y=sum_y,
            sum_xx=float(moments["sum_xx"] or 0),
            sum_yy=float(moments["sum_yy"] or 0),
            sum_xy=float(moments["sum_xy"] or 0),
        )
        with_review = None
    row.cost_per_accepted = CostFigure(x_total / sum_y, interval)
    if rate:
        row.cost_per_accepted_with_review = CostFigure(
            (x_total + row.review_usd) / sum_y, with_review
        )


def route_metrics(*, scope: Scope) -> MetricsTable:
    """Every measure per route (or per model) over the scope, one row each, ordered by key.

    Big projects answer from their rollup (``review.rollups``) when it keeps the scope's filters.
    """
    from review.rollups import rollup_where

    found = rollup_where(scope)
    if found is not None:
        return _route_metrics_rollup(scope, *found)
    cte, params = scope_sql(scope)
    params["gpu_hour_usd"] = default_gpu_hour_usd()
    keycol = GROUPS[scope.group_by]
    rows: dict[str, RouteMetrics] = {}

    def row(key: str) -> RouteMetrics:
        return rows.setdefault(key, RouteMetrics(key=key))

    for found in _outcomes(cte, params, keycol):
        r = row(found.pop("key"))
        for name, value in found.items():
            setattr(r, name, value)
    for found in _reliability(cte, params, keycol):
        r = row(found.pop("key"))
        for name, value in found.items():
            setattr(r, name, value)
    for found in _review(cte, params, keycol):
        r = row(found.pop("key"))
        for name, value in found.items():
            setattr(r, name, value)
    for found in _reasons(cte, params, keycol):
        row(found["key"]).reject_reasons[found["reason"]] = found["n"]
    costs = _costs(cte, params, keycol)
    samples: dict[str, list[tuple]] | None = None
    if costs and max(c["images"] or 0 for c in costs) <= BOOTSTRAP_MAX_IMAGES:
        samples = _cost_rows(cte, params, keycol)
    for moments in costs:
        key = moments["key"]
        _cost_figures(row(key), moments, samples.get(key, []) if samples is not None else None)
    images = _count_images(cte, params)
    _latency_intervals(cte, params, keycol, rows, images)
    return MetricsTable(scope=scope, rows=[rows[k] for k in sorted(rows)], images=images)


# --- the per-image side-by-side view -----------------------------------------------------------

IMAGE_FILTERS = {
    "": "Every shared image",
    "differ": "Routes differ (one accepted, another rejected)",
    "one_accepted": "Only one route accepted",
    "disputed": "Reviewers disagreed",
}
_IMAGE_CONDITIONS = {
    "": "TRUE",
    "differ": "accepted > 0 AND rejected > 0",
    "one_accepted": "accepted = 1",
    "disputed": "disputed > 0",
}


def _image_sql(scope: Scope, show: str) -> tuple[str, dict[str, Any]]:
    if show not in _IMAGE_CONDITIONS:
        raise ValueError(f"Unknown image filter {show!r}")
    cte, params = scope_sql(scope)
    sql = f"""
WITH {cte},
per AS (
  SELECT s.image_id,
    count(ri.id) FILTER (WHERE ri.state = 'approved') AS accepted,
    count(ri.id) FILTER (WHERE ri.state = 'rejected') AS rejected,
    count(adj.id) + count(ri.id) FILTER (WHERE ri.state = 'adjudication') AS disputed,
    {dialect.list_agg("s.id")} AS caption_ids
  FROM scoped s
  LEFT JOIN review_reviewitem ri ON ri.caption_id = s.id
  LEFT JOIN review_adjudication adj ON adj.item_id = ri.id
  WHERE s.arm IS NOT NULL
  GROUP BY s.image_id
)
SELECT image_id, caption_ids FROM per WHERE {_IMAGE_CONDITIONS[show]}"""  # noqa: S608
    return sql, params


def _image_rollup_sql(scope: Scope, show: str) -> tuple[str, dict[str, Any]] | None:
    """The rollup's images of a comparison run on all its routes, when it keeps the scope's
    filters (ImageRollup keeps every reviewer's images of comparison runs only)."""
    from review.rollups import rollup_where
    from routing.models import CaptionRun

    if scope.date_from or scope.date_to or scope.reviewer_id is not None or scope.prompt:
        return None
    if scope.run_id is None or rollup_where(scope) is None:
        return None
    run = CaptionRun.objects.filter(pk=scope.run_id, kind=CaptionRun.Kind.COMPARISON).first()
    if run is None or set(run.routes.values_list("pk", flat=True)) != set(scope.route_ids):
        return None
    sql = (
        "SELECT image_id FROM review_imagerollup o WHERE o.project_id = %(project)s"  # noqa: S608
        f" AND o.run_id = %(run)s AND o.shared AND {_IMAGE_CONDITIONS[show]}"
    )
    params: dict[str, Any] = {"project": scope.project.pk, "run": scope.run_id}
    if scope.risk_category:
        sql += " AND %(risk)s = ANY(string_to_array(o.risk, ','))"
        params["risk"] = scope.risk_category
    return sql, params


def _image_slice_sql(scope: Scope, show: str) -> tuple[str, dict[str, Any]] | None:
    """The rollup's images of a reviewer's slice or of a chosen set of routes across runs
    (ImageRouteRollup: per image, route and run, with the routes decided for the image), when it
    keeps the scope's filters; None for a date range or a scope the rollup does not keep."""
    from review.rollups import rollup_where

    if scope.date_from or scope.date_to or rollup_where(scope) is None:
        return None
    route_ids = sorted(set(scope.route_ids))
    where = ["o.project_id = %(project)s", "o.route_id = ANY(%(routes)s)"]
    params: dict[str, Any] = {"project": scope.project.pk, "routes": route_ids}
    if scope.reviewer_id is not None:
        where.append("o.reviewer_id = %(reviewer)s")
        params["reviewer"] = scope.reviewer_id
    else:
        where.append("o.reviewer_id IS NULL")
    if scope.run_id is not None:
        where.append("o.run_id = %(run)s")
        params["run"] = scope.run_id
        column = "run_routes"
    else:
        where.append("o.current_prompt")  # rollup_where checked the prompt is the rollup's
        column = "prompt_routes"
    for k, route_id in enumerate(route_ids):
        where.append(f"o.{column} LIKE %(has_route_{k})s")
        params[f"has_route_{k}"] = f"%,{int(route_id)},%"
    if scope.risk_category:
        where.append("%(risk)s = ANY(string_to_array(o.risk, ','))")
        params["risk"] = scope.risk_category
    sql = (
        "SELECT image_id FROM (SELECT o.image_id, sum(o.accepted) AS accepted,"  # noqa: S608
        " sum(o.rejected) AS rejected, sum(o.disputed) AS disputed"
        f" FROM review_imagerouterollup o WHERE {' AND '.join(where)} GROUP BY o.image_id) o"
        f" WHERE {_IMAGE_CONDITIONS[show]}"
    )
    return sql, params


def _rolled_image_sql(scope: Scope, show: str) -> tuple[str, dict[str, Any]] | None:
    if show not in _IMAGE_CONDITIONS:
        raise ValueError(f"Unknown image filter {show!r}")
    return _image_rollup_sql(scope, show) or _image_slice_sql(scope, show)


# Counts of the rollup's images, per rollup taken: its rows change only when a rebuild replaces
# them (with the state's ``refreshed_at``), and counting a run's 300,000 shared images takes a
# sequential scan (35-45 ms) on every page of the side-by-side view otherwise.
_ROLLUP_COUNTS: dict[tuple, int] = {}
_ROLLUP_COUNTS_MAX = 512


def comparison_image_count(*, scope: Scope, show: str = "") -> int:
    from review.models import MetricRollupState

    rolled = _rolled_image_sql(scope, show)
    if rolled is None:
        sql, params = _image_sql(scope, show)
        return _fetch(f"SELECT count(*) AS n FROM ({sql}) x", params)[0]["n"]  # noqa: S608
    sql, params = rolled
    taken = (
        MetricRollupState.objects.filter(project=scope.project)
        .values_list("refreshed_at", flat=True)
        .first()
    )
    values = ((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())
    key = (scope.project.pk, taken, sql, tuple(sorted(values)))
    if taken is None or key not in _ROLLUP_COUNTS:
        n = _fetch(f"SELECT count(*) AS n FROM ({sql}) x", params)[0]["n"]  # noqa: S608
        if taken is None:
            return n
        if len(_ROLLUP_COUNTS) >= _ROLLUP_COUNTS_MAX:
            _ROLLUP_COUNTS.clear()
        _ROLLUP_COUNTS[key] = n
    return _ROLLUP_COUNTS[key]


def comparison_image_page(
    *, scope: Scope, show: str = "", after: int = 0, offset: int = 0, limit: int = 20
) -> list[tuple[int, list[int]]]:
    """(image id, caption ids in scope) for images in id order, after ``after`` (keyset) and
    skipping ``offset`` of those."""
    rolled = _rolled_image_sql(scope, show)
    if rolled is not None:
        sql, params = rolled
        params.update(after=after, offset=offset, limit=limit)
        sql += " AND image_id > %(after)s ORDER BY image_id LIMIT %(limit)s OFFSET %(offset)s"
        ids = [row["image_id"] for row in _fetch(sql, params)]
        # The page's captions in scope, live (the scope's own filters, on these images only).
        cte, params = scope_sql(replace(scope, same_images=False), image_ids=ids)
        captions = {
            row["image_id"]: dialect.as_list(row["ids"])
            for row in _fetch(
                f"WITH {cte} SELECT image_id, {dialect.list_agg('id')} AS ids FROM caps"  # noqa: S608
                " WHERE arm IS NOT NULL GROUP BY image_id",
                params,
            )
        }
        return [(image_id, captions.get(image_id, [])) for image_id in ids]
    sql, params = _image_sql(scope, show)
    params.update(after=after, offset=offset, limit=limit)
    sql += " AND image_id > %(after)s ORDER BY image_id LIMIT %(limit)s OFFSET %(offset)s"
    return [(row["image_id"], dialect.as_list(row["caption_ids"])) for row in _fetch(sql, params)]


@dataclass
class CaptionCell:
    caption: Any
    item: Any | None
    verdicts: list
    adjudication: Any | None


@dataclass
class ImageRow:
    image: Any
    cells: dict[str, list[CaptionCell]]


def comparison_image_rows(*, scope: Scope, page: list[tuple[int, list[int]]]) -> list[ImageRow]:
    """The images of one page with every caption in scope, its review item, verdicts (oldest
    first) and adjudication, grouped per route (or model)."""
    from django.db.models import Prefetch

    from labeling.models import Image
    from review.models import Adjudication, Verdict
    from routing.models import Caption

    caption_ids = [pk for _, ids in page for pk in ids]
    captions = (
        Caption.objects.filter(pk__in=caption_ids)
        .select_related("route", "target_route", "review_item")
        .prefetch_related(
            Prefetch(
                "review_item__verdicts",
                queryset=Verdict.objects.select_related("reviewer").order_by("created_at", "id"),
            )
        )
        .order_by("id")
    )
    images = Image.objects.in_bulk([image_id for image_id, _ in page])
    adjudications = {
        a.item_id: a for a in Adjudication.objects.filter(item__caption_id__in=caption_ids)
    }
    rows = {image_id: ImageRow(image=images[image_id], cells={}) for image_id, _ in page}
    for caption in captions:
        route = caption.target_route or caption.route
        key = route.name if scope.group_by == "route" else route.model
        item = getattr(caption, "review_item", None)
        cell = CaptionCell(
            caption=caption,
            item=item,
            verdicts=list(item.verdicts.all()) if item else [],
            adjudication=adjudications.get(item.pk) if item else None,
        )
        rows[caption.image_id].cells.setdefault(key, []).append(cell)
    return [rows[image_id] for image_id, _ in page]


# --- headline figures for the project and run pages --------------------------------------------


@dataclass
class Headline:
    items: dict[str, int]  # review items (one per caption) by state
    images: dict[str, int]  # images by status (approved once any caption of it is approved)
    table: MetricsTable | None  # per route over every output of the project


def project_headline(
    *, project: Project, with_routes: bool, image_counts: dict[str, int] | None = None
) -> Headline:
    """Review items by state, images by status (``image_counts`` when the caller has them) and,
    with ``with_routes``, every measure per route. A project with a rollup counts its items
    there too (as of the rollup)."""
    from django.db.models import Count

    from labeling.selectors import image_status_counts
    from review.models import ReviewItem

    table = route_metrics(scope=Scope(project=project)) if with_routes else None
    items = {state: 0 for state in ReviewItem.State.values}
    if table is not None and table.as_of is not None:
        for row in table.rows:
            items["approved"] += row.accepted
            items["rejected"] += row.rejected
            items["adjudication"] += row.awaiting_adjudication
            items["open"] += max(0, row.produced - row.reviewed - row.awaiting_adjudication)
    else:
        rows = ReviewItem.objects.filter(project=project).values("state").annotate(n=Count("id"))
        for row in rows:
            items[row["state"]] = row["n"]
    images = image_counts if image_counts is not None else image_status_counts(project=project)
    return Headline(items=items, images=images, table=table)


# --- blind pairwise results --------------------------------------------------------------------


@dataclass
class WinRate:
    rate: float | None  # (wins + ties / 2) / (wins + losses + ties)
    n: int  # judgements between the two routes, "both bad" left out
    both_bad: int


@dataclass
class PairwiseResults:
    names: list[str]
    matrix: list[list[WinRate | None]]  # row's rate against column; None on the diagonal
    strengths: list  # review.stats.Strength, best first
    judged: int
    open: int


def pairwise_results(*, project: Project, run_id: int | None = None) -> PairwiseResults:
    """Win-rate matrix and Bradley-Terry scores (95% bootstrap intervals) from blind judgements.
    A tie counts half a win to each side; "both bad" says nothing about which is better, so it
    is counted apart and left out of the rates and scores."""
    from review.models import PairwiseTask
    from review.stats import bradley_terry_intervals

    run_filter = "AND t.run_id = %(run)s" if run_id is not None else ""
    found = _fetch(
        f"""
SELECT ra.name AS a, rb.name AS b, j.outcome, count(*) AS n
FROM review_pairwisejudgement j
JOIN review_pairwisetask t ON t.id = j.task_id
JOIN routing_route ra ON ra.id = t.route_a_id
JOIN routing_route rb ON rb.id = t.route_b_id
WHERE j.project_id = %(project)s {run_filter}
GROUP BY 1, 2, 3""",  # noqa: S608
        {"project": project.pk, "run": run_id},
    )
    tasks = PairwiseTask.objects.filter(project=project, state=PairwiseTask.State.OPEN)
    if run_id is not None:
        tasks = tasks.filter(run_id=run_id)
    names = sorted({row["a"] for row in found} | {row["b"] for row in found})
    index = {name: k for k, name in enumerate(names)}
    counts: dict[tuple[int, int], list[int]] = {}  # (i < j) -> [i won, j won, ties, both bad]
    for row in found:
        i, j = index[row["a"]], index[row["b"]]
        outcome = row["outcome"]
        if i > j:
            i, j = j, i
            outcome = {"a": "b", "b": "a"}.get(outcome, outcome)
        slot = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}[outcome]
        counts.setdefault((i, j), [0, 0, 0, 0])[slot] += row["n"]
    matrix: list[list[WinRate | None]] = [[None] * len(names) for _ in names]
    for (i, j), (wi, wj, ties, bad) in counts.items():
        n = wi + wj + ties
        matrix[i][j] = WinRate((wi + ties / 2) / n if n else None, n, bad)
        matrix[j][i] = WinRate((wj + ties / 2) / n if n else None, n, bad)
    decisive = {pair: (c[0], c[1], c[2]) for pair, c in counts.items() if sum(c[:3])}
    strengths = bradley_terry_intervals(names, decisive) if len(names) >= 2 and decisive else []
    return PairwiseResults(
        names=names,
        matrix=matrix,
        strengths=sorted(strengths, key=lambda s: -s.score),
        judged=sum(row["n"] for row in found),
        open=tasks.count(),
    )


# --- the same table from the rollup ------------------------------------------------------------


def _route_metrics_rollup(scope: Scope, where: str, params: dict[str, Any]) -> MetricsTable:
    from review.models import MetricRollupState
    from review.rollups import histogram_percentile, histogram_table

    keycol = GROUPS[scope.group_by]
    rows: dict[str, RouteMetrics] = {}

    def row(key: str) -> RouteMetrics:
        return rows.setdefault(key, RouteMetrics(key=key))

    sums = _fetch(
        f"""
SELECT ar.{keycol} AS key, sum(produced) AS produced, sum(reviewed) AS reviewed,
  sum(accepted_as_is) AS accepted_as_is, sum(accepted_after_edit) AS accepted_after_edit,
  sum(rejected) AS rejected, sum(awaiting_adjudication) AS awaiting_adjudication,
  sum(adjudicated) AS adjudicated, sum(char_effort_sum) AS ce, sum(word_effort_sum) AS we,
  sum(spend_usd) AS spend_usd, sum(counted_spend_usd) AS counted_spend_usd,
  sum(review_ms) AS review_ms, sum(images) AS images, sum(sum_y) AS sum_y,
  sum(sum_xx) AS sum_xx, sum(sum_yy) AS sum_yy, sum(sum_xy) AS sum_xy,
  sum(multi_reviewed) AS multi_reviewed, sum(agreed) AS agreed
FROM review_outcomerollup o JOIN routing_route ar ON ar.id = o.route_id
WHERE {where} GROUP BY 1""",  # noqa: S608
        params,
    )
    for found in sums:
        r = row(found["key"])
        for name in (
            "produced",
            "reviewed",
            "accepted_as_is",
            "accepted_after_edit",
            "rejected",
            "awaiting_adjudication",
            "adjudicated",
            "multi_reviewed",
            "agreed",
        ):
            setattr(r, name, int(found[name] or 0))
        edits = r.accepted_after_edit
        r.char_effort = float(found["ce"]) / edits if edits else None
        r.word_effort = float(found["we"]) / edits if edits else None
        _cost_figures(r, found, None)
    for found in _fetch(
        f"""
SELECT r.{keycol} AS key, sum(attempts) AS attempts, sum(retries) AS retries,
  sum(cached) AS cached, sum(timeouts) AS timeouts, sum(errors) AS errors,
  sum(fallbacks) AS fallbacks, sum(malformed) AS malformed
FROM review_callrollup o JOIN routing_route r ON r.id = o.route_id
WHERE {where} GROUP BY 1""",  # noqa: S608
        params,
    ):
        r = row(found.pop("key"))
        for name, value in found.items():
            setattr(r, name, int(value or 0))
    bins: dict[tuple[str, str], dict[int, int]] = {}
    for found in _fetch(
        f"""
SELECT r.{keycol} AS key, o.kind, o.bin, sum(o.n) AS n
FROM {histogram_table(scope)} o JOIN routing_route r ON r.id = o.route_id
WHERE {where} GROUP BY 1, 2, 3""",  # noqa: S608
        params,
    ):
        bins.setdefault((found["key"], found["kind"]), {})[found["bin"]] = int(found["n"])
    for (key, kind), counts in bins.items():
        r = row(key)
        if kind == "attempt":
            r.attempt_p50_ms = histogram_percentile(counts, 0.5)
            r.attempt_p95_ms = histogram_percentile(counts, 0.95)
            histogram_intervals(counts, r, kind)
        elif kind == "e2e":
            r.e2e_p50_ms = histogram_percentile(counts, 0.5)
            r.e2e_p95_ms = histogram_percentile(counts, 0.95)
            histogram_intervals(counts, r, kind)
        else:
            r.review_ms_median = histogram_percentile(counts, 0.5)
    for found in _fetch(
        f"""
SELECT r.{keycol} AS key, o.label, sum(o.n) AS n
FROM review_labelrollup o JOIN routing_route r ON r.id = o.route_id
WHERE {where} AND o.kind = 'reason' GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""",  # noqa: S608
        params,
    ):
        row(found["key"]).reject_reasons[found["label"]] = int(found["n"])
    state = MetricRollupState.objects.get(project=scope.project)
    return MetricsTable(
        scope=scope,
        rows=[rows[k] for k in sorted(rows)],
        images=max((r.images for r in rows.values()), default=0),
        as_of=state.refreshed_at,
    )
