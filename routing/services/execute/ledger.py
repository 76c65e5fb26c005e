"""The call log and the money: one ``ModelCall`` row per attempt, opened before the vendor is
asked and closed once with what happened, and each call's budget reservation moved to the run's
spend exactly once.

Every close is a conditional UPDATE on the row still being in flight, so a call is billed once
however many workers, sweeps or retries touch it; the reservation moves only when that UPDATE
won. A call whose outcome nobody learnt (its worker died) is counted at the estimate it was
opened with and marked as estimated: the vendor may have billed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from routing import hooks
from routing.models import Caption, CaptionRun, ModelCall, Route
from routing.providers import CaptionResult, ProviderError
from routing.services import budget

RAW_OUTPUT_CHARS = 2000
ERROR_CHARS = 2000


def call_open(
    *,
    caption: Caption | None,
    route: Route,
    attempt: int,
    route_attempt: int,
    trigger: str,
    timeout_s: float,
    reserved: Decimal,
    estimate: Decimal | None,
    cache_key: str,
    notes: tuple[str, ...] = (),
    request_id: str = "",
    route_test_id: int | None = None,
) -> ModelCall:
    """The attempt's row, written (and committed) before the vendor is asked: a worker that dies
    during the call leaves it behind for the sweep to find. A route test's call has no caption
    (``route_test_id`` instead)."""
    return ModelCall.objects.create(
        caption=caption,
        route_test_id=route_test_id,
        run_id=caption.run_id if caption is not None else None,
        route=route,
        attempt=attempt,
        route_attempt=route_attempt,
        trigger=trigger,
        status=ModelCall.Status.IN_FLIGHT,
        started_at=timezone.now(),
        timeout_s=timeout_s,
        reserved_usd=reserved,
        estimate_usd=estimate,
        cache_key=cache_key,
        adjustments=list(notes),
        request_id=request_id[:200],
    )


def call_submitted(*, call_id: int, request_id: str) -> None:
    """The vendor accepted the request and named it: store the id at once (in its own commit),
    so a worker that dies while waiting leaves the sweep a request to pick up, not to repeat."""
    ModelCall.objects.filter(pk=call_id, status=ModelCall.Status.IN_FLIGHT).update(
        request_id=request_id[:200], submitted_at=timezone.now()
    )


def call_cached(
    *,
    caption: Caption,
    route: Route,
    attempt: int,
    route_attempt: int,
    trigger: str,
    hit: ModelCall,
    cache_key: str,
) -> ModelCall:
    now = timezone.now()
    return ModelCall.objects.create(
        caption=caption,
        run_id=caption.run_id,
        route=route,
        attempt=attempt,
        route_attempt=route_attempt,
        trigger=trigger,
        status=ModelCall.Status.CACHED,
        started_at=now,
        finished_at=now,
        latency_ms=0,
        cost_usd=Decimal(0),
        cost_source=ModelCall.CostSource.CACHE,
        request_id=hit.request_id,
        served_model=hit.served_model,
        text=hit.text,
        cache_key=cache_key,
        cached_from_id=hit.cached_from_id or hit.pk,
    )


def call_close_success(
    *, call: ModelCall, route: Route, result: CaptionResult, latency_ms: int
) -> tuple[bool, Decimal | None]:
    """Record a success; (whether this close won, the call's cost)."""
    cost, source = result.cost_usd, result.cost_source
    if cost is None and route.usd_per_call is not None:
        cost, source = route.usd_per_call, "configured"
    updated = ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
        status=ModelCall.Status.SUCCEEDED,
        finished_at=timezone.now(),
        latency_ms=latency_ms,
        cost_usd=cost,
        cost_source=source,
        request_id=(result.request_id or call.request_id or "")[:200],
        served_model=result.served_model[:200],
        text=result.text,
        truncated=result.truncated,
        raw_output=result.raw_excerpt[:RAW_OUTPUT_CHARS],
        usage=dict(result.usage),
    )
    return bool(updated), cost


def call_close_failure(
    *, call: ModelCall, error: ProviderError, latency_ms: int
) -> tuple[bool, Decimal | None]:
    """Record a failure; (whether this close won, what the vendor charged for it, if known)."""
    cost = error.cost_usd
    updated = ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
        status=ModelCall.Status.FAILED,
        finished_at=timezone.now(),
        latency_ms=error.latency_ms if error.latency_ms is not None else latency_ms,
        cost_usd=cost,
        cost_source="provider" if cost is not None else "none",
        error_class=error.error_class[:40],
        error=str(error)[:ERROR_CHARS],
        http_status=error.http_status,
        request_id=(error.request_id or call.request_id or "")[:200],
        raw_output=(error.raw_excerpt or "")[:RAW_OUTPUT_CHARS],
    )
    return bool(updated), cost


def calls_abandon(
    *,
    caption_id: int,
    error: str,
    status: str = ModelCall.Status.FAILED,
    keep: tuple[int, ...] = (),
) -> int:
    """Close the caption's calls still in flight (their worker crashed or died), except those in
    ``keep`` (a vendor request the next worker picks up again). Each is counted at the estimate
    it was opened with, marked as estimated: the vendor may have billed it."""
    now = timezone.now()
    closed = 0
    calls = ModelCall.objects.filter(caption_id=caption_id, status=ModelCall.Status.IN_FLIGHT)
    for call in calls.exclude(pk__in=keep):
        cost = call.estimate_usd if call.estimate_usd is not None else call.reserved_usd
        updated = ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
            status=status,
            finished_at=now,
            error_class="internal" if status == ModelCall.Status.FAILED else "worker_lost",
            error=error[:ERROR_CHARS],
            cost_usd=cost,
            cost_source=ModelCall.CostSource.ESTIMATED,
        )
        if updated and call.run_id is not None:
            budget.budget_settle(run_id=call.run_id, reserved=call.reserved_usd, cost=cost)
        if updated:
            Caption.objects.filter(pk=caption_id).update(cost_usd=caption_cost(caption_id))
        closed += updated
    return closed


def caption_cost(caption_id: int) -> Decimal:
    """What every logged call of the caption cost (estimates of lost calls included)."""
    costs = ModelCall.objects.filter(caption_id=caption_id, cost_usd__isnull=False)
    return sum((c for c in costs.values_list("cost_usd", flat=True) if c is not None), Decimal(0))


@dataclass(slots=True)
class Settlements:
    """Finished calls whose reservation still has to move to the run's spend. Every caption of a
    run updates the same run row, so this is flushed as the last statement before a commit: the
    row lock is then held for the commit only, and workers do not queue behind each other."""

    run_id: int | None
    pending: list[tuple[Decimal, Decimal]] = field(default_factory=list)

    def add(self, *, reserved: Decimal, cost: Decimal | None) -> None:
        if self.run_id is not None:
            self.pending.append((reserved, cost or Decimal(0)))

    def flush(self) -> None:
        if self.run_id is None or not self.pending:
            return
        reserved = sum((r for r, _ in self.pending), Decimal(0))
        cost = sum((c for _, c in self.pending), Decimal(0))
        self.pending.clear()
        budget.budget_settle(run_id=self.run_id, reserved=reserved, cost=cost)


_FINISH_RUN_SQL = """
UPDATE routing_captionrun SET status = 'finished', finished_at = %s
WHERE id = %s AND status = 'running' AND NOT EXISTS (
    SELECT 1 FROM routing_caption WHERE run_id = %s AND status IN ('pending', 'running')
)
"""


def run_maybe_finish(*, run_id: int, now: datetime | None = None) -> bool:
    """A running run whose captions are all settled is finished. Each finishing caption asks after
    its own commit, so the last one to finish always sees the others. One statement (written by
    hand: it runs after every caption), and the run row is only locked when nothing is open."""
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        still_open = Caption.objects.filter(
            run_id=OuterRef("pk"), status__in=(Caption.Status.PENDING, Caption.Status.RUNNING)
        )
        finished = (
            CaptionRun.objects.filter(pk=run_id, status=CaptionRun.Status.RUNNING)
            .exclude(Exists(still_open))
            .update(status=CaptionRun.Status.FINISHED, finished_at=now)
            == 1
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(_FINISH_RUN_SQL, [now, run_id, run_id])
            finished = cursor.rowcount == 1
    if finished:
        hooks.run_event(run_id=run_id, event="run.finished")
    return finished
