"""A run's running totals (``RunCounter``): read, folded and rebuilt.

PostgreSQL triggers (routing migration 0008) add a row of differences for every statement that
changes a run's captions or calls, in that statement's transaction. A run's totals are the sums
of its rows, so they are exact whatever wrote the rows (workers, the sweep re-claiming lost
work, cancel, retry, bulk updates, cascades) and however many workers write at once: nobody
updates a shared row, nobody waits. Folding replaces a key's rows with their sum; reads fold
their run when they find many rows, the sweep folds every run, so reads stay a few rows.

Other databases (a first run's SQLite) have no triggers: there ``counters_kept()`` is False and
the run page aggregates the rows.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from routing.models import Caption, ModelCall, RunCounter

CAPTION_FIELDS = ("captions", "pending", "running", "succeeded", "failed", "cancelled")
CALL_FIELDS = (
    "calls",
    "calls_in_flight",
    "calls_succeeded",
    "calls_failed",
    "calls_cached",
    "calls_lost",
    "retries",
    "fallbacks",
    "timeouts",
    "spent_usd",
    "latency_ms_sum",
    "latency_n",
)
FIELDS = CAPTION_FIELDS + CALL_FIELDS
#: A read folds its run once it finds more rows than this beyond one per key.
FOLD_AFTER_ROWS = 50
#: Rows one fold moves at most (the rest waits for the next read or sweep).
FOLD_BATCH = 200_000

_SUMS = ", ".join(f"sum({name})" for name in FIELDS)
_NAMES = ", ".join(FIELDS)
# Rows locked by another fold are skipped, not waited for: that fold moves them.
_FOLD_RUN_SQL = f"""
WITH moved AS (
    DELETE FROM routing_runcounter WHERE id IN (
        SELECT id FROM routing_runcounter WHERE run_id = %s
        ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
    ) RETURNING *
)
INSERT INTO routing_runcounter (run_id, route_id, {_NAMES})
SELECT run_id, route_id, {_SUMS} FROM moved GROUP BY run_id, route_id
"""  # noqa: S608 - column names are constants
_FOLD_ALL_SQL = f"""
WITH keys AS (
    SELECT run_id, route_id FROM routing_runcounter GROUP BY 1, 2 HAVING count(*) > 1
), moved AS (
    DELETE FROM routing_runcounter WHERE id IN (
        SELECT c.id FROM routing_runcounter c JOIN keys k
            ON k.run_id = c.run_id AND k.route_id IS NOT DISTINCT FROM c.route_id
        ORDER BY c.id LIMIT %s FOR UPDATE OF c SKIP LOCKED
    ) RETURNING *
)
INSERT INTO routing_runcounter (run_id, route_id, {_NAMES})
SELECT run_id, route_id, {_SUMS} FROM moved GROUP BY run_id, route_id
"""  # noqa: S608 - column names are constants


def counters_kept() -> bool:
    """Whether the triggers keep the counters (PostgreSQL)."""
    return connection.vendor == "postgresql"


def run_counters(*, run_id: int) -> dict[int | None, dict[str, Any]]:
    """The run's totals per key (None: its captions by status; a route id: that route's calls,
    with ``route__name``), in one query. Folds the run's rows afterwards when there were many."""
    rows = (
        RunCounter.objects.filter(run_id=run_id)
        .values("route_id", "route__name")
        .annotate(rows=Count("id"), **{name: Sum(name) for name in FIELDS})
        .order_by()
    )
    totals: dict[int | None, dict[str, Any]] = {}
    extra = 0
    for row in rows:
        extra += row.pop("rows") - 1
        totals[row["route_id"]] = row
    if extra > FOLD_AFTER_ROWS:
        run_counters_fold(run_id=run_id)
    return totals


def run_counters_fold(*, run_id: int | None = None, limit: int = FOLD_BATCH) -> int:
    """Replace rows of the same key by their sum (one run's, or every key with several rows);
    returns the rows moved. Safe at any time: a fold moves rows, never changes a sum."""
    if not counters_kept():
        return 0
    with connection.cursor() as cursor:
        if run_id is None:
            cursor.execute(_FOLD_ALL_SQL, [limit])
        else:
            cursor.execute(_FOLD_RUN_SQL, [run_id, limit])
        return cursor.rowcount


def run_counters_rebuild(*, run_ids: list[int] | None = None) -> int:
    """Recompute counters from the rows (of these runs, or all): after rows were written with the
    triggers off (a bulk load), or to check them. Writers wait while it runs (the tables are
    locked in SHARE mode), so no change falls between the count and the triggers. Returns the
    counter rows written."""
    if not counters_kept():
        return 0
    answered = Q(status__in=[ModelCall.Status.SUCCEEDED, ModelCall.Status.FAILED]) & Q(
        latency_ms__isnull=False
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE routing_caption, routing_modelcall IN SHARE MODE")
        counters = RunCounter.objects.all()
        captions = Caption.objects.filter(run__isnull=False)
        calls = ModelCall.objects.filter(run__isnull=False)
        if run_ids is not None:
            counters = counters.filter(run_id__in=run_ids)
            captions = captions.filter(run_id__in=run_ids)
            calls = calls.filter(run_id__in=run_ids)
        counters.delete()
        rows = [
            RunCounter(**row)
            for row in captions.values("run_id")
            .annotate(
                captions=Count("id"),
                **{status: Count("id", filter=Q(status=status)) for status in CAPTION_FIELDS[1:]},
            )
            .order_by()
        ]
        rows += [
            RunCounter(**{k: (0 if v is None else v) for k, v in row.items()})
            for row in calls.values("run_id", "route_id")
            .annotate(
                calls=Count("id"),
                calls_in_flight=Count("id", filter=Q(status=ModelCall.Status.IN_FLIGHT)),
                calls_succeeded=Count("id", filter=Q(status=ModelCall.Status.SUCCEEDED)),
                calls_failed=Count("id", filter=Q(status=ModelCall.Status.FAILED)),
                calls_cached=Count("id", filter=Q(status=ModelCall.Status.CACHED)),
                calls_lost=Count("id", filter=Q(status=ModelCall.Status.LOST)),
                retries=Count("id", filter=Q(trigger="retry")),
                fallbacks=Count("id", filter=Q(trigger__startswith="fallback:")),
                timeouts=Count("id", filter=Q(error_class="timeout")),
                spent_usd=Sum("cost_usd"),
                latency_ms_sum=Sum("latency_ms", filter=answered),
                latency_n=Count("id", filter=answered),
            )
            .order_by()
        ]
        RunCounter.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
