"""Run budgets: every call reserves its estimated cost first, in one conditional UPDATE, so the cap
is never exceeded by more than what calls already in flight cost beyond their estimates."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q

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
        .update(reserved_usd=F("reserved_usd") + amount)
    )
    return updated == 1


def budget_settle(*, run_id: int, reserved: Decimal, cost: Decimal) -> None:
    """A call finished: release its reservation and add what it really cost."""
    CaptionRun.objects.filter(pk=run_id).update(
        reserved_usd=F("reserved_usd") - reserved, spent_usd=F("spent_usd") + cost
    )


def budget_stop(*, run_id: int) -> bool:
    """Mark a running run as stopped at its cap. True if this call changed it."""
    return (
        CaptionRun.objects.filter(pk=run_id, status=CaptionRun.Status.RUNNING).update(
            status=CaptionRun.Status.BUDGET
        )
        == 1
    )
