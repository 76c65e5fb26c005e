"""Metric rollups: what makes the comparison, dashboards and headline figures fast on big projects.

A project with at least ``METRICS_ROLLUP_MIN_CAPTIONS`` captions has its per-day sums rebuilt by
the periodic task ``review.tasks.metric_rollups_refresh`` (every ``METRICS_ROLLUP_INTERVAL_S``,
default 10 minutes); its pages then read those few thousand rows instead of aggregating a million
review items and three million model calls, and say when the figures were taken. Smaller projects
are always computed live.

Rows are kept per run, route, day, decided day, the image's risk categories, and two slices that
make the remaining filters read rollups too: a copy of every row per reviewer, over the outputs
that reviewer gave a verdict on (the reviewer filter), and, per image, the routes with a decided
output in the same run and among the captions of the project's current prompt across runs, as
",3,7," (a comparison of any chosen set of routes, in a run or across runs, keeps the rows whose
image every chosen route has); the side-by-side view pages through the same slices per image and
route (``ImageRouteRollup``). Only a date range on the side-by-side view, a prompt other than
the one the rollup was taken for, and a cross-run comparison without a prompt compute live.

Histograms are also kept summed over days (``HistogramTotal``), which scopes without a date
range read: a route's bins split sixty ways over two months of days otherwise.

The rollup keeps the same measures as ``review.metrics`` with two approximations: percentiles come
from log-spaced histograms (``BINS`` bins from 1 ms to 1 h, so a percentile is within about 8% of
the exact one), and the cost interval is the normal approximation of the ratio (used live too
above 2,000 images).
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Project
from review.models import MetricRollupState, RiskCategory
from review.risk.captions import RISK_QUESTION

BINS = 96
BIN_LOW_MS, BIN_HIGH_MS = 1.0, 3_600_000.0
_LOG_HIGH = math.log(BIN_HIGH_MS)


def rollup_min_captions() -> int:
    return int(getattr(settings, "METRICS_ROLLUP_MIN_CAPTIONS", 200_000))


def bin_sql(expr: str) -> str:
    """The histogram bin (1..BINS) of a millisecond value, in SQL (SQLite: the same bins from
    its ``ln``, ``min`` and ``max``)."""
    if connection.vendor == "sqlite":
        return (
            f"min(max(CAST(ln(max({expr}, 1)) / {_LOG_HIGH!r} * {BINS} AS INTEGER) + 1, 1), {BINS})"
        )
    return (
        f"least(greatest(width_bucket(ln(greatest({expr}, 1)), 0, {_LOG_HIGH!r}, {BINS}), 1),"
        f" {BINS})"
    )


def bin_bounds(b: int) -> tuple[float, float]:
    return (math.exp(_LOG_HIGH * (b - 1) / BINS), math.exp(_LOG_HIGH * b / BINS))


def histogram_percentile(counts: dict[int, int], q: float) -> float | None:
    """The q-th quantile (0..1) of a binned distribution, interpolated geometrically in its bin."""
    total = sum(counts.values())
    if not total:
        return None
    target = q * total
    running = 0
    for b in sorted(counts):
        n = counts[b]
        if running + n >= target:
            low, high = bin_bounds(b)
            share = (target - running) / n if n else 0.0
            return low * (high / low) ** share
        running += n
    return bin_bounds(max(counts))[1]


# --- refresh -----------------------------------------------------------------------------------

_COST = """COALESCE(mc.cost_usd, CASE WHEN r.provider = 'local' AND mc.latency_ms IS NOT NULL
  THEN mc.latency_ms / 3600000.0 * COALESCE(r.gpu_hour_usd, %(gpu_hour_usd)s) END, 0)"""


def _flagged(category: str) -> str:
    # An admin's latest correction wins; without one, the analyser's flag (as everywhere).
    return (
        "COALESCE((SELECT rc.flagged FROM review_riskcorrection rc"  # noqa: S608 - a constant
        f" WHERE rc.image_id = x.image_id AND rc.category = '{category}'"
        " ORDER BY rc.created_at DESC, rc.id DESC LIMIT 1),"
        " EXISTS (SELECT 1 FROM review_riskflag rf WHERE rf.image_id = x.image_id"
        f" AND rf.category = '{category}' AND rf.flagged))"
    )


_RISK = ", ".join(f"CASE WHEN {_flagged(c)} THEN '{c}' END" for c in RiskCategory.values)

_FACTS = f"""
CREATE TEMP TABLE rollup_risk ON COMMIT DROP AS
WITH x AS (
  SELECT rf.image_id FROM review_riskflag rf JOIN labeling_image i ON i.id = rf.image_id
  WHERE i.project_id = %(project)s AND rf.flagged
  UNION
  SELECT rc.image_id FROM review_riskcorrection rc JOIN labeling_image i ON i.id = rc.image_id
  WHERE i.project_id = %(project)s
)
SELECT x.image_id, concat_ws(',', {_RISK}) AS risk FROM x;

CREATE TEMP TABLE rollup_caps ON COMMIT DROP AS
SELECT c.id, c.image_id, c.run_id, c.status, c.latency_ms,
       (c.created_at AT TIME ZONE 'UTC')::date AS day,
       COALESCE(c.target_route_id, c.route_id) AS arm, coalesce(rr.risk, '') AS risk,
       c.prompt = %(prompt)s AS current_prompt
FROM routing_caption c JOIN labeling_image i ON i.id = c.image_id
LEFT JOIN rollup_risk rr ON rr.image_id = c.image_id
WHERE i.project_id = %(project)s AND NOT (c.task = 'question' AND c.prompt = %(risk_question)s);

CREATE TEMP TABLE rollup_shared ON COMMIT DROP AS
WITH run_arms AS (
  SELECT rr.captionrun_id AS run_id, rr.route_id
  FROM routing_captionrun_routes rr JOIN routing_captionrun cr ON cr.id = rr.captionrun_id
  WHERE cr.project_id = %(project)s AND cr.kind = 'comparison'
)
SELECT k.run_id, k.image_id
FROM rollup_caps k
JOIN run_arms ra ON ra.run_id = k.run_id AND ra.route_id = k.arm
JOIN review_reviewitem ri ON ri.caption_id = k.id AND ri.state IN ('approved', 'rejected')
GROUP BY 1, 2
HAVING count(DISTINCT k.arm) = (SELECT count(*) FROM run_arms x WHERE x.run_id = k.run_id);

CREATE TEMP TABLE rollup_calls ON COMMIT DROP AS
SELECT mc.caption_id, mc.route_id, mc.status, mc.error_class, mc.latency_ms, mc.trigger,
       lead(mc.trigger) OVER (PARTITION BY mc.caption_id ORDER BY mc.attempt) AS next_trigger,
       {_COST} AS usd
FROM routing_modelcall mc
JOIN rollup_caps k ON k.id = mc.caption_id
JOIN routing_route r ON r.id = mc.route_id;

CREATE TEMP TABLE rollup_base ON COMMIT DROP AS
WITH spend AS (
  -- a caption's own route pays for every attempt; a caption no route answered (a chain that
  -- failed everywhere) leaves its spend with each route it tried, as live figures do
  SELECT c.caption_id, CASE WHEN k.arm IS NULL THEN c.route_id END AS route_id, sum(c.usd) AS usd
  FROM rollup_calls c JOIN rollup_caps k ON k.id = c.caption_id GROUP BY 1, 2
),
verdicts AS (
  SELECT v.caption_id, sum(v.time_spent_ms) AS ms,
    count(*) FILTER (WHERE v.decision <> 'skip') AS counted,
    (bool_and(v.decision IN ('accept', 'edit')) FILTER (WHERE v.decision <> 'skip')
      AND count(DISTINCT regexp_replace(btrim(v.final_text), '\\s+', ' ', 'g'))
        FILTER (WHERE v.decision <> 'skip') = 1)
    OR coalesce(bool_and(v.decision = 'reject') FILTER (WHERE v.decision <> 'skip'), false)
      AS agreed
  FROM review_verdict v JOIN rollup_caps k ON k.id = v.caption_id GROUP BY 1
)
SELECT k.id, k.image_id, k.run_id, k.status, k.latency_ms, k.day, k.risk, k.current_prompt,
       COALESCE(k.arm, sp.route_id) AS arm, k.arm IS NOT NULL AS own,
       s.image_id IS NOT NULL AS shared,
       ri.id AS item_id, ri.state, ri.edited, ri.char_effort, ri.word_effort,
       (ri.decided_at AT TIME ZONE 'UTC')::date AS decided_day,
       adj.id IS NOT NULL AS adjudicated,
       coalesce(sp.usd, 0) AS usd, coalesce(vd.ms, 0) AS review_ms,
       coalesce(vd.counted, 0) AS counted, coalesce(vd.agreed, false) AS agreed
FROM rollup_caps k
LEFT JOIN spend sp ON sp.caption_id = k.id
LEFT JOIN rollup_shared s ON s.run_id = k.run_id AND s.image_id = k.image_id
LEFT JOIN review_reviewitem ri ON ri.caption_id = k.id AND k.arm IS NOT NULL
LEFT JOIN review_adjudication adj ON adj.item_id = ri.id
LEFT JOIN verdicts vd ON vd.caption_id = k.id AND k.arm IS NOT NULL
WHERE COALESCE(k.arm, sp.route_id) IS NOT NULL;

CREATE TEMP TABLE rollup_who ON COMMIT DROP AS
SELECT DISTINCT v.caption_id, v.reviewer_id
FROM review_verdict v JOIN rollup_caps k ON k.id = v.caption_id
WHERE k.arm IS NOT NULL;

CREATE TEMP TABLE rollup_sliced ON COMMIT DROP AS
SELECT b.*, NULL::integer AS reviewer_id FROM rollup_base b
UNION ALL
SELECT b.*, w.reviewer_id FROM rollup_base b JOIN rollup_who w ON w.caption_id = b.id;

CREATE TEMP TABLE rollup_facts ON COMMIT DROP AS
WITH decided AS (
  SELECT coalesce(reviewer_id, 0) AS who, run_id, image_id, arm, current_prompt
  FROM rollup_sliced WHERE own AND state IN ('approved', 'rejected')
),
in_run AS (
  SELECT who, run_id, image_id, ',' || string_agg(DISTINCT arm::text, ',') || ',' AS routes
  FROM decided WHERE run_id IS NOT NULL GROUP BY 1, 2, 3
),
in_prompt AS (
  SELECT who, image_id, ',' || string_agg(DISTINCT arm::text, ',') || ',' AS routes
  FROM decided WHERE current_prompt GROUP BY 1, 2
)
-- a caption no route answered is in no comparison (live figures leave it out of them too)
SELECT f.*,
  CASE WHEN f.own THEN coalesce(r.routes, '') ELSE '' END AS run_routes,
  CASE WHEN f.own THEN coalesce(p.routes, '') ELSE '' END AS prompt_routes
FROM rollup_sliced f
LEFT JOIN in_run r
  ON r.who = coalesce(f.reviewer_id, 0) AND r.run_id = f.run_id AND r.image_id = f.image_id
LEFT JOIN in_prompt p ON p.who = coalesce(f.reviewer_id, 0) AND p.image_id = f.image_id;
"""  # noqa: S608 - fixed SQL; the cost expression is a constant above

_OUTCOMES = """
INSERT INTO review_outcomerollup (project_id, run_id, route_id, day, decided_day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  produced, reviewed, accepted_as_is, accepted_after_edit, rejected, awaiting_adjudication,
  adjudicated, char_effort_sum, word_effort_sum, spend_usd, counted_spend_usd, review_ms,
  images, sum_y, sum_xx, sum_yy, sum_xy, multi_reviewed, agreed)
WITH per_image AS (
  SELECT run_id, arm, day, decided_day, shared, risk,
    reviewer_id, run_routes, prompt_routes, current_prompt, image_id,
    count(*) FILTER (WHERE own AND status = 'succeeded') AS produced,
    count(*) FILTER (WHERE own AND state IN ('approved', 'rejected')) AS reviewed,
    count(*) FILTER (WHERE own AND state = 'approved' AND edited IS NOT TRUE) AS as_is,
    count(*) FILTER (WHERE own AND state = 'approved' AND edited) AS after_edit,
    count(*) FILTER (WHERE own AND state = 'rejected') AS rejected,
    count(*) FILTER (WHERE own AND state = 'adjudication') AS awaiting,
    count(*) FILTER (WHERE own AND adjudicated) AS adjudicated,
    coalesce(sum(char_effort) FILTER (WHERE own AND state = 'approved' AND edited), 0) AS ce,
    coalesce(sum(word_effort) FILTER (WHERE own AND state = 'approved' AND edited), 0) AS we,
    sum(usd) AS spend,
    coalesce(sum(usd) FILTER (WHERE state IN ('approved', 'rejected') OR status = 'failed'), 0)
      AS x,
    count(*) FILTER (WHERE own AND state = 'approved') AS y,
    coalesce(sum(review_ms) FILTER (WHERE state IN ('approved', 'rejected')), 0) AS review_ms,
    bool_or(state IN ('approved', 'rejected') OR status = 'failed') AS counts,
    count(*) FILTER (WHERE own AND counted >= 2) AS multi,
    count(*) FILTER (WHERE own AND counted >= 2 AND agreed) AS agreed
  FROM rollup_facts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)
SELECT %(project)s, run_id, arm, day, decided_day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  sum(produced), sum(reviewed), sum(as_is), sum(after_edit), sum(rejected), sum(awaiting),
  sum(adjudicated), sum(ce), sum(we), sum(spend), sum(x), sum(review_ms),
  count(*) FILTER (WHERE counts), coalesce(sum(y) FILTER (WHERE counts), 0),
  coalesce(sum(x * x) FILTER (WHERE counts), 0), coalesce(sum(y * y) FILTER (WHERE counts), 0),
  coalesce(sum(x * y) FILTER (WHERE counts), 0), sum(multi), sum(agreed)
FROM per_image GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
"""

# The calls' counts and their latency histogram from one pass over calls joined to their facts
# (the biggest join of the rebuild: three million calls, each with every reviewer's copy of its
# caption): counts per slice and latency bin (bin NULL for a call the histogram leaves out),
# then summed over bins for the counts.
_CALLS = f"""
CREATE TEMP TABLE rollup_call_bins ON COMMIT DROP AS
SELECT f.run_id, c.route_id, f.day, f.shared, f.risk,
  f.reviewer_id, f.run_routes, f.prompt_routes, f.current_prompt,
  CASE WHEN c.status NOT IN ('in_flight', 'cached') AND c.latency_ms IS NOT NULL
    THEN {bin_sql("c.latency_ms")} END AS bin,
  count(*) FILTER (WHERE c.status NOT IN ('in_flight', 'cached')) AS attempts,
  count(*) FILTER (WHERE c.status NOT IN ('in_flight', 'cached') AND c.trigger = 'retry')
    AS retries,
  count(*) FILTER (WHERE c.status = 'cached') AS cached,
  count(*) FILTER (WHERE c.status NOT IN ('in_flight', 'cached') AND c.error_class = 'timeout')
    AS timeouts,
  count(*) FILTER (WHERE c.status IN ('failed', 'lost')) AS errors,
  count(*) FILTER (WHERE c.status NOT IN ('in_flight', 'cached')
    AND c.next_trigger LIKE 'fallback:%%') AS fallbacks,
  count(*) FILTER (WHERE c.status NOT IN ('in_flight', 'cached')
    AND (c.error_class = ANY(%(malformed)s) OR c.error_class LIKE 'malformed%%')) AS malformed
FROM rollup_calls c
JOIN rollup_facts f ON f.id = c.caption_id AND (f.own OR f.arm = c.route_id)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;

INSERT INTO review_callrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  attempts, retries, cached, timeouts, errors, fallbacks, malformed)
SELECT %(project)s, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  sum(attempts), sum(retries), sum(cached), sum(timeouts), sum(errors), sum(fallbacks),
  sum(malformed)
FROM rollup_call_bins
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
"""  # noqa: S608 - fixed SQL; the bins are numbers computed here

_HISTOGRAMS = f"""
INSERT INTO review_histogramrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, bin, n)
SELECT %(project)s, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt, 'attempt', bin, sum(attempts)
FROM rollup_call_bins WHERE bin IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;

INSERT INTO review_histogramrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, bin, n)
SELECT %(project)s, run_id, arm, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt, 'e2e',
  {bin_sql("latency_ms")}, count(*)
FROM rollup_facts WHERE own AND status = 'succeeded' AND latency_ms IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;

INSERT INTO review_histogramrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, bin, n)
SELECT %(project)s, run_id, arm, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt, 'review',
  {bin_sql("review_ms")}, count(*)
FROM rollup_facts WHERE own AND state IN ('approved', 'rejected')
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;

INSERT INTO review_histogramtotal (project_id, run_id, route_id, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt, kind, bin, n)
SELECT project_id, run_id, route_id, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt, kind, bin, sum(n)
FROM review_histogramrollup WHERE project_id = %(project)s
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
"""  # noqa: S608 - fixed SQL; the bins are numbers computed here

_LABELS = """
INSERT INTO review_labelrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, label, n)
SELECT %(project)s, f.run_id, f.arm, f.day, f.shared, f.risk,
  f.reviewer_id, f.run_routes, f.prompt_routes, f.current_prompt, 'reason', reason, count(*)
FROM rollup_facts f
JOIN review_verdict v ON v.caption_id = f.id AND v.decision = 'reject'
CROSS JOIN LATERAL jsonb_array_elements_text(v.reasons) AS reason
WHERE f.own
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;

INSERT INTO review_labelrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, label, n)
SELECT %(project)s, f.run_id, f.arm, f.day, f.shared, f.risk,
  f.reviewer_id, f.run_routes, f.prompt_routes, f.current_prompt, 'risk', cat.category,
  count(*)
FROM rollup_facts f
CROSS JOIN (VALUES ('chart'), ('screenshot'), ('medical'), ('')) AS cat(category)
WHERE f.own AND f.state = 'rejected' AND (
  (cat.category = '' AND f.risk = '') OR cat.category = ANY(string_to_array(f.risk, ',')))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;

INSERT INTO review_labelrollup (project_id, run_id, route_id, day, shared, risk,
  reviewer_id, run_routes, prompt_routes, current_prompt,
  kind, label, n)
SELECT %(project)s, f.run_id, f.arm, (v.created_at AT TIME ZONE 'UTC')::date, f.shared, f.risk,
  f.reviewer_id, f.run_routes, f.prompt_routes, f.current_prompt,
  CASE WHEN v.decision = 'skip' THEN 'skips' ELSE 'verdicts' END, v.reviewer_id::text, count(*)
FROM rollup_facts f JOIN review_verdict v ON v.caption_id = f.id
WHERE f.own
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
"""

_IMAGES = """
INSERT INTO review_imagerollup (project_id, run_id, image_id, shared, risk, accepted, rejected,
  disputed)
SELECT %(project)s, run_id, image_id, bool_or(shared), max(risk),
  count(*) FILTER (WHERE state = 'approved'), count(*) FILTER (WHERE state = 'rejected'),
  count(*) FILTER (WHERE adjudicated OR state = 'adjudication')
FROM rollup_facts
WHERE own AND reviewer_id IS NULL AND run_id IN (SELECT id FROM routing_captionrun
  WHERE project_id = %(project)s AND kind = 'comparison')
GROUP BY 1, 2, 3;

-- per image and route, in a run and per reviewer slice, where the image is in some comparison (two
-- or more routes decided, in its run or under the current prompt): the side-by-side view of a
-- reviewer or of routes across runs (disputed counts an item once, adjudicated or waiting)
INSERT INTO review_imagerouterollup (project_id, run_id, image_id, route_id, reviewer_id,
  current_prompt, run_routes, prompt_routes, risk, accepted, rejected, disputed)
SELECT %(project)s, run_id, image_id, arm, reviewer_id, current_prompt, run_routes,
  prompt_routes, risk,
  count(*) FILTER (WHERE state = 'approved'), count(*) FILTER (WHERE state = 'rejected'),
  count(*) FILTER (WHERE adjudicated OR state = 'adjudication')
FROM rollup_facts
WHERE own
  AND (run_routes LIKE '%%,%%,%%,%%' OR (current_prompt AND prompt_routes LIKE '%%,%%,%%,%%'))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
"""

_TABLES = (
    "review_imagerollup",
    "review_imagerouterollup",
    "review_histogramtotal",
    "review_outcomerollup",
    "review_callrollup",
    "review_histogramrollup",
    "review_labelrollup",
)


_REFRESH_LOCK = 0x2011  # advisory lock namespace: one rebuild of a project at a time


def metric_rollup_refresh(*, project: Project, wait: bool = True) -> MetricRollupState | None:
    """Rebuild the project's rollup rows in one transaction (readers see the old or the new).

    One rebuild of a project runs at a time: with ``wait`` False (the periodic task) a rebuild
    that finds another under way returns None at once, so rebuilds that take longer than the
    interval do not pile up behind each other."""
    from review.metrics import MALFORMED_CLASSES, default_gpu_hour_usd

    started = time.perf_counter()
    params = {
        "project": project.pk,
        "risk_question": RISK_QUESTION,
        "gpu_hour_usd": default_gpu_hour_usd(),
        "malformed": list(MALFORMED_CLASSES),
        "prompt": project.caption_prompt,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        cursor.execute(f"SELECT {lock}(%s, %s)", [_REFRESH_LOCK, project.pk])
        if not wait and not cursor.fetchone()[0]:
            return None
        for table in _TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [project.pk])  # noqa: S608
        statements = _FACTS + _OUTCOMES + _CALLS + _HISTOGRAMS + _LABELS + _IMAGES
        # The temp tables go at commit; a rebuild inside a caller's transaction (a second one
        # there, e.g. in a test) finds the first one's still there.
        temp = re.findall(r"CREATE TEMP TABLE (\w+)", statements)
        cursor.execute("DROP TABLE IF EXISTS " + ", ".join(f"pg_temp.{t}" for t in temp))
        for statement in statements.split(";\n"):
            if statement.strip():
                cursor.execute(statement, params)
        cursor.execute("SELECT count(*) FROM rollup_caps")
        captions = cursor.fetchone()[0]
        # Fresh statistics, so the pages' reads are planned for what the tables now hold.
        cursor.execute("ANALYZE " + ", ".join(_TABLES))
        state, _ = MetricRollupState.objects.update_or_create(
            project=project,
            defaults={
                "refreshed_at": timezone.now(),
                "duration_ms": int((time.perf_counter() - started) * 1000),
                "captions": captions,
                "prompt": project.caption_prompt,
            },
        )
    return state


def projects_to_roll_up() -> list[Project]:
    """Projects big enough for rollups: those with a rollup already, or enough captions now."""
    big: list[Project] = []
    if connection.vendor != "postgresql":
        return big
    minimum = rollup_min_captions()
    for project in Project.objects.order_by("id"):
        if MetricRollupState.objects.filter(project=project).exists():
            big.append(project)
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT 1 FROM review_reviewitem WHERE project_id = %s"
                " LIMIT %s) x",
                [project.pk, minimum],
            )
            if cursor.fetchone()[0] >= minimum:
                big.append(project)
    return big


def rollup_state(project: Project) -> MetricRollupState | None:
    return MetricRollupState.objects.filter(project=project).first()


def stale(state: MetricRollupState, now: datetime | None = None) -> bool:
    """Older than three refresh intervals: the periodic task is not running."""
    interval = float(getattr(settings, "METRICS_ROLLUP_INTERVAL_S", 600.0))
    return (now or timezone.now()) - state.refreshed_at > timedelta(seconds=3 * interval)


def histogram_table(scope: Any) -> str:
    """Where a scope's histograms are read: summed over days unless it has a date range."""
    return "review_histogramrollup" if scope.date_from or scope.date_to else "review_histogramtotal"


def rollup_where(scope: Any, alias: str = "o") -> tuple[str, dict[str, Any]] | None:
    """The WHERE clause that reads ``scope`` from rollup rows, or None when the rollup cannot
    answer it (no rollup for the project, or a filter it does not keep)."""

    if connection.vendor != "postgresql":
        return None  # a first run's SQLite has no rollups (and no project that needs one)
    state = MetricRollupState.objects.filter(project=scope.project).only("prompt").first()
    if state is None:
        return None
    if scope.prompt is not None and scope.prompt != state.prompt:
        return None  # it knows which captions used the prompt it was taken with, no other
    if scope.same_images and scope.run_id is None and scope.prompt is None:
        return None  # across runs it keeps the routes decided under the current prompt only
    where = [f"{alias}.project_id = %(project)s"]
    params: dict[str, Any] = {"project": scope.project.pk}
    if scope.reviewer_id is not None:
        where.append(f"{alias}.reviewer_id = %(reviewer)s")
        params["reviewer"] = scope.reviewer_id
    else:
        where.append(f"{alias}.reviewer_id IS NULL")
    if scope.prompt is not None:
        where.append(f"{alias}.current_prompt")
    if scope.run_id is not None:
        where.append(f"{alias}.run_id = %(run)s")
        params["run"] = scope.run_id
    if scope.same_images:
        # Images every chosen route captioned and review decided (within the reviewer's slice).
        column = "run_routes" if scope.run_id is not None else "prompt_routes"
        for k, route_id in enumerate(sorted(set(scope.route_ids))):
            where.append(f"{alias}.{column} LIKE %(has_route_{k})s")
            params[f"has_route_{k}"] = f"%,{int(route_id)},%"
    if scope.route_ids:
        where.append(f"{alias}.route_id = ANY(%(routes)s)")
        params["routes"] = list(scope.route_ids)
    if scope.risk_category:
        where.append(f"%(risk)s = ANY(string_to_array({alias}.risk, ','))")
        params["risk"] = scope.risk_category
    if scope.date_from:
        where.append(f"{alias}.day >= %(date_from)s")
        params["date_from"] = scope.date_from
    if scope.date_to:
        where.append(f"{alias}.day <= %(date_to)s")
        params["date_to"] = scope.date_to
    return " AND ".join(where), params
