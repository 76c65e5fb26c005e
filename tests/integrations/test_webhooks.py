"""Webhooks arrive signed, are retried until the receiver takes them, and never reach inside the
network."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from django.db import transaction
from django.urls import reverse

from integrations.models import Webhook, WebhookDelivery
from integrations.services.webhooks import (
    WebhookError,
    webhook_create,
    webhook_deliver_attempt,
    webhook_event_send,
    webhook_sign,
    webhook_test_send,
)
from review.services.items import review_items_sync
from review.services.queue import lease_claim_next
from review.services.verdict import verdict_submit
from tests.conftest import wait_until
from tests.factories import CaptionFactory, ImageFactory


def reference_signature(secret: str, timestamp: str, body: bytes) -> str:
    """How a receiver checks a delivery, written from the documentation alone."""
    signed = timestamp.encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"item.approved"}'
    assert webhook_sign(secret="whsec_abc", timestamp=1700000000, body=body) == (
        "v1=" + hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    )
    # A replayed body under a new timestamp does not verify.
    assert webhook_sign(secret="whsec_abc", timestamp=1700000001, body=body) != webhook_sign(
        secret="whsec_abc", timestamp=1700000000, body=body
    )


def test_a_failed_delivery_is_retried_and_every_attempt_is_signed(
    project, receiver, loopback_allowed, settings
):
    settings.WEBHOOK_BACKOFF_BASE_S = 0  # the retry is due at once (the backoff is tested below)
    receiver.answers = [503, 200]
    hook = webhook_create(project=project, url=receiver.url, events=["item.approved"])
    with transaction.atomic():
        assert (
            webhook_event_send(
                project_id=project.pk,
                event="item.approved",
                payload={"item_id": 7, "text": "A cat."},
            )
            == 1
        )
    delivery = WebhookDelivery.objects.get(webhook=hook)

    first = webhook_deliver_attempt(delivery_id=delivery.pk)
    assert (first.status, first.response_code, first.attempts) == ("pending", 503, 1)
    assert first.next_attempt_at is not None and "HTTP 503" in first.error
    second = webhook_deliver_attempt(delivery_id=delivery.pk)
    assert (second.status, second.response_code, second.attempts) == ("succeeded", 200, 2)
    assert webhook_deliver_attempt(delivery_id=delivery.pk) is None  # done: nothing sent again

    assert len(receiver.requests) == 2
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1  # a retry sends the same bytes
    for request in receiver.requests:
        headers = request.headers
        assert headers["X-Captiondesk-Event"] == "item.approved"
        assert headers["X-Captiondesk-Delivery"] == str(delivery.uuid)
        assert headers["X-Captiondesk-Signature"] == reference_signature(
            hook.secret, headers["X-Captiondesk-Timestamp"], request.body
        )
    payload = json.loads(receiver.requests[0].body)
    assert payload["event"] == "item.approved" and payload["id"] == str(delivery.uuid)
    assert payload["project"] == {"id": project.pk, "slug": project.slug}
    assert payload["data"] == {"item_id": 7, "text": "A cat."}


def test_delivery_gives_up_after_the_last_attempt(project, receiver, loopback_allowed, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_BACKOFF_BASE_S = 0
    receiver.answers = [500]
    hook = webhook_create(project=project, url=receiver.url, events=["run.finished"])
    delivery = webhook_test_send(webhook=hook)
    webhook_deliver_attempt(delivery_id=delivery.pk)
    last = webhook_deliver_attempt(delivery_id=delivery.pk)
    assert (last.status, last.attempts, last.next_attempt_at) == ("failed", 2, None)
    assert webhook_deliver_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 2


def test_pauses_between_attempts_double_and_stay_under_the_brokers_redelivery(settings):
    from integrations.services.webhooks import MAX_BACKOFF_S, backoff_seconds

    settings.WEBHOOK_BACKOFF_BASE_S = 30
    pauses = [backoff_seconds(n) for n in range(1, 12)]
    assert 24 <= pauses[0] <= 36 and 48 <= pauses[1] <= 72
    assert (
        max(pauses)
        <= MAX_BACKOFF_S
        < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    )


def test_events_only_reach_hooks_that_listen_to_them(project, receiver, loopback_allowed):
    webhook_create(project=project, url=receiver.url, events=["export.ready"])
    with transaction.atomic():
        sent = webhook_event_send(project_id=project.pk, event="item.approved", payload={})
    assert sent == 0 and not WebhookDelivery.objects.exists()


def test_an_approved_item_queues_a_delivery_when_the_verdict_commits(
    project, annotator, receiver, loopback_allowed, django_capture_on_commit_callbacks
):
    hook = webhook_create(project=project, url=receiver.url, events=["item.approved"])
    CaptionFactory(image=ImageFactory(project=project), text="A dog on a beach.")
    review_items_sync(project=project)
    lease = lease_claim_next(project=project, reviewer=annotator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        verdict_submit(
            lease=lease,
            reviewer=annotator,
            decision="edit",
            text="A brown dog running on a beach.",
            idempotency_key=uuid.uuid4(),
        )
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.event == "item.approved"
    assert delivery.payload["data"]["text"] == "A brown dog running on a beach."
    assert delivery.payload["data"]["edited"] is True
    assert delivery.payload["data"]["item_id"] == lease.item_id
    assert callbacks, "the delivery task is queued on commit"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::ffff:192.168.0.10]/hook", "private"),
        ("ftp://example.com/hook", "http or https"),
        ("http://user:pw@example.com/hook", "credentials"),
    ],
)
def test_internal_addresses_are_refused_when_a_hook_is_added(project, url, reason):
    with pytest.raises(WebhookError, match=reason):
        webhook_create(project=project, url=url, events=["run.finished"])
    assert not Webhook.objects.exists()


def test_a_host_that_later_resolves_inside_the_network_gets_nothing(project, receiver):
    """DNS rebinding: the name was public when the hook was added, then points at loopback."""
    url = f"http://hooks.example.test:{receiver.port}/in"
    hook = webhook_create(
        project=project, url=url, events=["run.finished"], resolver=lambda h, p: ["93.184.216.34"]
    )
    delivery = webhook_test_send(webhook=hook)
    result = webhook_deliver_attempt(delivery_id=delivery.pk, resolver=lambda h, p: ["127.0.0.1"])
    assert result.status == "failed" and result.next_attempt_at is None
    assert "loopback" in result.error
    assert receiver.requests == []


def test_the_address_checked_is_the_address_connected_to(project, receiver, loopback_allowed):
    """The name is resolved once; the POST goes to that address with the name as Host."""
    url = f"http://hooks.example.test:{receiver.port}/in"
    hook = webhook_create(
        project=project, url=url, events=["run.finished"], resolver=lambda h, p: ["127.0.0.1"]
    )
    delivery = webhook_test_send(webhook=hook)
    result = webhook_deliver_attempt(delivery_id=delivery.pk, resolver=lambda h, p: ["127.0.0.1"])
    assert result.status == "succeeded"
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_redirect_is_not_followed(project, receiver, loopback_allowed):
    receiver.answers = [302]
    hook = webhook_create(project=project, url=receiver.url, events=["run.finished"])
    delivery = webhook_test_send(webhook=hook)
    result = webhook_deliver_attempt(delivery_id=delivery.pk)
    assert result.response_code == 302 and "not followed" in result.error
    assert len(receiver.requests) == 1


@pytest.mark.worker
@pytest.mark.slow
def test_a_celery_worker_retries_with_backoff_until_the_receiver_accepts(
    project, receiver, celery_worker_process
):
    receiver.answers = [500, 502, 200]
    from django.test import override_settings

    with override_settings(URL_FETCH_ALLOW_NETWORKS=["127.0.0.1/32"]):
        hook = webhook_create(project=project, url=receiver.url, events=["budget.reached"])
    celery_worker_process(
        queues="default",
        extra_env={"URL_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "WEBHOOK_BACKOFF_BASE_S": "0.3"},
    )
    with transaction.atomic():
        webhook_event_send(project_id=project.pk, event="budget.reached", payload={"run_id": 12})
    delivery = WebhookDelivery.objects.get(webhook=hook)

    def delivered():
        delivery.refresh_from_db()
        return delivery.status == "succeeded"

    wait_until(delivered, timeout=60)
    assert (delivery.attempts, delivery.response_code) == (3, 200)
    assert [json.loads(r.body)["id"] for r in receiver.requests] == [str(delivery.uuid)] * 3


# --- pages ----------------------------------------------------------------------------------


def test_an_admin_adds_a_hook_sees_its_secret_and_sends_a_test(
    client, admin, project, receiver, loopback_allowed, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    response = client.post(
        reverse("integrations:webhook-list", args=[project.slug]),
        {"url": receiver.url, "events": ["item.approved", "run.finished"]},
        follow=True,
    )
    hook = Webhook.objects.get(project=project)
    page = response.content.decode()
    assert hook.secret in page and receiver.url in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("integrations:webhook-test", args=[hook.pk]), follow=True)
    assert "Test delivery queued" in response.content.decode()
    assert WebhookDelivery.objects.get(webhook=hook).event == "webhook.test"
    assert len(callbacks) == 1
    webhook_deliver_attempt(delivery_id=WebhookDelivery.objects.get(webhook=hook).pk)
    log = client.get(reverse("integrations:webhook-detail", args=[hook.pk])).content.decode()
    assert "Delivered" in log and "200" in log


def test_the_page_refuses_an_internal_url(client, admin, project):
    client.force_login(admin)
    response = client.post(
        reverse("integrations:webhook-list", args=[project.slug]),
        {"url": "http://127.0.0.1:6379/", "events": ["run.finished"]},
    )
    assert "loopback" in response.content.decode()
    assert not Webhook.objects.exists()


def test_annotators_and_outsiders_cannot_manage_webhooks(client, annotator, outsider, project):
    hook = Webhook.objects.create(
        project=project, url="https://example.com/h", events=["run.finished"], secret="s"
    )
    for user, status in ((annotator, 403), (outsider, 404)):
        client.force_login(user)
        assert (
            client.get(reverse("integrations:webhook-list", args=[project.slug])).status_code
            == status
        )
        assert (
            client.get(reverse("integrations:webhook-detail", args=[hook.pk])).status_code == status
        )
        assert (
            client.post(reverse("integrations:webhook-test", args=[hook.pk])).status_code == status
        )
        assert (
            client.post(reverse("integrations:webhook-delete", args=[hook.pk])).status_code
            == status
        )
    assert Webhook.objects.filter(pk=hook.pk).exists()


def test_a_run_event_carries_the_runs_figures(project, receiver, loopback_allowed):
    from decimal import Decimal

    from integrations.services.webhooks import run_event_send
    from routing.models import CaptionRun

    hook = webhook_create(project=project, url=receiver.url, events=["budget.reached"])
    run = CaptionRun.objects.create(
        project=project,
        kind=CaptionRun.Kind.CHAIN,
        status=CaptionRun.Status.BUDGET,
        caption_count=40,
        budget_usd=Decimal("2.00"),
        spent_usd=Decimal("2.00"),
    )
    with transaction.atomic():
        assert run_event_send(run_id=run.pk, event="budget.reached") == 1
        assert run_event_send(run_id=run.pk, event="run.finished") == 0  # not subscribed
    data = WebhookDelivery.objects.get(webhook=hook).payload["data"]
    assert data["run_id"] == run.pk and data["status"] == "budget"
    assert (data["budget_usd"], data["spent_usd"]) == ("2.00000000", "2.00000000")


def test_a_delivery_whose_message_was_lost_is_sent_again_by_the_sweep(
    project, receiver, loopback_allowed, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from integrations.services.webhooks import webhook_deliveries_sweep

    hook = webhook_create(project=project, url=receiver.url, events=["run.finished"])
    delivery = webhook_test_send(webhook=hook)
    assert webhook_deliveries_sweep() == 0  # just queued: its own message is on the way
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert webhook_deliveries_sweep() == 1
    assert len(callbacks) == 1
    # An early copy of a retry's message does nothing before the retry is due.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert webhook_deliver_attempt(delivery_id=delivery.pk) is None
    assert receiver.requests == []
