"""Run budgets: every call reserves its estimated cost first, in one conditional UPDATE, so the cap
is never exceeded by more than what calls already in flight cost beyond their estimates."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q
from django.db.models.functions import Round

from routing import hooks
from routing.models import CaptionRun
from routing.policy import MICRO_USD


def budget_reserve(*, run_id: int, amount: Decimal) -> bool:
    """Reserve ``amount`` on a running run; False when the run is not running or the cap would be
    passed. At least one micro-dollar is reserved, so a spent budget stops calls of unknown
    price too."""
    amount = max(amount, MICRO_USD)
    fits = Q(budget_usd__isnull=True) | Q(
        budget_usd__gte=F("spent_usd") + F("reserved_usd") + amount
    )
    updated = (
        CaptionRun.objects.filter(pk=run_id, status=CaptionRun.Status.RUNNING)
        .filter(fits)
        .update(reserved_usd=Round(F("reserved_usd") + amount, 8))
    )
    return updated == 1


def budget_settle(*, run_id: int, reserved: Decimal, cost: Decimal) -> None:
    """A call finished: release its reservation and add what it really cost.

    Each call settles once (its row's close is a conditional UPDATE that only one writer wins).
    The arithmetic is rounded to the column's eight decimals: SQLite, the embedded default,
    computes on floating point, where adding and then subtracting the same reservations can leave
    -1e-19 and fail ``run_reserved_not_negative``. A real double settle still fails it, loudly."""
    if not reserved and not cost:
        return
    CaptionRun.objects.filter(pk=run_id).update(
        reserved_usd=Round(F("reserved_usd") - reserved, 8),
        spent_usd=Round(F("spent_usd") + cost, 8),
    )


def budget_stop(*, run_id: int) -> bool:
    """Mark a running run as stopped at its cap. True if this call changed it (then, once, the
    "budget.reached" event)."""
    stopped = (
        CaptionRun.objects.filter(pk=run_id, status=CaptionRun.Status.RUNNING).update(
            status=CaptionRun.Status.BUDGET
        )
        == 1
    )
    if stopped:
        hooks.run_event(run_id=run_id, event="budget.reached")
    return stopped
