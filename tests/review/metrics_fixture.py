"""A small comparison whose every figure was worked out by hand (see test_metrics.py).

Run #1 compares two routes on five images:

- ``hosted-a`` (Eden AI, $0.01 per answered call; a timed-out try costs nothing),
- ``local-b`` (a local GPU worker at $3.60 per GPU-hour, calls recorded without a cost, so each
  second of GPU time costs $0.001).

=====  ============================================  ==============================================
image  hosted-a                                      local-b
=====  ============================================  ==============================================
img1   timeout (30 s), retry ok (0.8 s); accepted    ok (2 s); edited "A car." -> "A red car."
img2   ok (1 s); rejected (wrong subject)            malformed (0.5 s), retry ok (1.5 s); accepted
img3*  ok (1.2 s); accept + edit -> disputed, the    ok (1 s); rejected by both reviewers
       admin approves "A bar chart of sales."        (hallucinated detail; + misread text)
img4   ok (0.9 s); accepted                          server error twice (0.3 s each): failed
img5   ok (0.7 s); skipped by both, still open       ok (0.6 s); accepted
=====  ============================================  ==============================================

(* img3 is flagged as a chart, so its items need two reviews.) Only img1-img3 were captioned by
both routes and decided for both: the comparison's shared images. A chain caption outside the run
(img6) falls back from ``hosted-a`` (server error) to ``local-b``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from labeling.models import Membership, Project
from review.models import ReviewItem, RiskFlag
from review.services import queue
from review.services.items import review_items_sync
from review.services.verdict import item_adjudicate, verdict_submit
from routing.models import Caption, CaptionRun, Chain, ModelCall, Route
from tests.factories import ImageFactory, UserFactory

PROMPT = "Describe this image in one sentence."


@dataclass
class Fixture:
    project: Project
    run: CaptionRun
    a: Route
    b: Route
    images: list
    reviewers: list
    captions: dict  # (image index 1.., "a" | "b") -> Caption


def _caption(image, route, *, run, status, text, latency_ms, calls, chain=None, target=True):
    now = timezone.now()
    served = None
    for call in calls:
        if call[1] == "succeeded":
            served = call[0]
    caption = Caption.objects.create(
        image=image,
        route=served,
        target_route=route if target else None,
        chain=chain,
        run=run,
        origin=Caption.Origin.MODEL,
        model_name=(served or route).model,
        prompt=PROMPT,
        status=status,
        text=text,
        latency_ms=latency_ms,
        finished_at=now,
    )
    for position, (call_route, call_status, error_class, ms, cost, trigger) in enumerate(calls):
        ModelCall.objects.create(
            caption=caption,
            run=run,
            route=call_route,
            attempt=position + 1,
            trigger=trigger,
            status=call_status,
            error_class=error_class,
            started_at=now - timedelta(seconds=60),
            finished_at=now,
            latency_ms=ms,
            cost_usd=cost,
            cost_source="provider" if cost is not None else "none",
        )
    return caption


def build(project: Project, admin) -> Fixture:
    a = Route.objects.create(name="hosted-a", provider=Route.Provider.EDENAI, model="openai/gpt-4o")
    b = Route.objects.create(
        name="local-b",
        provider=Route.Provider.LOCAL,
        model="Salesforce/blip2-opt-2.7b",
        gpu_hour_usd=Decimal("3.6"),
    )
    run = CaptionRun.objects.create(project=project, kind=CaptionRun.Kind.COMPARISON, prompt=PROMPT)
    run.routes.set([a, b])
    images = [ImageFactory(project=project) for _ in range(6)]
    RiskFlag.objects.create(
        image=images[2],
        category="chart",
        score=0.97,
        flagged=True,
        reason="Axes and bars found.",
        analyser_version="test",
    )
    ok, cent = "succeeded", Decimal("0.01")
    plan = {
        (1, "a"): ("A dog on a sofa.", 31_000, [(a, "failed", "timeout", 30_000, None, "initial"),
                                                (a, ok, "", 800, cent, "retry")]),
        (1, "b"): ("A car.", 2_000, [(b, ok, "", 2_000, None, "initial")]),
        (2, "a"): ("A cat.", 1_000, [(a, ok, "", 1_000, cent, "initial")]),
        (2, "b"): ("A tram in the rain.", 2_100, [(b, "failed", "malformed", 500, None, "initial"),
                                                  (b, ok, "", 1_500, None, "retry")]),
        (3, "a"): ("A bar chart.", 1_200, [(a, ok, "", 1_200, cent, "initial")]),
        (3, "b"): ("A pie chart of cats.", 1_000, [(b, ok, "", 1_000, None, "initial")]),
        (4, "a"): ("A bridge at night.", 900, [(a, ok, "", 900, cent, "initial")]),
        (4, "b"): ("", 700, [(b, "failed", "server_error", 300, None, "initial"),
                             (b, "failed", "server_error", 300, None, "retry")]),
        (5, "a"): ("A kite.", 700, [(a, ok, "", 700, cent, "initial")]),
        (5, "b"): ("A red kite.", 600, [(b, ok, "", 600, None, "initial")]),
    }  # fmt: skip
    captions = {}
    for (index, arm), (text, ms, calls) in plan.items():
        route = a if arm == "a" else b
        status = "succeeded" if text else "failed"
        captions[index, arm] = _caption(
            images[index - 1], route, run=run, status=status, text=text, latency_ms=ms, calls=calls
        )
    chain = Chain.objects.create(project=project, name="careful")
    _caption(
        images[5],
        a,
        run=None,
        status="succeeded",
        text="A harbour.",
        latency_ms=1_500,
        chain=chain,
        target=False,
        calls=[(a, "failed", "server_error", 400, None, "initial"),
               (b, ok, "", 1_000, None, "fallback:server_error")],
    )  # fmt: skip
    review_items_sync(project=project)

    reviewers = []
    for name in ("rita", "sam"):
        user = UserFactory(username=name)
        user.save()
        Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
        reviewers.append(user)
    # caption -> what each reviewer does: (decision, text, reasons, ms); missing = skip.
    decisions = {
        captions[1, "a"].pk: {0: ("accept", "", [], 4_000)},
        captions[1, "b"].pk: {0: ("edit", "A red car.", [], 9_000)},
        captions[2, "a"].pk: {0: ("reject", "", ["wrong_subject"], 5_000)},
        captions[2, "b"].pk: {0: ("accept", "", [], 3_000)},
        captions[3, "a"].pk: {0: ("accept", "", [], 6_000),
                              1: ("edit", "A bar chart.!", [], 7_000)},
        captions[3, "b"].pk: {0: ("reject", "", ["hallucinated_detail"], 8_000),
                              1: ("reject", "", ["hallucinated_detail", "misread_text"], 2_000)},
        captions[4, "a"].pk: {0: ("accept", "", [], 1_000)},
        captions[5, "b"].pk: {0: ("accept", "", [], 2_000)},
    }  # fmt: skip
    for index, reviewer in enumerate(reviewers):
        while lease := queue.lease_claim_next(project=project, reviewer=reviewer):
            decision, text, reasons, ms = decisions.get(lease.item.caption_id, {}).get(
                index, ("skip", "", ["unsure"], 500)
            )
            verdict_submit(
                lease=lease,
                reviewer=reviewer,
                decision=decision,
                idempotency_key=uuid.uuid4(),
                text=text,
                reasons=reasons,
                time_spent_ms=ms,
                # The reviewer's clock is trusted up to the server's, so let time pass.
                now=lease.created_at + timedelta(seconds=30),
            )
    disputed = ReviewItem.objects.get(caption=captions[3, "a"])
    item_adjudicate(item=disputed, admin=admin, decision="approve", text="A bar chart of sales.")
    return Fixture(project, run, a, b, images, reviewers, captions)
