"""Routing announces a run that finished or reached its budget; integrations (registered in its
AppConfig, routing never imports it) turns that into the project's webhook deliveries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.models import Webhook, WebhookDelivery
from routing.fakes import Reply
from routing.models import CaptionRun
from routing.services.execute import caption_execute
from routing.services.runs import ImageSelection, run_launch
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hook(project):
    return Webhook.objects.create(
        project=project,
        url="https://hooks.example.com/captiondesk",
        events=["run.finished", "budget.reached"],
        secret="whsec_test",
    )


def test_a_finished_run_is_announced_once(project, admin, fake_edenai, hook, broker):
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.001"))
    ImageFactory(project=project)
    run = run_launch(
        project=project, user=admin, kind="comparison", selection=ImageSelection(), routes=[route]
    )
    [caption_id] = run.captions.values_list("id", flat=True)

    assert caption_execute(caption_id=caption_id) == "succeeded"
    caption_execute(caption_id=caption_id)  # a redelivered message announces nothing again

    run.refresh_from_db()
    assert run.status == CaptionRun.Status.FINISHED
    [delivery] = WebhookDelivery.objects.filter(webhook=hook)
    assert delivery.event == "run.finished"
    assert delivery.payload["data"]["run_id"] == run.pk


def test_a_run_stopped_at_its_cap_is_announced(project, admin, fake_edenai, hook, broker):
    fake_edenai.set_default(Reply.success("a cat", cost="0.004"))
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.004"))
    for _ in range(3):
        ImageFactory(project=project)
    run = run_launch(
        project=project,
        user=admin,
        kind="comparison",
        selection=ImageSelection(),
        routes=[route],
        budget_usd=Decimal("0.005"),
    )
    outcomes = [caption_execute(caption_id=c) for c in run.captions.values_list("id", flat=True)]

    assert "budget" in outcomes
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.BUDGET
    events = list(WebhookDelivery.objects.filter(webhook=hook).values_list("event", flat=True))
    assert events == ["budget.reached"]
