"""A small reviewed project whose every exported row is known in advance (used by the export tests).

Two routes caption six images in one comparison run; two annotators and an admin review them
through the real queue and verdict services:

======  =====================  =====================================================  ===========
image   route (model)          what review made of it                                 final text
======  =====================  =====================================================  ===========
img1    blip (blip2-opt-2.7b)  accepted as-is                                         CAFE
img1    gpt (gpt-4o)           rejected (wrong subject)                               (none)
img2    blip                   edited                                                 EMOJI
img3*   blip                   accept + edit disagree; the admin approves             QUOTES
img4    gpt                    accepted as-is                                         RTL
img5    blip                   accepted as-is (img5 came in its own import batch)     LINES
img6    blip                   skipped by both: still open, never exported            (none)
======  =====================  =====================================================  ===========

(* img3 is flagged as a chart, so it needs two reviews.)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from labeling.models import ImportBatch, Membership, Project
from review.models import ReviewItem, RiskFlag
from review.services import queue
from review.services.items import review_items_sync
from review.services.verdict import item_adjudicate, verdict_submit
from routing.models import Caption, CaptionRun, Route
from tests.factories import ImageFactory, UserFactory

CAFE = "Ein Café in Zürich — “naïve” façade; 東京の夜景 on a poster"
EMOJI = "A cat 🐈 asleep on a sofa 🛋️ (ginger, 3 years old)"
QUOTES = "A bar chart, \"sales by month\", with '2024' in the title,\tand a \\ slash"
RTL = "قطة نائمة على أريكة — a sleeping cat, in Arabic"
LINES = 'Two lines:\r\nfirst, "quoted"\nthen the second, with a comma,'
PROMPT = "Describe this image in one sentence."


@dataclass
class Story:
    project: Project
    run: CaptionRun
    blip: Route
    gpt: Route
    images: list
    captions: dict  # (image number, "blip" | "gpt") -> Caption
    reviewers: list
    batch: ImportBatch

    @property
    def approved_texts(self) -> list[str]:
        """In export order: by image, then caption."""
        return [CAFE, EMOJI, QUOTES, RTL, LINES]


def _caption(image, route, run, text):
    return Caption.objects.create(
        image=image,
        route=route,
        target_route=route,
        run=run,
        origin=Caption.Origin.MODEL,
        model_name=route.model,
        prompt=PROMPT,
        status=Caption.Status.SUCCEEDED,
        text=text,
        latency_ms=1200,
        cost_usd="0.00300000",
    )


def build(project: Project, admin) -> Story:
    blip = Route.objects.create(name="blip", provider=Route.Provider.LOCAL, model="blip2-opt-2.7b")
    gpt = Route.objects.create(name="gpt", provider=Route.Provider.EDENAI, model="openai/gpt-4o")
    run = CaptionRun.objects.create(project=project, kind=CaptionRun.Kind.COMPARISON, prompt=PROMPT)
    run.routes.set([blip, gpt])
    batch = ImportBatch.objects.create(project=project, kind=ImportBatch.Kind.ZIP, label="b.zip")
    images = [ImageFactory(project=project, width=32, height=24) for _ in range(6)]
    images[4].batch = batch
    images[4].save(update_fields=["batch"])
    RiskFlag.objects.create(
        image=images[2],
        category="chart",
        score=0.97,
        flagged=True,
        reason="Axes and bars found.",
        analyser_version="test",
    )
    plan = {
        (1, "blip"): CAFE,
        (1, "gpt"): "A café.",
        (2, "blip"): "A cat on a sofa.",
        (3, "blip"): "A bar chart.",
        (4, "gpt"): RTL,
        (5, "blip"): LINES,
        (6, "blip"): "A harbour.",
    }
    routes = {"blip": blip, "gpt": gpt}
    captions = {
        key: _caption(images[key[0] - 1], routes[key[1]], run, text) for key, text in plan.items()
    }
    review_items_sync(project=project)

    reviewers = []
    for name in ("rita", "sam"):
        user = UserFactory(username=f"{name}-{project.slug}")
        user.save()
        Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
        reviewers.append(user)
    decisions = {
        captions[1, "blip"].pk: {0: ("accept", "", [])},
        captions[1, "gpt"].pk: {0: ("reject", "", ["wrong_subject"])},
        captions[2, "blip"].pk: {0: ("edit", EMOJI, [])},
        captions[3, "blip"].pk: {0: ("accept", "", []), 1: ("edit", "A bar chart of sales.", [])},
        captions[4, "gpt"].pk: {0: ("accept", "", [])},
        captions[5, "blip"].pk: {0: ("accept", "", [])},
    }
    for index, reviewer in enumerate(reviewers):
        while lease := queue.lease_claim_next(project=project, reviewer=reviewer):
            decision, text, reasons = decisions.get(lease.item.caption_id, {}).get(
                index, ("skip", "", ["unsure"])
            )
            verdict_submit(
                lease=lease,
                reviewer=reviewer,
                decision=decision,
                idempotency_key=uuid.uuid4(),
                text=text,
                reasons=reasons,
                time_spent_ms=4000,
                now=lease.created_at + timedelta(seconds=30),
            )
    disputed = ReviewItem.objects.get(caption=captions[3, "blip"])
    item_adjudicate(item=disputed, admin=admin, decision="approve", text=QUOTES)
    return Story(project, run, blip, gpt, images, captions, reviewers, batch)
