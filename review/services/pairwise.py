"""Blind pairwise review: make pairs of captions, hand them out under leases, save judgements
exactly once.

A reviewer is shown one image and two captions of it by different routes, left and right in an
order drawn at random for that lease, without model names; they answer left better / right better
/ tie / both bad. The answer is stored in terms of the pair (A = the caption with the lower id), so
the side it was shown on cannot bias the results. Leases work as in the review queue: one live
lease per pair (a partial unique index), one per reviewer and project, expiry after the queue's
lease time, and a repeated submit (same idempotency key, or a second answer on the same pair)
returns the judgement saved first.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from labeling.models import Project
from review.models import PairwiseJudgement, PairwiseLease, PairwiseTask
from review.risk.captions import RISK_QUESTION
from review.services.queue import _expiry, _lock_reviewer

SIDES = ("left", "right", "tie", "both_bad")


class PairwiseError(Exception):
    """The judgement cannot be saved; the message is for the reviewer."""


@dataclass(frozen=True)
class Judged:
    judgement: PairwiseJudgement
    replayed: bool


def pairwise_tasks_create(*, project: Project, run_id: int | None = None) -> int:
    """Pair every two succeeded captions of the same image and prompt by different routes (of one
    run, or across the project); returns how many new pairs were made. Safe to run again."""
    run_filter = "AND a.run_id = %(run)s AND b.run_id = %(run)s" if run_id else ""
    sql = f"""
INSERT INTO review_pairwisetask
  (project_id, image_id, run_id, caption_a_id, caption_b_id, route_a_id, route_b_id, state,
   created_at)
SELECT i.project_id, a.image_id, %(run)s, a.id, b.id,
       COALESCE(a.target_route_id, a.route_id), COALESCE(b.target_route_id, b.route_id),
       'open', %(now)s
FROM routing_caption a
JOIN routing_caption b ON b.image_id = a.image_id AND b.id > a.id AND b.prompt = a.prompt
  AND b.task = a.task
JOIN labeling_image i ON i.id = a.image_id
WHERE i.project_id = %(project)s AND a.status = 'succeeded' AND b.status = 'succeeded'
  AND COALESCE(a.target_route_id, a.route_id) IS NOT NULL
  AND COALESCE(b.target_route_id, b.route_id) IS NOT NULL
  AND COALESCE(a.target_route_id, a.route_id) <> COALESCE(b.target_route_id, b.route_id)
  AND NOT (a.task = 'question' AND a.prompt = %(risk_question)s)
  {run_filter}
ON CONFLICT DO NOTHING"""  # noqa: S608 - only the fixed run filter is interpolated
    with connection.cursor() as cursor:
        params = {
            "project": project.pk,
            "run": run_id,
            "risk_question": RISK_QUESTION,
            # a parameter, not now(): the same statement runs on a first run's SQLite
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        }
        cursor.execute(sql, params)
        return cursor.rowcount


def _current(project: Project, reviewer, now: datetime) -> PairwiseLease | None:
    return (
        PairwiseLease.objects.filter(
            project=project, reviewer=reviewer, state=PairwiseLease.State.ACTIVE, expires_at__gt=now
        )
        .select_related("task")
        .first()
    )


def pairwise_claim_next(
    *, project: Project, reviewer, now: datetime | None = None
) -> PairwiseLease | None:
    """The reviewer's current pair, or the next open one nobody holds; None when none is left."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_reviewer(reviewer)
        current = _current(project, reviewer, now)
        if current is not None:
            return current
        # Stale leases of this project give their pairs back (the partial index finds them).
        PairwiseLease.objects.filter(
            project=project, state=PairwiseLease.State.ACTIVE, expires_at__lte=now
        ).update(state=PairwiseLease.State.EXPIRED, ended_at=now)
        held = PairwiseLease.objects.filter(task=OuterRef("pk"), state=PairwiseLease.State.ACTIVE)
        passed = PairwiseLease.objects.filter(
            task=OuterRef("pk"), reviewer=reviewer, state=PairwiseLease.State.RELEASED
        )
        task = (
            PairwiseTask.objects.filter(project=project, state=PairwiseTask.State.OPEN)
            .filter(~Exists(held), ~Exists(passed))
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if task is None:
            return None
        try:
            with transaction.atomic():
                return PairwiseLease.objects.create(
                    task=task,
                    project=project,
                    reviewer=reviewer,
                    left_is_a=secrets.randbelow(2) == 0,
                    created_at=now,
                    expires_at=_expiry(now),
                )
        except IntegrityError:  # someone took it between the scan and the insert
            return None


def pairwise_pass(*, lease: PairwiseLease, reviewer, now: datetime | None = None) -> bool:
    """The reviewer cannot tell: the pair goes back to others and is not shown to them again."""
    now = now or timezone.now()
    return bool(
        PairwiseLease.objects.filter(
            pk=lease.pk, reviewer=reviewer, state=PairwiseLease.State.ACTIVE
        ).update(state=PairwiseLease.State.RELEASED, ended_at=now)
    )


def _outcome(side: str, left_is_a: bool) -> str:
    if side == "left":
        return PairwiseJudgement.Outcome.A if left_is_a else PairwiseJudgement.Outcome.B
    if side == "right":
        return PairwiseJudgement.Outcome.B if left_is_a else PairwiseJudgement.Outcome.A
    return PairwiseJudgement.Outcome.TIE if side == "tie" else PairwiseJudgement.Outcome.BOTH_BAD


def _time_spent(lease: PairwiseLease, client_ms: int | None, now: datetime) -> int:
    server_ms = max(0, int((now - lease.created_at).total_seconds() * 1000))
    if client_ms is not None and 0 <= client_ms <= server_ms + 2_000:
        return client_ms
    return server_ms


def pairwise_judge(
    *,
    lease: PairwiseLease,
    reviewer,
    side: str,
    idempotency_key: uuid.UUID,
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> Judged:
    """Save the reviewer's answer ("left", "right", "tie" or "both_bad") on their lease, once."""
    if side not in SIDES:
        raise PairwiseError(f"Unknown answer {side!r}.")
    earlier = PairwiseJudgement.objects.filter(
        idempotency_key=idempotency_key, reviewer=reviewer
    ).first()
    if earlier is not None:
        return Judged(earlier, replayed=True)
    try:
        with transaction.atomic():
            task = PairwiseTask.objects.select_for_update().get(pk=lease.task_id)
            now = now or timezone.now()
            lease = PairwiseLease.objects.get(pk=lease.pk, reviewer=reviewer)
            done = PairwiseJudgement.objects.filter(task=task).first()
            if done is not None:
                if done.reviewer_id == reviewer.pk:
                    return Judged(done, replayed=True)
                raise PairwiseError("Someone else judged this pair meanwhile.")
            late = lease.expires_at <= now
            if lease.state == PairwiseLease.State.RELEASED:
                raise PairwiseError("You passed on this pair.")
            # Swept while the reviewer was still looking: it counts if nobody else holds the pair.
            taken = PairwiseLease.objects.filter(task=task, state=PairwiseLease.State.ACTIVE)
            if lease.state == PairwiseLease.State.EXPIRED and taken.exists():
                raise PairwiseError("Your lease expired and the pair went to someone else.")
            judgement = PairwiseJudgement.objects.create(
                task=task,
                lease=lease,
                project_id=task.project_id,
                reviewer=reviewer,
                outcome=_outcome(side, lease.left_is_a),
                left_is_a=lease.left_is_a,
                idempotency_key=idempotency_key,
                time_spent_ms=_time_spent(lease, time_spent_ms, now),
                late=late,
                created_at=now,
            )
            lease.state, lease.ended_at = PairwiseLease.State.DONE, now
            lease.save(update_fields=["state", "ended_at"])
            task.state = PairwiseTask.State.DONE
            task.save(update_fields=["state"])
    except IntegrityError:
        replay = PairwiseJudgement.objects.filter(
            idempotency_key=idempotency_key, reviewer=reviewer
        ).first()
        if replay is None:
            if PairwiseJudgement.objects.filter(idempotency_key=idempotency_key).exists():
                raise PairwiseError(
                    "This submission key was already used; reload the page and answer again."
                ) from None
            raise
        return Judged(replay, replayed=True)
    return Judged(judgement, replayed=False)
