"""A small world for API tests: one project with an annotator, another project with its own
annotator, and one of everything the API serves, each reachable by id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import ApiToken, Webhook, WebhookDelivery
from integrations.services.tokens import api_token_create
from labeling.models import Export, ImportBatch, ImportItem, Invitation, Membership
from labeling.services.team import invitation_create
from review.models import Lease, PairwiseLease, ReviewItem, Verdict
from review.services.items import review_items_sync
from review.services.pairwise import pairwise_claim_next, pairwise_tasks_create
from review.services.queue import lease_claim_next
from review.services.verdict import verdict_submit
from routing.models import Caption, CaptionRun, Chain, ChainRule, ModelCall, RouteTest
from routing.services.chains import chain_rule_add, chain_save
from tests.factories import CaptionFactory, ImageFactory, ProjectFactory, RouteFactory, UserFactory


@dataclass
class World:
    project: object
    other_project: object
    image: object
    batch: ImportBatch
    route: object
    run: CaptionRun
    caption: Caption
    item: ReviewItem
    lease: Lease
    verdict: Verdict
    export: Export
    chain: Chain
    invitation: Invitation
    pairwise_lease: PairwiseLease
    rule: ChainRule
    api_token: ApiToken
    webhook: Webhook
    route_test: RouteTest


@pytest.fixture
def other_annotator(db):
    """An annotator of another project: for them, this project's objects do not exist."""
    user = UserFactory(username="oscar-other")
    user.save()
    Membership.objects.create(
        project=ProjectFactory(slug="other-project"), user=user, role=Membership.Role.ANNOTATOR
    )
    return user


@pytest.fixture
def world(project, annotator, other_annotator) -> World:
    batch = ImportBatch.objects.create(
        project=project, kind=ImportBatch.Kind.UPLOAD, status=ImportBatch.Status.DONE, total=2
    )
    image = ImageFactory(project=project, batch=batch, original_name="harbour-at-dusk.png")
    second = ImageFactory(project=project, batch=batch)
    ImportItem.objects.create(
        batch=batch, source="harbour-at-dusk.png", status="imported", image=image
    )
    route = RouteFactory(name="gpt4o-eden", usd_per_call=Decimal("0.002"))
    run = CaptionRun.objects.create(
        project=project, kind=CaptionRun.Kind.COMPARISON, status=CaptionRun.Status.RUNNING
    )
    run.routes.add(route)
    caption = CaptionFactory(
        image=image, run=run, route=route, text="Fishing boats in a harbour at dusk."
    )
    ModelCall.objects.create(
        caption=caption,
        run=run,
        route=route,
        attempt=1,
        trigger="first",
        status=ModelCall.Status.SUCCEEDED,
        started_at=timezone.now(),
        latency_ms=840,
        cost_usd=Decimal("0.002"),
    )
    CaptionFactory(image=second, text="A red bicycle against a wall.")
    review_items_sync(project=project)
    # The annotator has reviewed one item and holds a lease on the other.
    first = lease_claim_next(project=project, reviewer=annotator)
    verdict = verdict_submit(
        lease=first, reviewer=annotator, decision="accept", idempotency_key=uuid.uuid4()
    ).verdict
    lease = lease_claim_next(project=project, reviewer=annotator)
    assert lease is not None and lease.item_id != first.item_id
    export = Export.objects.create(
        project=project,
        format="jsonl",
        status=Export.Status.DONE,
        rows=1,
        file_name="street-photos.jsonl",
        file=ContentFile(b'{"text": "Fishing boats in a harbour at dusk."}\n', name="e.jsonl"),
    )
    chain = chain_save(project=project, name="default", routes=[route], is_default=True)
    # A blind pair (two routes' captions of a third image), held by the annotator.
    third = ImageFactory(project=project, batch=batch)
    CaptionFactory(image=third, route=RouteFactory(name="llava-local"), text="Gulls over a pier.")
    CaptionFactory(image=third, route=RouteFactory(name="blip-local"), text="Birds, a jetty.")
    assert pairwise_tasks_create(project=project) == 1
    pairwise_lease = pairwise_claim_next(project=project, reviewer=annotator)
    # Their review items are settled, so the review queue holds what it held before.
    review_items_sync(project=project)
    ReviewItem.objects.filter(image=third).update(
        state=ReviewItem.State.REJECTED, decided_at=timezone.now()
    )
    rule = chain_rule_add(project=project, chain=chain, category="chart", min_score=0.6)
    api_token = api_token_create(user=annotator, name="notebook").token
    webhook = Webhook.objects.create(
        project=project,
        url="https://93.184.216.34/hooks",
        events=["run.finished"],
        secret="whsec_x",
    )
    WebhookDelivery.objects.create(
        webhook=webhook, event="run.finished", payload={"event": "run.finished"}, status="failed"
    )
    invitation = invitation_create(
        project=project, email="ines@example.org", role="annotator", created_by=None
    ).invitation
    return World(
        project=project,
        other_project=other_annotator.memberships.get().project,
        image=image,
        batch=batch,
        route=route,
        run=run,
        caption=caption,
        item=lease.item,
        lease=lease,
        verdict=verdict,
        export=export,
        chain=chain,
        invitation=invitation,
        pairwise_lease=pairwise_lease,
        rule=rule,
        api_token=api_token,
        webhook=webhook,
        # A finished test of the route (a live one would make the admin's new test a 409).
        route_test=RouteTest.objects.create(
            route=route,
            status=RouteTest.Status.SUCCEEDED,
            image_name="coffee.jpg",
            text="A cup of coffee on a saucer.",
            latency_ms=640,
            cost_usd=Decimal("0.002"),
            lease_until=timezone.now(),
            finished_at=timezone.now(),
        ),
    )


@pytest.fixture
def client_for():
    """client_for(user) -> an APIClient sending that user's fresh API token (None: anonymous)."""

    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            secret = api_token_create(user=user, name="tests").secret
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make
