"""Blind pairwise review: pairs, leases, idempotent judgements, and Bradley-Terry scores."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse

from review.metrics import pairwise_results
from review.models import PairwiseJudgement, PairwiseLease, PairwiseTask, ReviewPolicy
from review.services import pairwise
from review.stats import bradley_terry, bradley_terry_intervals
from tests.review.metrics_fixture import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def fx(project, admin):
    return build(project, admin)


def judge(lease, reviewer, side, key=None):
    return pairwise.pairwise_judge(
        lease=lease, reviewer=reviewer, side=side, idempotency_key=key or uuid.uuid4()
    )


# --- Bradley-Terry -----------------------------------------------------------------------------


def test_bradley_terry_recovers_a_known_order_from_synthetic_preferences():
    truth = np.array([1.5, 0.5, 0.0, -2.0])
    names = ["best", "good", "fair", "poor"]
    rng = np.random.default_rng(3)
    outcomes = {}
    for i in range(4):
        for j in range(i + 1, 4):
            p_i = 1 / (1 + np.exp(truth[j] - truth[i]))
            wins_i = int(rng.binomial(300, p_i))
            outcomes[i, j] = (wins_i, 300 - wins_i, 0)

    strengths = bradley_terry_intervals(names, outcomes)

    assert [s.name for s in sorted(strengths, key=lambda s: -s.score)] == names
    centred = truth - truth.mean()
    for s, expected in zip(strengths, centred, strict=True):
        assert s.score == pytest.approx(expected, abs=0.25)
        assert s.interval.low <= expected <= s.interval.high


def test_bradley_terry_gives_a_route_that_never_won_a_finite_score():
    scores = bradley_terry(["a", "b"], np.array([[0.0, 5.0], [0.0, 0.0]]))
    assert np.isfinite(scores).all() and scores[0] > scores[1]


# --- pairs and leases --------------------------------------------------------------------------


def test_pairs_are_made_once_per_image_and_route_pair(fx):
    # img1, img2, img3 and img5 have both routes' captions; local-b failed on img4.
    assert pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk) == 4
    assert pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk) == 0
    pair = PairwiseTask.objects.get(image=fx.images[0])
    assert {pair.route_a.name, pair.route_b.name} == {"hosted-a", "local-b"}
    assert pair.caption_a_id < pair.caption_b_id


def test_a_judgement_is_stored_for_the_pair_not_the_side(fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)

    judged = judge(lease, rita, "left")

    expected = "a" if lease.left_is_a else "b"
    assert judged.judgement.outcome == expected and not judged.replayed
    lease.refresh_from_db()
    assert lease.state == PairwiseLease.State.DONE
    assert PairwiseTask.objects.get(pk=lease.task_id).state == PairwiseTask.State.DONE


def test_double_submits_return_the_first_judgement(fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)
    key = uuid.uuid4()

    first = judge(lease, rita, "tie", key)
    again = judge(lease, rita, "tie", key)
    other_tab = judge(lease, rita, "right")

    assert again.replayed and again.judgement.pk == first.judgement.pk
    assert other_tab.replayed and other_tab.judgement.outcome == "tie"
    assert PairwiseJudgement.objects.count() == 1


def test_a_leased_pair_is_nobody_elses_until_it_expires(fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita, sam = fx.reviewers
    mine = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)
    theirs = pairwise.pairwise_claim_next(project=fx.project, reviewer=sam)
    assert theirs.task_id != mine.task_id
    # The same reviewer asking again gets the pair they hold.
    assert pairwise.pairwise_claim_next(project=fx.project, reviewer=rita).pk == mine.pk

    later = mine.expires_at + timedelta(seconds=1)
    judge(theirs, sam, "left")
    sams_next = pairwise.pairwise_claim_next(project=fx.project, reviewer=sam, now=later)
    assert sams_next.task_id == mine.task_id  # rita's lease ran out
    with pytest.raises(pairwise.PairwiseError):
        judge(mine, rita, "right")


def test_passing_hands_the_pair_to_others(fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita, sam = fx.reviewers
    lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)

    assert pairwise.pairwise_pass(lease=lease, reviewer=rita)

    assert pairwise.pairwise_claim_next(project=fx.project, reviewer=rita).task_id != lease.task_id
    assert pairwise.pairwise_claim_next(project=fx.project, reviewer=sam).task_id == lease.task_id


def test_results_count_ties_half_and_leave_both_bad_out(fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    for want in ("hosted-a", "hosted-a", "tie", "both_bad"):
        lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)
        task = lease.task
        if want in ("tie", "both_bad"):
            side = want
        else:
            a_is_want = task.route_a.name == want
            side = "left" if a_is_want == lease.left_is_a else "right"
        judge(lease, rita, side)

    found = pairwise_results(project=fx.project, run_id=fx.run.pk)

    assert found.names == ["hosted-a", "local-b"] and found.judged == 4 and found.open == 0
    a_over_b = found.matrix[0][1]
    assert (a_over_b.rate, a_over_b.n, a_over_b.both_bad) == (pytest.approx(2.5 / 3), 3, 1)
    assert found.strengths[0].name == "hosted-a"


# --- pages -------------------------------------------------------------------------------------


def test_the_queue_hides_which_model_wrote_which_caption(client, fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    client.force_login(rita)

    client.post(reverse("review:pairwise-next", args=[fx.project.slug]))
    page = client.get(reverse("review:pairwise", args=[fx.project.slug])).content.decode()

    lease = PairwiseLease.objects.get(reviewer=rita, state="active")
    a, b = lease.task.caption_a, lease.task.caption_b
    left, right = (a, b) if lease.left_is_a else (b, a)
    assert page.index(left.text) < page.index(right.text)
    for hidden in ("hosted-a", "local-b", "gpt-4o", "blip2"):
        assert hidden not in page

    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    url = reverse("review:pairwise-judge", args=[lease.pk])
    client.post(url, {"side": "right", "idempotency_key": key})
    client.post(url, {"side": "right", "idempotency_key": key})  # a double click
    assert PairwiseJudgement.objects.filter(reviewer=rita).count() == 1
    # the next pair was claimed on the way back
    assert PairwiseLease.objects.filter(reviewer=rita, state="active").count() == 1


def test_results_page_and_who_may_see_it(client, admin, fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)
    judge(lease, rita, "left")
    url = reverse("review:pairwise-results", args=[fx.project.slug])

    client.force_login(admin)
    page = client.get(url).content.decode()
    assert 'id="win-matrix"' in page and 'id="bt-scores"' in page

    client.force_login(rita)
    assert client.get(url).status_code == 403
    ReviewPolicy.objects.update_or_create(
        project=fx.project, defaults={"annotators_see_metrics": True}
    )
    assert client.get(url).status_code == 200
    create = reverse("review:pairwise-create", args=[fx.project.slug])
    assert client.post(create, {}).status_code == 403  # making pairs is for admins


def test_outsiders_and_other_reviewers_leases_get_404(client, outsider, fx):
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita, sam = fx.reviewers
    lease = pairwise.pairwise_claim_next(project=fx.project, reviewer=rita)

    client.force_login(outsider)
    assert client.get(reverse("review:pairwise", args=[fx.project.slug])).status_code == 404
    client.force_login(sam)
    response = client.post(
        reverse("review:pairwise-judge", args=[lease.pk]),
        {"side": "left", "idempotency_key": str(uuid.uuid4())},
    )
    assert response.status_code == 404
    assert not PairwiseJudgement.objects.exists()
