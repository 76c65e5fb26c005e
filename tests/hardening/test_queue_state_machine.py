"""The review queue under any interleaving of what reviewers and admins do.

A hypothesis state machine drives three reviewers and an admin through claim, heartbeat, lease
expiry (the clock passing a lease's expiry, then the sweep), submit (accept, edit, reject),
skip, undo, removal from the project (and coming back) and adjudication, against PostgreSQL.
After every step the invariants hold:

- no item is leased beyond its policy: live leases + counted reviews <= required reviews;
- one live lease per reviewer and per (item, reviewer); removed members hold none;
- each item's count of reviews is its counted verdicts, and a decided item has all of them;
- an approved text always comes from a verdict or an adjudication.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from labeling.models import Membership
from labeling.services.projects import member_remove
from review.models import (
    Adjudication,
    Lease,
    RejectReason,
    ReviewItem,
    ReviewPolicy,
    SkipReason,
    Verdict,
)
from review.services.items import review_items_sync
from review.services.queue import QueueError, lease_claim_next, lease_heartbeat, leases_expire
from review.services.verdict import (
    LeaseLost,
    VerdictInvalid,
    item_adjudicate,
    verdict_submit,
    verdict_undo,
)
from tests.factories import CaptionFactory, ImageFactory, ProjectFactory, UserFactory

REVIEWERS = 3
TEXTS = ["A dog on a beach.", "A brown dog running on a beach.", "Two dogs."]


class ReviewQueue(RuleBasedStateMachine):
    @initialize()
    def world(self):
        self.project = ProjectFactory()
        ReviewPolicy.objects.create(
            project=self.project, approvals_required=2, risky_approvals_required=2
        )
        self.admin = UserFactory(username=f"adm-{uuid.uuid4().hex[:6]}")
        Membership.objects.create(project=self.project, user=self.admin, role="admin")
        self.reviewers = []
        for n in range(REVIEWERS):
            user = UserFactory(username=f"rev{n}-{uuid.uuid4().hex[:6]}")
            Membership.objects.create(project=self.project, user=user, role="annotator")
            self.reviewers.append(user)
        for n in range(4):
            CaptionFactory(image=ImageFactory(project=self.project), text=f"Caption {n}.")
        review_items_sync(project=self.project)
        self.removed: set[int] = set()

    def _lease(self, who):
        return Lease.objects.filter(
            project=self.project, reviewer=who, state=Lease.State.ACTIVE
        ).first()

    @rule(n=st.integers(0, REVIEWERS - 1))
    def claim(self, n):
        reviewer = self.reviewers[n]
        if reviewer.pk in self.removed:
            return
        lease_claim_next(project=self.project, reviewer=reviewer)

    @rule(n=st.integers(0, REVIEWERS - 1))
    def heartbeat(self, n):
        lease = self._lease(self.reviewers[n])
        if lease is not None:
            lease_heartbeat(lease=lease, reviewer=self.reviewers[n])

    @rule(n=st.integers(0, REVIEWERS - 1))
    def expire(self, n):
        # The reviewer walked away: the clock passes the lease's expiry and the sweep runs.
        lease = self._lease(self.reviewers[n])
        if lease is not None:
            Lease.objects.filter(pk=lease.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
            leases_expire()

    @rule(
        n=st.integers(0, REVIEWERS - 1),
        decision=st.sampled_from(["accept", "edit", "reject", "skip"]),
        text=st.sampled_from(TEXTS),
        stale=st.booleans(),
    )
    def submit(self, n, decision, text, stale):
        reviewer = self.reviewers[n]
        lease = self._lease(reviewer)
        if lease is None:
            # A verdict on a lease that already ended (expired, released, revoked).
            lease = Lease.objects.filter(project=self.project, reviewer=reviewer).last()
            if lease is None or not stale:
                return
        reasons = {"reject": [RejectReason.WRONG_SUBJECT], "skip": [SkipReason.UNSURE]}
        with contextlib.suppress(LeaseLost, VerdictInvalid):  # refused: nothing may change
            verdict_submit(
                lease=lease,
                reviewer=reviewer,
                decision=decision,
                idempotency_key=uuid.uuid4(),
                text=text if decision == "edit" else "",
                reasons=reasons.get(decision, []),
            )

    @rule(n=st.integers(0, REVIEWERS - 1))
    def undo(self, n):
        reviewer = self.reviewers[n]
        last = (
            Verdict.objects.filter(project_id=self.project.pk, reviewer=reviewer)
            .order_by("-created_at", "-id")
            .first()
        )
        if last is not None:
            with contextlib.suppress(QueueError):  # too late, or an admin has ruled
                verdict_undo(verdict=last, reviewer=reviewer)

    @rule(n=st.integers(0, REVIEWERS - 1))
    def remove_or_readd(self, n):
        reviewer = self.reviewers[n]
        if reviewer.pk in self.removed:
            Membership.objects.create(project=self.project, user=reviewer, role="annotator")
            self.removed.discard(reviewer.pk)
        else:
            member_remove(project=self.project, user_id=reviewer.pk)
            self.removed.add(reviewer.pk)

    @rule(approve=st.booleans(), text=st.sampled_from(TEXTS))
    def adjudicate(self, approve, text):
        item = ReviewItem.objects.filter(
            project=self.project, state=ReviewItem.State.ADJUDICATION
        ).first()
        if item is not None:
            item_adjudicate(
                item=item, admin=self.admin, decision="approve" if approve else "reject", text=text
            )

    @invariant()
    def no_item_is_leased_beyond_its_policy(self):
        if not hasattr(self, "project"):
            return
        for item in ReviewItem.objects.filter(project=self.project):
            live = item.leases.filter(state=Lease.State.ACTIVE).count()
            assert live + item.reviews_done <= item.required, (item.pk, live, item.reviews_done)
            if item.state != ReviewItem.State.OPEN:
                assert live == 0, (item.pk, item.state, live)

    @invariant()
    def one_live_lease_per_reviewer_and_none_for_the_removed(self):
        if not hasattr(self, "project"):
            return
        per_reviewer = (
            Lease.objects.filter(project=self.project, state=Lease.State.ACTIVE)
            .values("reviewer")
            .annotate(n=Count("id"))
        )
        for row in per_reviewer:
            assert row["n"] == 1, row
            assert row["reviewer"] not in self.removed, row

    @invariant()
    def review_counts_match_the_verdicts(self):
        if not hasattr(self, "project"):
            return
        for item in ReviewItem.objects.filter(project=self.project):
            counted = [v for v in item.verdicts.all() if v.counts]
            assert item.reviews_done == len(counted), (item.pk, item.reviews_done, len(counted))
            if item.state == ReviewItem.State.OPEN:
                assert item.reviews_done < item.required
            else:
                assert item.reviews_done == item.required, (item.pk, item.state)

    @invariant()
    def approved_text_comes_from_a_verdict_or_an_adjudication(self):
        if not hasattr(self, "project"):
            return
        for item in ReviewItem.objects.filter(
            project=self.project, state=ReviewItem.State.APPROVED
        ):
            sources = {v.final_text for v in item.verdicts.all() if v.counts}
            sources |= set(
                Adjudication.objects.filter(item=item).values_list("final_text", flat=True)
            )
            assert item.final_text in sources, (item.pk, item.final_text, sources)


@pytest.mark.django_db
def test_the_review_queue_keeps_its_invariants_under_any_interleaving():
    ReviewQueue.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=30,
        deadline=None,
        database=None,
        derandomize=True,  # the same interleavings on every CI run
        suppress_health_check=list(HealthCheck),
    )
    ReviewQueue.TestCase().runTest()
