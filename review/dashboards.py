"""Dashboard selectors: the figures behind each plot, aggregated in the database per route and per
day (or per latency bucket, per reviewer, per risk category), then drawn by ``review.charts``.
Every plot comes with the table it was drawn from, which is also its CSV download.

- Accepted-output rate over time: accepted / reviewed per route, by the day review decided.
- Cost per accepted output per route, with its 95% bootstrap interval (see ``review.metrics``).
- Latency distribution per route: the share of each route's attempts per latency band (24
  log-spaced bands from 1 ms to 1 h; cached answers and calls in flight left out).
- Spend against the budget: cumulative model spend (every attempt) by the day the caption was
  requested; the budget line is the chosen run's cap, or the sum of the caps of the project's
  runs that have one.
- Review throughput per reviewer: counted verdicts (skips apart) per day.

Big projects read these from their rollup (``review.rollups``) when it keeps the filters.
- Risk categories' share of rejects: of the rejected outputs, how many are of images flagged in
  each category (an admin's correction winning over the analyser); an image may be in several.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Sum

from review import sql as dialect
from review.charts import Chart, bar_chart, line_chart
from review.metrics import GROUPS, MetricsTable, Scope, _fetch, scope_sql
from review.models import RiskCategory
from review.rollups import BINS, bin_bounds, bin_sql, histogram_table, rollup_where
from routing.models import CaptionRun

MAX_POINTS = 60
LATENCY_BANDS = 24  # of the rollup's BINS histogram bins, merged four by four


@dataclass
class Plot:
    id: str
    title: str
    chart: Chart
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _usd(v: float) -> str:
    return f"${v:.4f}" if abs(v) < 10 else f"${v:,.2f}"


def _day(x: Any) -> str:
    return x.strftime("%Y-%m-%d") if isinstance(x, date | datetime) else str(x)


def _bucket(day: date, size: str) -> date:
    if size == "week":
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day


def _bucket_size(days: list[date]) -> str:
    if not days:
        return "day"
    span = (max(days) - min(days)).days + 1
    if span <= MAX_POINTS:
        return "day"
    return "week" if span <= MAX_POINTS * 7 else "month"


# --- accepted-output rate over time ------------------------------------------------------------


def accepted_rate_over_time(scope: Scope) -> Plot:
    keycol = GROUPS[scope.group_by]
    rolled = rollup_where(scope)
    if rolled is not None:
        where, params = rolled
        found = _fetch(
            f"""
SELECT ar.{keycol} AS key, o.decided_day AS day,
  sum(o.accepted_as_is + o.accepted_after_edit) AS accepted, sum(o.reviewed) AS reviewed
FROM review_outcomerollup o JOIN routing_route ar ON ar.id = o.route_id
WHERE {where} AND o.decided_day IS NOT NULL AND o.reviewed > 0
GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608
            params,
        )
    else:
        cte, params = scope_sql(scope)
        found = _fetch(
            f"""
WITH {cte}
SELECT ar.{keycol} AS key, {dialect.utc_day("ri.decided_at")} AS day,
  count(*) FILTER (WHERE ri.state = 'approved') AS accepted, count(*) AS reviewed
FROM scoped s
JOIN routing_route ar ON ar.id = s.arm
JOIN review_reviewitem ri ON ri.caption_id = s.id
WHERE ri.state IN ('approved', 'rejected')
GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608
            params,
        )
    for row in found:
        row["day"] = dialect.as_date(row["day"])
    size = _bucket_size([row["day"] for row in found])
    merged: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in found:
        cell = merged[row["key"]][_bucket(row["day"], size)]
        cell[0] += int(row["accepted"])
        cell[1] += int(row["reviewed"])
    series = [
        (key, [(day, a / n) for day, (a, n) in sorted(days.items())])
        for key, days in sorted(merged.items())
    ]
    rows = [
        [key, _day(day), a, n, round(a / n, 6)]
        for key, days in sorted(merged.items())
        for day, (a, n) in sorted(days.items())
    ]
    chart = line_chart(
        "Accepted-output rate over time",
        series,
        y_format=_pct,
        x_format=_day,
        y_min=0.0,
        y_max=1.0,
        y_label="accepted / reviewed",
    )
    return Plot(
        "rate",
        chart.title,
        chart,
        [scope.group_by, size, "accepted", "reviewed", "rate"],
        rows,
        note=f"Per {size} in which review decided the output.",
    )


# --- cost per accepted output ------------------------------------------------------------------


def cost_per_accepted(table: MetricsTable, group_by: str) -> Plot:
    bars = []
    rows = []
    for row in table.rows:
        cost = row.cost_per_accepted
        ci = (cost.interval.low, cost.interval.high) if cost.interval else None
        bars.append((row.key, cost.usd, ci))
        rows.append(
            [
                row.key,
                row.accepted,
                round(row.counted_spend_usd, 8),
                "" if cost.usd is None else round(cost.usd, 8),
                "" if ci is None else round(ci[0], 8),
                "" if ci is None else round(ci[1], 8),
            ]
        )
    chart = bar_chart("Cost per accepted output", bars, y_format=_usd, y_label="USD")
    return Plot(
        "cost",
        chart.title,
        chart,
        [group_by, "accepted", "counted spend usd", "cost per accepted", "ci low", "ci high"],
        rows,
        note="Bars with their 95% bootstrap interval over images.",
    )


# --- latency distribution ----------------------------------------------------------------------


def _band_edges() -> list[float]:
    """Band b (1..LATENCY_BANDS) covers the rollup's histogram bins (b-1)*k+1 .. b*k."""
    per = BINS // LATENCY_BANDS
    return [bin_bounds(1)[0]] + [bin_bounds(b * per)[1] for b in range(1, LATENCY_BANDS + 1)]


def _ms(v: float) -> str:
    if v < 1000:
        return f"{v:.0f} ms"
    return f"{v / 1000:.1f} s" if v < 60_000 else f"{v / 60_000:.1f} min"


def _latency_bins(scope: Scope) -> list[dict[str, Any]]:
    """(key, bin, n) for attempts, in the rollup's histogram bins, from the rollup or live."""
    keycol = GROUPS[scope.group_by]
    rolled = rollup_where(scope)
    if rolled is not None:
        where, params = rolled
        return _fetch(
            f"""
SELECT r.{keycol} AS key, o.bin, sum(o.n) AS n
FROM {histogram_table(scope)} o JOIN routing_route r ON r.id = o.route_id
WHERE {where} AND o.kind = 'attempt' GROUP BY 1, 2""",  # noqa: S608
            params,
        )
    cte, params = scope_sql(scope)
    return _fetch(
        f"""
WITH {cte}
SELECT r.{keycol} AS key, {bin_sql("mc.latency_ms")} AS bin, count(*) AS n
FROM scoped s
JOIN routing_modelcall mc ON mc.caption_id = s.id
JOIN routing_route r ON r.id = mc.route_id
WHERE mc.status NOT IN ('in_flight', 'cached') AND mc.latency_ms IS NOT NULL
GROUP BY 1, 2""",  # noqa: S608
        params,
    )


def latency_distribution(scope: Scope) -> Plot:
    per = BINS // LATENCY_BANDS
    edges = _band_edges()
    totals: dict[str, int] = defaultdict(int)
    per_key: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in _latency_bins(scope):
        band = (int(row["bin"]) - 1) // per + 1
        per_key[row["key"]][band] += int(row["n"])
        totals[row["key"]] += int(row["n"])
    # The band's geometric middle, on a log axis (x = log10 ms).
    mid = {b: math.log10(math.sqrt(edges[b - 1] * edges[b])) for b in range(1, LATENCY_BANDS + 1)}
    series = [
        (key, [(mid[b], bands.get(b, 0) / totals[key]) for b in range(1, LATENCY_BANDS + 1)])
        for key, bands in sorted(per_key.items())
    ]
    rows = [
        [key, f"{_ms(edges[b - 1])} – {_ms(edges[b])}", n, round(n / totals[key], 6)]
        for key, bands in sorted(per_key.items())
        for b, n in sorted(bands.items())
    ]
    labels = {1: "1 ms", 10: "10 ms", 100: "100 ms", 1_000: "1 s", 10_000: "10 s"}
    labels.update({60_000: "1 min", 600_000: "10 min", 3_600_000: "1 h"})
    ticks = [(math.log10(v), label) for v, label in labels.items()]
    chart = line_chart(
        "Latency distribution per attempt",
        series,
        y_format=_pct,
        x_format=lambda x: _ms(10 ** float(x)),
        x_ticks=ticks,
        y_label="share of attempts",
    )
    return Plot(
        "latency",
        chart.title,
        chart,
        [scope.group_by, "latency band", "attempts", "share"],
        rows,
        note="Share of each route's attempts per latency band (log scale, 1 ms to 1 h).",
    )


# --- spend against budget ----------------------------------------------------------------------


def _budget(scope: Scope) -> float | None:
    runs = CaptionRun.objects.filter(project=scope.project, budget_usd__isnull=False)
    if scope.run_id is not None:
        runs = runs.filter(pk=scope.run_id)
    total = runs.aggregate(total=Sum("budget_usd"))["total"]
    return float(total) if total is not None else None


def spend_over_time(scope: Scope) -> Plot:
    from review.metrics import _COST, default_gpu_hour_usd

    rolled = rollup_where(scope)
    if rolled is not None:
        where, params = rolled
        found = _fetch(
            f"SELECT o.day, sum(o.spend_usd) AS usd FROM review_outcomerollup o"  # noqa: S608
            f" WHERE {where} GROUP BY 1 ORDER BY 1",
            params,
        )
    else:
        cte, params = scope_sql(scope)
        params["gpu_hour_usd"] = default_gpu_hour_usd()
        found = _fetch(
            f"""
WITH {cte}
SELECT {dialect.utc_day("s.created_at")} AS day,
  CAST(sum({_COST}) AS DOUBLE PRECISION) AS usd
FROM scoped s
JOIN routing_modelcall mc ON mc.caption_id = s.id
JOIN routing_route r ON r.id = mc.route_id
GROUP BY 1 ORDER BY 1""",  # noqa: S608
            params,
        )
    for row in found:
        row["day"] = dialect.as_date(row["day"])
    size = _bucket_size([row["day"] for row in found])
    per: dict[date, float] = defaultdict(float)
    for row in found:
        per[_bucket(row["day"], size)] += float(row["usd"] or 0.0)
    running, points, rows = 0.0, [], []
    for day, usd in sorted(per.items()):
        running += usd
        points.append((day, running))
        rows.append([_day(day), round(usd, 8), round(running, 8)])
    budget = _budget(scope)
    chart = line_chart(
        "Spend against the budget",
        [("spend", points)] if points else [],
        y_format=_usd,
        x_format=_day,
        reference=(budget, f"budget {_usd(budget)}") if budget is not None and points else None,
        y_label="USD, cumulative",
    )
    note = "Every attempt, retries and fallbacks included, by the day its caption was requested."
    if budget is None:
        note += " No budget cap is set for these runs."
    return Plot("spend", chart.title, chart, [size, "spend usd", "cumulative usd"], rows, note)


# --- reviewers ---------------------------------------------------------------------------------


def review_throughput(scope: Scope, *, viewer, names_visible: bool) -> Plot:
    # The rollup counts verdicts on their own day; a date range here means the captions' days.
    rolled = None if scope.date_from or scope.date_to else rollup_where(scope)
    if rolled is not None:
        where, params = rolled
        found = _fetch(
            f"""
SELECT o.label::bigint AS reviewer_id, o.day,
  coalesce(sum(o.n) FILTER (WHERE o.kind = 'verdicts'), 0) AS verdicts,
  coalesce(sum(o.n) FILTER (WHERE o.kind = 'skips'), 0) AS skips
FROM review_labelrollup o
WHERE {where} AND o.kind IN ('verdicts', 'skips')
GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608
            params,
        )
    else:
        cte, params = scope_sql(scope)
        found = _fetch(
            f"""
WITH {cte}
SELECT v.reviewer_id, {dialect.utc_day("v.created_at")} AS day,
  count(*) FILTER (WHERE v.decision <> 'skip') AS verdicts,
  count(*) FILTER (WHERE v.decision = 'skip') AS skips
FROM scoped s JOIN review_verdict v ON v.caption_id = s.id
GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608
            params,
        )
    ids = sorted({row["reviewer_id"] for row in found})
    users = get_user_model().objects.in_bulk(ids)
    anonymous = {pk: f"reviewer {i + 1}" for i, pk in enumerate(ids)}

    def name(pk: int) -> str:
        if names_visible and pk in users:
            return users[pk].get_username()
        return "you" if pk == viewer.pk else anonymous[pk]

    for row in found:
        row["day"] = dialect.as_date(row["day"])
    size = _bucket_size([row["day"] for row in found])
    per: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in found:
        cell = per[name(row["reviewer_id"])][_bucket(row["day"], size)]
        cell[0] += int(row["verdicts"])
        cell[1] += int(row["skips"])
    series = [
        (who, [(day, v) for day, (v, _) in sorted(days.items())])
        for who, days in sorted(per.items())
    ]
    rows = [
        [who, _day(day), v, s]
        for who, days in sorted(per.items())
        for day, (v, s) in sorted(days.items())
    ]
    chart = line_chart(
        "Review throughput per reviewer",
        series,
        y_format=lambda v: f"{v:,.0f}",
        x_format=_day,
        y_label=f"verdicts per {size}",
    )
    return Plot("throughput", chart.title, chart, ["reviewer", size, "verdicts", "skips"], rows)


def _flag_sql(category: str) -> str:
    # category comes from RiskCategory.values (fixed identifiers), its value is a parameter.
    return (
        "COALESCE((SELECT rc.flagged FROM review_riskcorrection rc"  # noqa: S608
        f" WHERE rc.image_id = rej.image_id AND rc.category = %(cat_{category})s"
        " ORDER BY rc.created_at DESC, rc.id DESC LIMIT 1),"
        " EXISTS (SELECT 1 FROM review_riskflag rf WHERE rf.image_id = rej.image_id"
        f" AND rf.category = %(cat_{category})s AND rf.flagged))"
    )


def _risk_counts_live(scope: Scope) -> dict[str, Any]:
    cte, params = scope_sql(scope)
    categories = list(RiskCategory.values)
    params.update({f"cat_{c}": c for c in categories})
    flags = ",\n    ".join(f"{_flag_sql(c)} AS is_{c}" for c in categories)
    counts = ",\n  ".join(f"count(*) FILTER (WHERE is_{c}) AS {c}" for c in categories)
    none = " OR ".join(f"is_{c}" for c in categories)
    return _fetch(
        f"""
WITH {cte},
rej AS (
  SELECT s.image_id FROM scoped s JOIN review_reviewitem ri ON ri.caption_id = s.id
  WHERE ri.state = 'rejected'
),
per AS (SELECT {flags} FROM rej)
SELECT count(*) AS total, {counts}, count(*) FILTER (WHERE NOT ({none})) AS unflagged
FROM per""",  # noqa: S608
        params,
    )[0]


def _risk_counts_rollup(where: str, params: dict[str, Any]) -> dict[str, int]:
    total = _fetch(
        f"SELECT coalesce(sum(o.rejected), 0) AS n FROM review_outcomerollup o"  # noqa: S608
        f" WHERE {where}",
        params,
    )[0]["n"]
    found = {"total": int(total), "unflagged": 0, **{c: 0 for c in RiskCategory.values}}
    for row in _fetch(
        f"SELECT o.label, sum(o.n) AS n FROM review_labelrollup o"  # noqa: S608
        f" WHERE {where} AND o.kind = 'risk' GROUP BY 1",
        params,
    ):
        found[row["label"] or "unflagged"] = int(row["n"])
    return found


def risk_share_of_rejects(scope: Scope) -> Plot:
    rolled = rollup_where(scope)
    found = _risk_counts_rollup(*rolled) if rolled is not None else _risk_counts_live(scope)
    categories = list(RiskCategory.values)
    total = found["total"]
    labels = dict(RiskCategory.choices)
    entries = [(labels[c], found[c]) for c in categories] + [("Not flagged", found["unflagged"])]
    bars = [(label, (n / total) if total else None, None) for label, n in entries]
    rows = [[label, n, round(n / total, 6) if total else ""] for label, n in entries]
    chart = bar_chart("Risk categories' share of rejects", bars, y_format=_pct)
    return Plot(
        "risk",
        chart.title,
        chart,
        ["category", "rejected outputs", "share of rejects"],
        rows,
        note=f"{total} rejected outputs; an image flagged in two categories counts in both.",
    )


PLOT_IDS = ("rate", "cost", "latency", "spend", "throughput", "risk")


def dashboard_plots(
    *, scope: Scope, viewer, names_visible: bool, only: str | None = None
) -> list[Plot]:
    """Every plot of the dashboard (or only the one named), each with its table."""
    from review.metrics import route_metrics

    builders: dict[str, Callable[[], Plot]] = {
        "rate": lambda: accepted_rate_over_time(scope),
        "cost": lambda: cost_per_accepted(route_metrics(scope=scope), scope.group_by),
        "latency": lambda: latency_distribution(scope),
        "spend": lambda: spend_over_time(scope),
        "throughput": lambda: review_throughput(scope, viewer=viewer, names_visible=names_visible),
        "risk": lambda: risk_share_of_rejects(scope),
    }
    if only is not None and only not in builders:
        raise ValueError(f"Unknown plot {only!r}")
    return [builders[pid]() for pid in ([only] if only else PLOT_IDS)]
