"""The queue: who gets which item, for how long, and what the counts say."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Image
from review import selectors, tasks
from review.models import Lease, ReviewItem, ReviewPolicy, RiskFlag
from review.services import queue
from review.services.items import review_item_enqueue, review_items_refresh
from review.services.verdict import verdict_submit
from routing.models import Caption
from tests.factories import CaptionFactory, ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["sql", "orm"])
def claim_path(request, monkeypatch):
    """Every queue test runs against the PostgreSQL SQL claim and the portable ORM claim."""
    monkeypatch.setattr(queue, "USE_SQL", request.param == "sql")
    return request.param


def accept(lease, reviewer):
    return verdict_submit(
        lease=lease, reviewer=reviewer, decision="accept", idempotency_key=uuid.uuid4()
    )


def expire(lease):
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_oldest_item_first_and_reopening_returns_the_same_lease(project, make_items, annotator):
    first, second = make_items(project, 2)

    lease = queue.lease_claim_next(project=project, reviewer=annotator)
    again = queue.lease_claim_next(project=project, reviewer=annotator)

    assert lease.item == first
    assert again.pk == lease.pk
    assert selectors.lease_current(project=project, reviewer=annotator).pk == lease.pk
    assert Lease.objects.count() == 1
    assert Image.objects.get(pk=first.image_id).status == Image.Status.IN_REVIEW
    assert Image.objects.get(pk=second.image_id).status != Image.Status.IN_REVIEW


def test_risky_items_come_first_unless_the_policy_says_otherwise(
    project, make_items, make_reviewers
):
    plain = make_items(project, 1)[0]
    risky = make_items(project, 1, risky=True)[0]
    one, two = make_reviewers(project, 2)
    assert (risky.risky, risky.required, plain.required) == (True, 2, 1)

    assert queue.lease_claim_next(project=project, reviewer=one).item == risky

    ReviewPolicy.objects.create(project=project, risky_first=False)
    review_items_refresh(image_ids=[risky.image_id])
    assert queue.lease_claim_next(project=project, reviewer=two).item == plain


def test_an_item_is_never_leased_to_more_reviewers_than_the_policy_allows(
    project, make_items, make_reviewers
):
    plain = make_items(project, 1)[0]
    risky = make_items(project, 1, risky=True)[0]
    a, b, c, d = make_reviewers(project, 4)

    leases = [queue.lease_claim_next(project=project, reviewer=r) for r in (a, b, c, d)]

    assert [lease.item if lease else None for lease in leases] == [risky, risky, plain, None]
    assert sorted(lease.slot for lease in leases[:2]) == [0, 1]


def test_the_database_refuses_a_double_lease_even_if_code_tried(
    project, make_items, make_reviewers
):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)
    now = timezone.now()
    fields = dict(item=item, project=project, created_at=now, heartbeat_at=now, expires_at=now)

    with pytest.raises(IntegrityError), transaction.atomic():  # the same slot twice
        Lease.objects.create(reviewer=b, slot=lease.slot, slot_count=1, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():  # a slot the policy does not have
        Lease.objects.create(reviewer=b, slot=1, slot_count=1, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():  # one reviewer twice
        Lease.objects.create(reviewer=a, slot=1, slot_count=2, **fields)


def test_skipped_items_go_to_others_but_not_back_to_the_skipper(
    project, make_items, make_reviewers
):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)
    verdict_submit(
        lease=lease, reviewer=a, decision="skip", reasons=["unsure"], idempotency_key=uuid.uuid4()
    )

    assert queue.lease_claim_next(project=project, reviewer=a) is None
    assert queue.lease_claim_next(project=project, reviewer=b).item == item


def test_the_claim_ignores_expired_leases_and_the_next_claimer_expires_them(
    project, make_items, make_reviewers
):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    stale = queue.lease_claim_next(project=project, reviewer=a)
    assert queue.lease_claim_next(project=project, reviewer=b) is None

    expire(stale)
    fresh = queue.lease_claim_next(project=project, reviewer=b)

    assert fresh.item == item and fresh.slot == stale.slot
    stale.refresh_from_db()
    assert stale.state == Lease.State.EXPIRED
    assert selectors.lease_current(project=project, reviewer=a) is None


def test_heartbeat_keeps_a_lease_alive_and_says_when_it_is_lost(
    project, make_items, make_reviewers
):
    make_items(project, 1)
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() + timedelta(seconds=5))

    assert queue.lease_heartbeat(lease=lease, reviewer=a)
    lease.refresh_from_db()
    assert lease.expires_at > timezone.now() + timedelta(seconds=selectors.lease_seconds() - 5)
    assert queue.lease_claim_next(project=project, reviewer=b) is None

    # Past expiry but nobody needed the slot yet: the heartbeat brings it back.
    expire(lease)
    assert queue.lease_heartbeat(lease=lease, reviewer=a)
    assert queue.lease_claim_next(project=project, reviewer=b) is None

    # Once someone else has taken the slot, the heartbeat reports the loss.
    expire(lease)
    assert queue.lease_claim_next(project=project, reviewer=b) is not None
    assert not queue.lease_heartbeat(lease=lease, reviewer=a)
    assert not queue.lease_heartbeat(lease=lease, reviewer=b)  # not b's lease either


def test_the_periodic_sweep_expires_old_leases(project, make_items, make_reviewers):
    make_items(project, 2)
    a, b = make_reviewers(project, 2)
    old = queue.lease_claim_next(project=project, reviewer=a)
    live = queue.lease_claim_next(project=project, reviewer=b)
    expire(old)

    assert tasks.leases_expire() == 1
    assert tasks.leases_expire() == 0  # safe to run twice
    old.refresh_from_db()
    live.refresh_from_db()
    assert (old.state, live.state) == (Lease.State.EXPIRED, Lease.State.ACTIVE)


def test_counts_follow_the_work(project, make_items, make_reviewers):
    make_items(project, 3)
    make_items(project, 1, risky=True)
    a, b = make_reviewers(project, 2)

    def counts():
        c = selectors.queue_counts(project=project)
        return c.to_review, c.in_progress, c.done

    assert counts() == (5, 0, 0)
    lease_a = queue.lease_claim_next(project=project, reviewer=a)  # the risky item
    lease_b = queue.lease_claim_next(project=project, reviewer=b)  # the same one, 2nd slot
    assert lease_a.item == lease_b.item
    assert counts() == (3, 2, 0)
    accept(lease_a, a)
    assert counts() == (3, 1, 1)
    queue.lease_claim_next(project=project, reviewer=a)
    assert counts() == (2, 2, 1)
    expire(lease_b)
    assert counts() == (3, 1, 1)  # an expired lease is not "in progress"
    c = selectors.queue_counts(project=project)
    assert (c.open_items, c.approved) == (4, 0)


def test_new_captions_are_queued_once_and_only_when_they_succeeded(project, annotator):
    image = ImageFactory(project=project)
    failed = CaptionFactory(image=image, status=Caption.Status.FAILED, text="")
    ok = CaptionFactory(image=image, text="Two bikes by a wall.")

    assert review_item_enqueue(caption=failed) is None
    item = review_item_enqueue(caption=ok)
    assert review_item_enqueue(caption=ok) == item
    assert ReviewItem.objects.count() == 1

    # A caption nobody enqueued is picked up when the queue looks empty, not reported as done.
    late = CaptionFactory(image=ImageFactory(project=project), text="A red door.")
    assert queue.lease_claim_next(project=project, reviewer=annotator).item == item
    accept(selectors.lease_current(project=project, reviewer=annotator), annotator)
    assert queue.lease_claim_next(project=project, reviewer=annotator).item.caption == late
    assert tasks.review_items_sync(project_id=project.pk) == 0


def test_a_flag_found_later_makes_the_open_item_stricter(project, make_items, make_reviewers):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)
    RiskFlag.objects.create(
        image_id=item.image_id,
        category="medical",
        score=0.9,
        flagged=True,
        reason="Grey-scale scan.",
        analyser_version="test",
    )

    assert review_items_refresh(image_ids=[item.image_id]) == 1
    item.refresh_from_db()
    assert (item.risky, item.required, item.priority) == (True, 2, 1)
    accept(lease, a)
    item.refresh_from_db()
    assert item.state == ReviewItem.State.OPEN  # still needs a second review
    assert queue.lease_claim_next(project=project, reviewer=b).item == item


def test_admin_release_and_reassign(project, make_items, make_reviewers, admin):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)

    moved = queue.lease_reassign(lease=lease, to_reviewer=b, by=admin)
    lease.refresh_from_db()
    assert (lease.state, lease.ended_by) == (Lease.State.RELEASED, admin)
    assert (moved.reviewer, moved.item) == (b, item)
    assert selectors.lease_current(project=project, reviewer=b) == moved

    assert queue.lease_release(lease=moved, by=admin)
    assert not queue.lease_release(lease=moved, by=admin)
    assert queue.lease_claim_next(project=project, reviewer=a).item == item
    with pytest.raises(queue.QueueError):
        queue.lease_reassign(lease=moved, to_reviewer=a, by=admin)  # already ended
