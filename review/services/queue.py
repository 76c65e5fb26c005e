"""The review queue: claim the next item under a lease, keep it alive, give it back.

Claims lock the candidate item row with `SELECT ... FOR UPDATE SKIP LOCKED`, so reviewers never
wait on each other; the partial unique indexes on Lease make a double lease impossible even if
this code were wrong. Expired leases are ignored by the candidate query itself and cleaned up
under the item's lock by whoever needs their slot, or by the periodic sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, IntegerField, OuterRef, Subquery
from django.utils import timezone

from labeling.models import Project
from review import selectors
from review.models import Lease, ReviewItem, Verdict
from review.services.items import image_mark_in_review, review_items_sync

CLAIM_ATTEMPTS = 8
# PostgreSQL claims run as hand-written SQL; tests switch this off to cover the ORM version too.
USE_SQL = True
# Two-key advisory lock namespace for "one claim at a time per reviewer" (arbitrary constant).
_ADVISORY_NAMESPACE = 0x5EED


class QueueError(Exception):
    """A queue operation that cannot be done; the message is for the user."""


class _Count(Subquery):
    template = "(SELECT COUNT(*) FROM (%(subquery)s) _live)"
    output_field = IntegerField()


def _expiry(now: datetime) -> datetime:
    return now + timedelta(seconds=selectors.lease_seconds())


def candidate_items(*, project: Project, reviewer, now: datetime, skip_locked: bool = True):
    """Open items with a free slot the reviewer has not reviewed, risky first then oldest, locked.

    The benchmark's baseline runs the same query with skip_locked=False (plain FOR UPDATE).
    """
    live = Lease.objects.filter(item=OuterRef("pk"), state=Lease.State.ACTIVE, expires_at__gt=now)
    mine = Verdict.objects.filter(item=OuterRef("pk"), reviewer=reviewer)
    return (
        ReviewItem.objects.filter(project=project, state=ReviewItem.State.OPEN)
        .filter(required__gt=F("reviews_done") + _Count(live.values("pk")))
        .filter(~Exists(mine))
        .order_by("-priority", "queued_at", "id")
        .select_for_update(skip_locked=skip_locked, of=("self",))
    )


def _lock_reviewer(reviewer) -> None:
    """Serialise one reviewer's claims (double clicks, two tabs) so both get the same lease."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_NAMESPACE, reviewer.pk]
            )


def _free_slot(item: ReviewItem, now: datetime) -> int | None:
    """The lowest slot nobody holds, expiring the item's stale leases. Caller locks the item."""
    holders = list(
        Lease.objects.filter(
            item=item, state__in=[Lease.State.ACTIVE, Lease.State.DONE]
        ).values_list("pk", "slot", "state", "expires_at")
    )
    stale = [pk for pk, _, state, expires in holders if state == "active" and expires <= now]
    if stale:
        expired = Lease.objects.filter(
            pk__in=stale, state=Lease.State.ACTIVE, expires_at__lte=now
        ).update(state=Lease.State.EXPIRED, ended_at=now)
        if expired != len(stale):  # a heartbeat revived one meanwhile: look again
            return _free_slot(item, now)
    taken = {slot for pk, slot, _, _ in holders if pk not in stale}
    return next((slot for slot in range(item.required) if slot not in taken), None)


def _current(*, project: Project, reviewer, now: datetime) -> Lease | None:
    """selectors.lease_current without the joins: the claim is the hot path."""
    return (
        Lease.objects.filter(
            project=project, reviewer=reviewer, state=Lease.State.ACTIVE, expires_at__gt=now
        )
        .order_by("created_at", "id")
        .first()
    )


def _lease_create(*, item: ReviewItem, reviewer, slot: int, now: datetime) -> Lease:
    return Lease.objects.create(
        item=item,
        project_id=item.project_id,
        reviewer=reviewer,
        slot=slot,
        slot_count=item.required,
        created_at=now,
        heartbeat_at=now,
        expires_at=_expiry(now),
    )


def _claim_once(*, project: Project, reviewer, skip_locked: bool) -> tuple[Lease | None, bool]:
    """(lease, exhausted): exhausted means no candidate was left at all."""
    if USE_SQL and connection.vendor == "postgresql":
        return _claim_once_sql(project=project, reviewer=reviewer, skip_locked=skip_locked)
    return _claim_once_orm(project=project, reviewer=reviewer, skip_locked=skip_locked)


def _claim_once_orm(*, project: Project, reviewer, skip_locked: bool) -> tuple[Lease | None, bool]:
    """The claim through the ORM: any database (SQLite has no row locks and serialises writers)."""
    tried: list[int] = []
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                _lock_reviewer(reviewer)
                now = timezone.now()
                current = _current(project=project, reviewer=reviewer, now=now)
                if current is not None:
                    return current, False
                candidates = candidate_items(
                    project=project, reviewer=reviewer, now=now, skip_locked=skip_locked
                )
                item = candidates.exclude(pk__in=tried).first()
                if item is None:
                    return None, True
                tried.append(item.pk)
                now = timezone.now()  # after the lock: whoever held the slot before has ended
                slot = _free_slot(item, now)
                if slot is None:  # filled between the candidate scan and the lock
                    continue
                lease = _lease_create(item=item, reviewer=reviewer, slot=slot, now=now)
                image_mark_in_review(image_id=item.image_id)
                return lease, False
        except IntegrityError:  # the constraints caught a race this code missed: next item
            continue
    return None, False


# The same claim in hand-written SQL for PostgreSQL: the hot path of every reviewer, where the
# ORM's query building cost more CPU than the database's work (see benchmarks/queue.py).
_CURRENT_SQL = """
SELECT id FROM review_lease
WHERE reviewer_id = %s AND project_id = %s AND state = 'active' AND expires_at > %s
ORDER BY created_at, id LIMIT 1
"""
_CANDIDATE_SQL = """
SELECT i.id, i.required, i.image_id FROM review_reviewitem i
WHERE i.project_id = %(project)s AND i.state = 'open'
  AND i.required > i.reviews_done + (
    SELECT COUNT(*) FROM review_lease l
    WHERE l.item_id = i.id AND l.state = 'active' AND l.expires_at > %(now)s)
  AND NOT EXISTS (
    SELECT 1 FROM review_verdict v WHERE v.item_id = i.id AND v.reviewer_id = %(reviewer)s)
  AND i.id <> ALL(%(tried)s::bigint[])
ORDER BY i.priority DESC, i.queued_at, i.id
LIMIT 1
FOR UPDATE OF i {lock}
"""
_HOLDERS_SQL = """
SELECT id, slot, state, expires_at FROM review_lease
WHERE item_id = %s AND state IN ('active', 'done')
"""
_EXPIRE_SQL = """
UPDATE review_lease SET state = 'expired', ended_at = %(now)s
WHERE id = ANY(%(ids)s::bigint[]) AND state = 'active' AND expires_at <= %(now)s
"""
_INSERT_SQL = """
WITH lease AS (
  INSERT INTO review_lease (item_id, project_id, reviewer_id, slot, slot_count, state,
                            created_at, heartbeat_at, expires_at)
  VALUES (%(item)s, %(project)s, %(reviewer)s, %(slot)s, %(slot_count)s, 'active',
          %(now)s, %(now)s, %(expires)s)
  RETURNING id
), image AS (
  UPDATE labeling_image SET status = 'in_review'
  WHERE id = %(image)s AND status IN ('new', 'captioned')
)
SELECT id FROM lease
"""


def _claim_once_sql(*, project: Project, reviewer, skip_locked: bool) -> tuple[Lease | None, bool]:
    tried: list[int] = []
    candidate_sql = _CANDIDATE_SQL.format(lock="SKIP LOCKED" if skip_locked else "")
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_NAMESPACE, reviewer.pk]
                )
                now = timezone.now()
                cursor.execute(_CURRENT_SQL, [reviewer.pk, project.pk, now])
                row = cursor.fetchone()
                if row is not None:
                    return Lease.objects.get(pk=row[0]), False
                params = {"project": project.pk, "reviewer": reviewer.pk, "now": now}
                cursor.execute(candidate_sql, {**params, "tried": tried})
                row = cursor.fetchone()
                if row is None:
                    return None, True
                item_id, required, image_id = row
                tried.append(item_id)
                now = timezone.now()  # after the lock: whoever held the slot before has ended
                cursor.execute(_HOLDERS_SQL, [item_id])
                holders = cursor.fetchall()
                stale = [pk for pk, _, state, exp in holders if state == "active" and exp <= now]
                if stale:
                    cursor.execute(_EXPIRE_SQL, {"now": now, "ids": stale})
                    if cursor.rowcount != len(stale):  # a heartbeat revived one: move on
                        continue
                taken = {slot for pk, slot, _, _ in holders if pk not in stale}
                slot = next((s for s in range(required) if s not in taken), None)
                if slot is None:  # filled between the candidate scan and the lock
                    continue
                expires = _expiry(now)
                cursor.execute(
                    _INSERT_SQL,
                    {
                        **params,
                        "now": now,
                        "item": item_id,
                        "slot": slot,
                        "slot_count": required,
                        "expires": expires,
                        "image": image_id,
                    },
                )
                lease_id = cursor.fetchone()[0]
        except IntegrityError:  # the constraints caught a race this code missed: next item
            continue
        lease = Lease(
            pk=lease_id,
            item_id=item_id,
            project_id=project.pk,
            reviewer=reviewer,
            slot=slot,
            slot_count=required,
            state=Lease.State.ACTIVE,
            created_at=now,
            heartbeat_at=now,
            expires_at=expires,
        )
        lease._state.adding, lease._state.db = False, "default"
        return lease, False
    return None, False


def lease_claim_next(*, project: Project, reviewer, skip_locked: bool = True) -> Lease | None:
    """The reviewer's current lease, or a new one on the next item; None when nothing is left."""
    lease, exhausted = _claim_once(project=project, reviewer=reviewer, skip_locked=skip_locked)
    if lease is None and exhausted and review_items_sync(project=project):
        # Captions that finished since the last sweep: queue them rather than say "done".
        lease, _ = _claim_once(project=project, reviewer=reviewer, skip_locked=skip_locked)
    return lease


def lease_heartbeat(*, lease: Lease, reviewer, now: datetime | None = None) -> bool:
    """Extend a lease the reviewer still holds. False when it was lost (taken, released, done).

    A lease past its expiry that nobody has taken over yet is revived: its slot is still its own.
    """
    now = now or timezone.now()
    updated = Lease.objects.filter(pk=lease.pk, reviewer=reviewer, state=Lease.State.ACTIVE).update(
        heartbeat_at=now, expires_at=_expiry(now)
    )
    return updated == 1


def lease_release(*, lease: Lease, by, now: datetime | None = None) -> bool:
    """Give the item back to the queue (the reviewer stops, or an admin frees it)."""
    now = now or timezone.now()
    with transaction.atomic():
        ReviewItem.objects.select_for_update().get(pk=lease.item_id)
        updated = Lease.objects.filter(pk=lease.pk, state=Lease.State.ACTIVE).update(
            state=Lease.State.RELEASED, ended_at=now, ended_by=by
        )
    return updated == 1


def leases_release_for_member(
    *, project_id: int, user_id: int, by=None, now: datetime | None = None
) -> int:
    """Someone left the project: their live leases go back to the queue at once, instead of
    blocking their items until expiry (300 s). Returns how many were released."""
    from review.models import PairwiseLease

    now = now or timezone.now()
    with transaction.atomic():
        held = Lease.objects.filter(
            project_id=project_id, reviewer_id=user_id, state=Lease.State.ACTIVE
        )
        # The item locks, in id order (as every lease change takes them), then the leases.
        item_ids = sorted(held.values_list("item_id", flat=True))
        list(ReviewItem.objects.select_for_update().filter(pk__in=item_ids).order_by("pk"))
        released = held.update(state=Lease.State.RELEASED, ended_at=now, ended_by=by)
        PairwiseLease.objects.filter(
            project_id=project_id, reviewer_id=user_id, state=PairwiseLease.State.ACTIVE
        ).update(state=PairwiseLease.State.EXPIRED, ended_at=now)
    return released


def lease_reassign(*, lease: Lease, to_reviewer, by, now: datetime | None = None) -> Lease:
    """Move a live lease to another reviewer of the project."""
    now = now or timezone.now()
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=lease.item_id)
        lease = Lease.objects.select_for_update().get(pk=lease.pk)
        if lease.state != Lease.State.ACTIVE:
            raise QueueError("This lease has already ended.")
        if not selectors.can_review(project=item.project, user=to_reviewer):
            raise QueueError(f"{to_reviewer} is not a member of this project.")
        if to_reviewer.pk == lease.reviewer_id:
            raise QueueError("The lease already belongs to this reviewer.")
        if Verdict.objects.filter(item=item, reviewer=to_reviewer).exists():
            raise QueueError(f"{to_reviewer} has already reviewed this item.")
        if Lease.objects.filter(
            item=item, reviewer=to_reviewer, state__in=[Lease.State.ACTIVE, Lease.State.DONE]
        ).exists():
            raise QueueError(f"{to_reviewer} already holds this item.")
        lease.state, lease.ended_at, lease.ended_by = Lease.State.RELEASED, now, by
        lease.save(update_fields=["state", "ended_at", "ended_by"])
        slot = _free_slot(item, now)
        if slot is None:  # the policy shrank under this lease
            raise QueueError("This item needs no more reviews.")
        return _lease_create(item=item, reviewer=to_reviewer, slot=slot, now=now)


def leases_expire(*, now: datetime | None = None) -> int:
    """The periodic sweep: mark every lease past its expiry as expired; returns how many."""
    now = now or timezone.now()
    return Lease.objects.filter(state=Lease.State.ACTIVE, expires_at__lte=now).update(
        state=Lease.State.EXPIRED, ended_at=now
    )
