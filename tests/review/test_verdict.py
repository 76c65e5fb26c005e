"""Verdicts: exactly once per lease, late verdicts, undo, the 2-review policy and adjudication."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import Image
from review import selectors
from review.models import Lease, ReviewItem, Verdict
from review.services import queue
from review.services.effort import correction_effort
from review.services.verdict import (
    LeaseLost,
    VerdictInvalid,
    item_adjudicate,
    verdict_submit,
    verdict_undo,
)

pytestmark = pytest.mark.django_db


def submit(lease, reviewer, decision="accept", key=None, **kwargs):
    return verdict_submit(
        lease=lease,
        reviewer=reviewer,
        decision=decision,
        idempotency_key=key or uuid.uuid4(),
        **kwargs,
    )


def claim(project, reviewer):
    return queue.lease_claim_next(project=project, reviewer=reviewer)


def test_accept_approves_the_model_text(project, make_items, annotator):
    item = make_items(project, 1, texts=["A dog on the grass."])[0]
    lease = claim(project, annotator)

    saved = submit(lease, annotator, "accept", text="ignored", time_spent_ms=1200)

    item.refresh_from_db()
    lease.refresh_from_db()
    assert not saved.replayed
    assert (saved.verdict.decision, saved.verdict.final_text) == ("accept", "A dog on the grass.")
    assert saved.verdict.time_spent_ms == 1200
    assert (item.state, item.final_text, item.edited) == ("approved", "A dog on the grass.", False)
    assert (item.char_effort, item.word_effort) == (0.0, 0.0)
    assert lease.state == Lease.State.DONE
    assert Image.objects.get(pk=item.image_id).status == Image.Status.APPROVED
    approved = selectors.caption_approved_text(caption=item.caption)
    assert approved.text == "A dog on the grass." and not approved.edited


def test_an_edit_approves_the_edited_text_and_records_the_effort(project, make_items, annotator):
    item = make_items(project, 1, texts=["A dog on the grass."])[0]
    lease = claim(project, annotator)

    saved = submit(lease, annotator, "edit", text="  A brown dog on the grass.\n")

    item.refresh_from_db()
    assert saved.verdict.final_text == "A brown dog on the grass."
    assert (saved.verdict.char_distance, saved.verdict.word_distance) == (6, 1)
    assert saved.verdict.word_effort == pytest.approx(1 / 6)
    assert saved.verdict.char_effort == pytest.approx(6 / 25)
    assert (item.state, item.final_text, item.edited) == (
        "approved",
        "A brown dog on the grass.",
        True,
    )
    assert item.word_effort == pytest.approx(1 / 6)
    texts = selectors.image_approved_texts(image=item.image)
    assert [(t.text, t.model_text, t.edited) for t in texts] == [
        ("A brown dog on the grass.", "A dog on the grass.", True)
    ]


def test_an_edit_that_changes_nothing_is_an_accept(project, make_items, annotator):
    make_items(project, 1, texts=["A dog on the grass."])
    saved = submit(claim(project, annotator), annotator, "edit", text="A  dog on the grass. ")
    assert saved.verdict.decision == "accept"


def test_reject_needs_reasons_and_other_needs_a_note(project, make_items, annotator):
    item = make_items(project, 1)[0]
    lease = claim(project, annotator)

    with pytest.raises(VerdictInvalid):
        submit(lease, annotator, "reject")
    with pytest.raises(VerdictInvalid):
        submit(lease, annotator, "reject", reasons=["other"])
    with pytest.raises(VerdictInvalid):
        submit(lease, annotator, "reject", reasons=["wrong_count", "made_up"])
    with pytest.raises(VerdictInvalid):
        submit(lease, annotator, "edit", text="   ")
    assert Verdict.objects.count() == 0

    saved = submit(lease, annotator, "reject", reasons=["wrong_count", "other"], note="Blurry.")
    item.refresh_from_db()
    assert saved.verdict.reasons == ["wrong_count", "other"]
    assert item.state == ReviewItem.State.REJECTED
    assert Image.objects.get(pk=item.image_id).status == Image.Status.REJECTED
    assert selectors.caption_approved_text(caption=item.caption) is None


def test_a_double_submit_returns_the_saved_verdict(project, make_items, annotator):
    make_items(project, 2)
    lease = claim(project, annotator)
    key = uuid.uuid4()

    first = submit(lease, annotator, "edit", key=key, text="Something else entirely.")
    retry = submit(lease, annotator, "edit", key=key, text="Something else entirely.")
    other_tab = submit(lease, annotator, "reject", reasons=["unsafe"])  # new key, same lease

    assert retry.replayed and other_tab.replayed
    assert retry.verdict.pk == first.verdict.pk == other_tab.verdict.pk
    assert Verdict.objects.count() == 1
    assert ReviewItem.objects.get(pk=lease.item_id).reviews_done == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_save_one_verdict(project, make_items, annotator):
    make_items(project, 1)
    lease = claim(project, annotator)
    key = uuid.uuid4()
    results, barrier = [], threading.Barrier(4)

    def post():
        try:
            barrier.wait()
            results.append(submit(lease, annotator, "accept", key=key))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 4
    assert len({r.verdict.pk for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert Verdict.objects.count() == 1


def test_a_late_verdict_counts_when_nobody_else_finished(project, make_items, make_reviewers):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = claim(project, a)
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    queue.leases_expire()

    saved = submit(lease, a, "edit", text="A late but fine caption.")

    item.refresh_from_db()
    assert saved.verdict.late
    assert (item.state, item.final_text) == ("approved", "A late but fine caption.")
    assert claim(project, b) is None


def test_a_late_verdict_wins_over_someone_still_working(project, make_items, make_reviewers):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease_a = claim(project, a)
    Lease.objects.filter(pk=lease_a.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    lease_b = claim(project, b)  # takes the slot over
    assert lease_b.item == item

    submit(lease_a, a, "accept")

    lease_b.refresh_from_db()
    assert lease_b.state == Lease.State.REVOKED
    with pytest.raises(LeaseLost) as lost:
        submit(lease_b, b, "edit", text="My careful rewrite.")
    assert lost.value.text == "My careful rewrite."
    assert "decided" in str(lost.value)
    assert Verdict.objects.filter(item=item).count() == 1


def test_a_late_verdict_after_someone_else_finished_gives_the_text_back(
    project, make_items, make_reviewers
):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease_a = claim(project, a)
    Lease.objects.filter(pk=lease_a.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    submit(claim(project, b), b, "accept")

    with pytest.raises(LeaseLost) as lost:
        submit(lease_a, a, "edit", text="Words I do not want to lose.")

    assert lost.value.text == "Words I do not want to lose."
    assert "finished" in str(lost.value)
    assert list(Verdict.objects.filter(item=item).values_list("reviewer", flat=True)) == [b.pk]


def test_two_reviews_that_agree_approve_a_risky_item(project, make_items, make_reviewers):
    item = make_items(project, 1, risky=True, texts=["A bar chart of rain."])[0]
    a, b, c = make_reviewers(project, 3)
    lease_a, lease_b = claim(project, a), claim(project, b)

    submit(lease_a, a, "edit", text="A bar chart of monthly rainfall.")
    item.refresh_from_db()
    assert (item.state, item.reviews_done) == ("open", 1)
    assert Image.objects.get(pk=item.image_id).status == Image.Status.IN_REVIEW
    submit(lease_b, b, "edit", text="A bar chart of  monthly rainfall. ")

    item.refresh_from_db()
    assert (item.state, item.final_text) == ("approved", "A bar chart of monthly rainfall.")
    assert claim(project, c) is None


def test_disagreement_goes_to_an_admin_who_decides(project, make_items, make_reviewers, admin):
    item = make_items(project, 1, risky=True, texts=["A pie chart."])[0]
    a, b = make_reviewers(project, 2)
    lease_a, lease_b = claim(project, a), claim(project, b)
    submit(lease_a, a, "accept")
    submit(lease_b, b, "reject", reasons=["misread_text"])

    item.refresh_from_db()
    assert item.state == ReviewItem.State.ADJUDICATION
    assert list(selectors.adjudication_queue(project=project)) == [item]
    assert Image.objects.get(pk=item.image_id).status == Image.Status.IN_REVIEW
    assert selectors.caption_approved_text(caption=item.caption) is None

    item_adjudicate(item=item, admin=admin, decision="approve", text="A pie chart of market share.")

    item.refresh_from_db()
    assert (item.state, item.final_text, item.edited) == (
        "approved",
        "A pie chart of market share.",
        True,
    )
    approved = selectors.caption_approved_text(caption=item.caption)
    assert approved.adjudicated and approved.text == "A pie chart of market share."
    assert Image.objects.get(pk=item.image_id).status == Image.Status.APPROVED
    with pytest.raises(queue.QueueError):
        item_adjudicate(item=item, admin=admin, decision="reject")


def test_undo_gives_the_item_back_and_returns_the_next_one(project, make_items, annotator):
    first, second = make_items(project, 2)
    lease = claim(project, annotator)
    saved = submit(lease, annotator, "accept")
    next_lease = claim(project, annotator)
    assert next_lease.item == second

    back = verdict_undo(verdict=saved.verdict, reviewer=annotator)

    first.refresh_from_db()
    next_lease.refresh_from_db()
    assert back.pk == lease.pk and back.state == Lease.State.ACTIVE
    assert (first.state, first.reviews_done, first.final_text) == ("open", 0, "")
    assert next_lease.state == Lease.State.RELEASED
    assert Verdict.objects.count() == 0
    assert Image.objects.get(pk=first.image_id).status == Image.Status.IN_REVIEW
    assert selectors.lease_current(project=project, reviewer=annotator) == back
    with pytest.raises(queue.QueueError):
        verdict_undo(verdict=saved.verdict, reviewer=annotator)

    # Decide again, differently.
    again = submit(back, annotator, "reject", reasons=["wrong_subject"])
    first.refresh_from_db()
    assert (again.verdict.decision, first.state) == ("reject", "rejected")


def test_undo_of_a_skip_and_its_limits(project, make_items, make_reviewers):
    make_items(project, 2)
    a, b = make_reviewers(project, 2)
    skipped = submit(claim(project, a), a, "skip", reasons=["needs_expert"])
    lease = verdict_undo(verdict=skipped.verdict, reviewer=a)
    assert lease.state == Lease.State.ACTIVE

    old = submit(lease, a, "accept")
    Verdict.objects.filter(pk=old.verdict.pk).update(
        created_at=timezone.now() - timedelta(seconds=selectors.undo_seconds() + 1)
    )
    with pytest.raises(queue.QueueError, match="too late"):
        verdict_undo(verdict=old.verdict, reviewer=a)
    with pytest.raises(queue.QueueError):
        verdict_undo(verdict=old.verdict, reviewer=b)


def test_time_spent_comes_from_the_page_but_never_exceeds_the_lease(project, make_items, annotator):
    make_items(project, 2)
    lease = claim(project, annotator)
    Lease.objects.filter(pk=lease.pk).update(created_at=timezone.now() - timedelta(seconds=10))
    lease.refresh_from_db()
    bogus = submit(lease, annotator, "accept", time_spent_ms=10_000_000).verdict
    assert 9_000 <= bogus.time_spent_ms <= 12_000

    measured = submit(claim(project, annotator), annotator, "accept").verdict
    assert 0 <= measured.time_spent_ms < 5_000


def test_correction_effort_in_characters_and_words():
    effort = correction_effort(model_text="a cat on a mat", final_text="a black cat on the mat")
    # "black " is 6 inserts; "a" -> "the" is 1 substitution and 2 inserts.
    assert (effort.char_distance, effort.word_distance) == (9, 2)
    assert effort.char_effort == pytest.approx(9 / 22)
    assert effort.word_effort == pytest.approx(2 / 6)
    same = correction_effort(model_text=" same ", final_text="same")
    assert (same.char_distance, same.char_effort, same.word_effort) == (0, 0.0, 0.0)
    empty = correction_effort(model_text="", final_text="new words")
    assert (empty.char_effort, empty.word_effort) == (1.0, 1.0)


def test_the_fast_edit_distance_matches_the_textbook_one():
    import random

    from review.services.effort import levenshtein

    def textbook(a, b):
        previous = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            row = [i]
            for j, y in enumerate(b, 1):
                row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y)))
            previous = row
        return previous[-1]

    rng = random.Random(4)
    for _ in range(2000):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 40)))
        assert levenshtein(a, b) == textbook(a, b)
        assert levenshtein(a.split(), b.split()) == textbook(a.split(), b.split())
