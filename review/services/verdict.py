"""Verdicts: saved exactly once per lease, undoable for a short while; adjudication by admins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from review import selectors
from review.models import (
    Adjudication,
    Lease,
    RejectReason,
    ReviewItem,
    SkipReason,
    Verdict,
)
from review.services.effort import Effort, correction_effort
from review.services.items import (
    image_status_refresh,
    item_decide,
    item_finish,
    item_reopen,
    normalise_text,
)
from review.services.queue import QueueError, _expiry, _free_slot

MAX_TEXT = 10_000
# A client's own timer may run a little ahead of the server's (network, clock granularity).
_TIME_SLACK_MS = 2_000


class VerdictInvalid(ValueError):
    """The verdict as submitted cannot be saved; the message says what to fix."""


class LeaseLost(Exception):
    """The lease is gone and the verdict cannot count; what the reviewer wrote comes back."""

    def __init__(
        self, message: str, *, decision: str, text: str, reasons: Sequence[str], note: str
    ):
        super().__init__(message)
        self.decision, self.text, self.reasons, self.note = decision, text, list(reasons), note


@dataclass(frozen=True)
class Submitted:
    verdict: Verdict
    replayed: bool  # a double submit or retry: this is the verdict saved the first time


@dataclass(frozen=True)
class _Clean:
    decision: str
    text: str
    reasons: list[str]
    note: str


def _clean(decision: str, text: str, reasons: Sequence[str], note: str, model_text: str) -> _Clean:
    note = note.strip()
    if decision == Verdict.Decision.ACCEPT:
        return _Clean(decision, model_text, [], note)
    if decision == Verdict.Decision.EDIT:
        text = text.strip()
        if not text:
            raise VerdictInvalid("An edited caption cannot be empty; reject it instead.")
        if len(text) > MAX_TEXT:
            raise VerdictInvalid(f"The caption is longer than {MAX_TEXT} characters.")
        if normalise_text(text) == normalise_text(model_text):
            return _Clean(Verdict.Decision.ACCEPT, model_text, [], note)
        return _Clean(decision, text, [], note)
    if decision == Verdict.Decision.REJECT:
        allowed = RejectReason
    elif decision == Verdict.Decision.SKIP:
        allowed = SkipReason
    else:
        raise VerdictInvalid(f"Unknown decision {decision!r}.")
    picked = [r for r in allowed.values if r in set(reasons)]
    if not picked or len(picked) != len(set(reasons)):
        raise VerdictInvalid(f"Pick at least one reason to {decision}.")
    if "other" in picked and not note:
        raise VerdictInvalid("Say what the other reason is in the note.")
    return _Clean(decision, "", picked, note)


def _replay(key: uuid.UUID, reviewer) -> Submitted | None:
    verdict = Verdict.objects.filter(idempotency_key=key, reviewer=reviewer).first()
    return Submitted(verdict, replayed=True) if verdict else None


def _usable_lease(
    item: ReviewItem, lease: Lease, clean: _Clean, now: datetime
) -> tuple[Lease, bool]:
    """The lease the verdict is saved on and whether it came late; LeaseLost if it cannot count."""

    def lost(message: str) -> LeaseLost:
        return LeaseLost(
            message,
            decision=clean.decision,
            text=clean.text,
            reasons=clean.reasons,
            note=clean.note,
        )

    if lease.state == Lease.State.ACTIVE:
        # Past expiry but still active: nobody has needed its slot, so it is still this lease's.
        return lease, lease.expires_at <= now
    if lease.state == Lease.State.RELEASED:
        raise lost("An admin took this item back from you, so your verdict was not saved.")
    if lease.state == Lease.State.REVOKED:
        raise lost("This item was decided by other reviewers, so your verdict was not saved.")
    # Expired and swept: it still counts if nobody else has finished the item.
    again = Lease.objects.filter(item=item, reviewer=lease.reviewer_id, state=Lease.State.ACTIVE)
    if again.exclude(pk=lease.pk).exists():
        return again.exclude(pk=lease.pk).select_for_update().get(), False
    if clean.decision == Verdict.Decision.SKIP:
        return lease, True  # nothing to count; remember the skip so the item is not served again
    if item.state != ReviewItem.State.OPEN:
        raise lost("Your lease expired and other reviewers finished this item meanwhile.")
    slot = _free_slot(item, now)
    if slot is None:
        # Every slot is held by someone still working on it: finished work wins over unfinished.
        holder = (
            Lease.objects.filter(item=item, state=Lease.State.ACTIVE)
            .select_for_update()
            .order_by("-created_at", "-id")
            .first()
        )
        if holder is None:
            raise lost("Your lease expired and other reviewers finished this item meanwhile.")
        holder.state, holder.ended_at = Lease.State.REVOKED, now
        holder.save(update_fields=["state", "ended_at"])
        slot = holder.slot
    lease.slot, lease.slot_count = slot, max(item.required, slot + 1)
    return lease, True


def _time_spent(lease: Lease, client_ms: int | None, now: datetime) -> int:
    server_ms = max(0, int((now - lease.created_at).total_seconds() * 1000))
    if client_ms is not None and 0 <= client_ms <= server_ms + _TIME_SLACK_MS:
        return client_ms
    return server_ms


def verdict_submit(
    *,
    lease: Lease,
    reviewer,
    decision: str,
    idempotency_key: uuid.UUID,
    text: str = "",
    reasons: Sequence[str] = (),
    note: str = "",
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> Submitted:
    """Save the reviewer's verdict on their lease, exactly once.

    A repeat with the same idempotency key, or any second verdict on the same lease, returns the
    verdict saved first. Raises VerdictInvalid (fix and resend) or LeaseLost (cannot count).
    """
    # Everything that needs no lock happens before the item is locked, so that reviewers of the
    # same item (two for risky ones) wait on each other as briefly as possible.
    item = ReviewItem.objects.select_related("caption").get(pk=lease.item_id)
    clean = _clean(decision, text, reasons, note, item.caption.text)
    effort = None
    if clean.decision in (Verdict.Decision.ACCEPT, Verdict.Decision.EDIT):
        effort = correction_effort(model_text=item.caption.text, final_text=clean.text)
    try:
        with transaction.atomic():
            locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
            locked.caption = item.caption
            now = now or timezone.now()
            # Every change to this item's leases happens under the item lock (the heartbeat and the
            # sweep only touch expiry), so a plain read of the lease is current.
            lease = Lease.objects.get(pk=lease.pk, reviewer=reviewer)
            # A retry, a double submit that got here first, another tab on the same item: the
            # verdict saved first is the answer (the item lock makes this check race-free).
            earlier = Verdict.objects.filter(
                Q(idempotency_key=idempotency_key) | Q(item=locked), reviewer=reviewer
            ).first()
            if earlier is not None:
                return Submitted(earlier, replayed=True)
            lease, late = _usable_lease(locked, lease, clean, now)
            verdict = _record(
                locked, lease, reviewer, clean, effort, idempotency_key, time_spent_ms, late, now
            )
    except IntegrityError:
        replay = _replay(idempotency_key, reviewer)
        if replay:
            return replay
        if Verdict.objects.filter(idempotency_key=idempotency_key).exists():
            # Keys are unique across reviewers: a client reusing someone else's (or a forged
            # one) must fix its request, not crash the server.
            raise VerdictInvalid(
                "This submission key was already used; reload the page and submit again."
            ) from None
        raise
    return Submitted(verdict, replayed=False)


def _record(
    item: ReviewItem,
    lease: Lease,
    reviewer,
    clean: _Clean,
    effort: Effort | None,
    key: uuid.UUID,
    client_ms: int | None,
    late: bool,
    now: datetime,
) -> Verdict:
    verdict = Verdict.objects.create(
        lease=lease,
        item=item,
        caption_id=item.caption_id,
        project_id=item.project_id,
        reviewer=reviewer,
        decision=clean.decision,
        final_text=clean.text,
        reasons=clean.reasons,
        note=clean.note,
        time_spent_ms=_time_spent(lease, client_ms, now),
        late=late,
        idempotency_key=key,
        char_distance=effort.char_distance if effort else None,
        word_distance=effort.word_distance if effort else None,
        char_effort=effort.char_effort if effort else None,
        word_effort=effort.word_effort if effort else None,
        created_at=now,
    )
    counts = clean.decision != Verdict.Decision.SKIP
    lease.state = Lease.State.DONE if counts else Lease.State.SKIPPED
    lease.ended_at = now
    lease.save(update_fields=["state", "ended_at", "slot", "slot_count"])
    if counts:
        item.reviews_done += 1
        item.save(update_fields=["reviews_done"])
        if item.reviews_done >= item.required:
            item_decide(item=item, now=now, verdicts=[verdict] if item.reviews_done == 1 else None)
    return verdict


def verdict_undo(*, verdict: Verdict, reviewer, now: datetime | None = None) -> Lease:
    """Take back the reviewer's last verdict: the item is theirs again under a fresh lease.

    The item they were given next goes back to the queue.
    """
    now = now or timezone.now()
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update(of=("self",)).get(pk=verdict.item_id)
        verdict = (
            Verdict.objects.select_for_update().filter(pk=verdict.pk, reviewer=reviewer).first()
        )
        if verdict is None:
            raise QueueError("That verdict has already been undone.")
        if now - verdict.created_at > timedelta(seconds=selectors.undo_seconds()):
            raise QueueError("It is too late to undo that verdict.")
        last = (
            Verdict.objects.filter(project_id=verdict.project_id, reviewer=reviewer)
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None or last.pk != verdict.pk:
            raise QueueError("Only your last verdict can be undone.")
        if Adjudication.objects.filter(item=item).exists():
            raise QueueError("An admin has already ruled on this item.")
        lease = Lease.objects.select_for_update().get(pk=verdict.lease_id)
        Lease.objects.filter(
            project_id=verdict.project_id, reviewer=reviewer, state=Lease.State.ACTIVE
        ).exclude(pk=lease.pk).update(state=Lease.State.RELEASED, ended_at=now, ended_by=reviewer)
        if verdict.counts:
            item.reviews_done -= 1
            item.save(update_fields=["reviews_done"])
            if item.state != ReviewItem.State.OPEN:
                item_reopen(item=item)
        else:
            if item.state != ReviewItem.State.OPEN:
                raise QueueError("Other reviewers have decided this item meanwhile.")
            slot = _free_slot(item, now)
            if slot is None:
                raise QueueError("Someone else has taken this item meanwhile.")
            lease.slot, lease.slot_count = slot, item.required
        verdict.delete()
        lease.state, lease.ended_at = Lease.State.ACTIVE, None
        lease.heartbeat_at, lease.expires_at = now, _expiry(now)
        lease.save()
        image_status_refresh(image_id=item.image_id)
    return lease


def item_adjudicate(
    *,
    item: ReviewItem,
    admin,
    decision: str,
    text: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Adjudication:
    """An admin settles a disputed item: approve with a text, or reject."""
    now = now or timezone.now()
    text = text.strip()
    if decision not in Adjudication.Decision.values:
        raise VerdictInvalid(f"Unknown decision {decision!r}.")
    if decision == Adjudication.Decision.APPROVE and not text:
        raise VerdictInvalid("An approved caption cannot be empty.")
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("caption")
            .get(pk=item.pk)
        )
        if item.state != ReviewItem.State.ADJUDICATION:
            raise QueueError("This item is not waiting for adjudication.")
        approved = decision == Adjudication.Decision.APPROVE
        adjudication = Adjudication.objects.create(
            item=item,
            admin=admin,
            decision=decision,
            final_text=text if approved else "",
            note=note.strip(),
        )
        item_finish(item=item, approved=approved, text=text, now=now)
        image_status_refresh(image_id=item.image_id)
    return adjudication
