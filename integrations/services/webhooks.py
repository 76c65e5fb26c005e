"""Webhooks: register, sign, deliver (SSRF-checked, from a Celery task with retries), and the one
entry point other apps call when something happens: ``webhook_event_send``.

A delivery is a POST of a JSON body with these headers:

    X-Captiondesk-Event: item.approved
    X-Captiondesk-Delivery: <uuid, the same on every retry>
    X-Captiondesk-Timestamp: <unix seconds of this attempt>
    X-Captiondesk-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

Receivers recompute the HMAC over the timestamp, a dot and the raw body, compare it in constant
time, and refuse timestamps older than a few minutes (replays). Any 2xx answer is success;
anything else (and no answer) is retried with exponential backoff, up to WEBHOOK_MAX_ATTEMPTS.
Redirects are not followed (a redirect could point inside the network).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from integrations.models import Webhook, WebhookDelivery, WebhookEvent
from labeling.models import Project
from labeling.safe_fetch import FetchError, Resolver, resolve_checked

USER_AGENT = "captiondesk-webhooks/1.0"
_RESPONSE_PEEK_BYTES = 1024


class WebhookError(Exception):
    """The webhook cannot be saved as asked; the message is for the user."""


# --- registration ---------------------------------------------------------------------------


def _url_check(url: str, resolver: Resolver | None = None) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookError("Use an http or https URL.")
    if parts.username or parts.password:
        raise WebhookError("Put no credentials in the URL; verify the signature instead.")
    if not parts.hostname:
        raise WebhookError("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolve_checked(parts.hostname, port, resolver)
    except ValueError as exc:
        raise WebhookError("The URL has an invalid port.") from exc
    except FetchError as exc:
        raise WebhookError(f"This URL cannot receive webhooks: {exc}.") from exc


def webhook_create(
    *, project: Project, url: str, events: list[str], created_by=None, resolver=None
) -> Webhook:
    """Register a URL; it is checked now (and again at every delivery: DNS can change)."""
    allowed = set(WebhookEvent.values) - {WebhookEvent.TEST.value}
    if not events or set(events) - allowed:
        raise WebhookError("Choose at least one event among those listed.")
    _url_check(url, resolver)
    return Webhook.objects.create(
        project=project,
        url=url,
        events=sorted(set(events)),
        secret=f"whsec_{secrets.token_urlsafe(32)}",
        created_by=created_by,
    )


def webhook_set_active(*, webhook: Webhook, active: bool) -> None:
    Webhook.objects.filter(pk=webhook.pk).update(active=active)
    webhook.active = active


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


# --- events ---------------------------------------------------------------------------------


def _enqueue(delivery_ids: list[int]) -> None:
    from integrations import tasks

    for delivery_id in delivery_ids:
        tasks.webhook_deliver.delay(delivery_id=delivery_id)


def _deliveries_create(hooks: list[Webhook], event: str, payload: dict[str, Any]) -> list[int]:
    created = []
    now = timezone.now()
    for hook in hooks:
        delivery = WebhookDelivery(webhook=hook, event=event, payload={}, next_attempt_at=now)
        delivery.payload = {
            "id": str(delivery.uuid),
            "event": event,
            "created_at": now.isoformat(),
            "project": {"id": hook.project_id, "slug": hook.project.slug},
            "data": json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
        }
        delivery.save()
        created.append(delivery.pk)
    return created


def webhook_event_send(*, project_id: int, event: str, payload: dict[str, Any]) -> int:
    """Something happened in a project: queue a delivery to every active hook that listens.

    Call it inside the transaction that made the change: the deliveries are rows of that
    transaction and their tasks are queued only once it commits (a rollback sends nothing).
    ``payload`` must be JSON-serialisable (dates and decimals are fine). Returns how many
    deliveries were queued (0 costs one indexed query).
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = [
        h
        for h in Webhook.objects.filter(project_id=project_id, active=True).select_related(
            "project"
        )
        if event in h.events
    ]
    if not hooks:
        return 0
    ids = _deliveries_create(hooks, event, payload)
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def webhook_test_send(*, webhook: Webhook, by=None) -> WebhookDelivery:
    """The "send test" button: one delivery of a test event to this hook, whatever it listens to."""
    payload = {
        "message": "A test delivery from captiondesk.",
        "sent_by": getattr(by, "username", ""),
    }
    with transaction.atomic():
        ids = _deliveries_create([webhook], WebhookEvent.TEST, payload)
        transaction.on_commit(lambda: _enqueue(ids))
    return WebhookDelivery.objects.get(pk=ids[0])


# --- signing and delivery -------------------------------------------------------------------


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The exact bytes sent, the same on every attempt."""
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retry: bool  # a failure worth trying again later
    status: int | None = None
    error: str = ""


def _post(url: str, body: bytes, headers: dict[str, str], resolver: Resolver | None) -> Attempt:
    """POST to the address that passed the SSRF check (not to a second DNS answer)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve_checked(host, port, resolver)
    except (ValueError, FetchError) as exc:
        # A refused address stays refused: no retry.
        return Attempt(ok=False, retry=False, error=str(exc)[:500])
    timeout = urllib3.Timeout(
        connect=min(5.0, settings.WEBHOOK_TIMEOUT_S), read=settings.WEBHOOK_TIMEOUT_S
    )
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            preload_content=False,
        )
        try:
            response.read(_RESPONSE_PEEK_BYTES)  # we only need the status; never the whole body
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Attempt(ok=False, retry=True, error=f"{exc.__class__.__name__}: no answer")
    finally:
        pool.close()
    if 200 <= response.status < 300:
        return Attempt(ok=True, retry=False, status=response.status)
    detail = "a redirect (not followed)" if 300 <= response.status < 400 else "not a 2xx answer"
    return Attempt(
        ok=False, retry=True, status=response.status, error=f"HTTP {response.status}: {detail}"
    )


# Longest pause between attempts: a retry waits in the broker as a countdown message, which must
# come due well before the broker's visibility timeout (1 h) or it would be delivered twice.
MAX_BACKOFF_S = 1800.0
# A pending delivery this late has lost its message (broker restart, worker killed): resend.
SWEEP_GRACE = timedelta(minutes=2)


def backoff_seconds(attempts: int) -> float:
    """After the n-th failed attempt: base * 2^(n-1), at most 30 minutes, with +-20% jitter."""
    delay = min(MAX_BACKOFF_S / 1.2, settings.WEBHOOK_BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


def webhook_deliveries_sweep(*, now=None, limit: int = 500) -> int:
    """Queue again the pending deliveries whose attempt is overdue (their task message was
    lost); the per-attempt claim makes a duplicate harmless. Returns how many were queued."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - SWEEP_GRACE
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def webhook_deliver_attempt(
    *, delivery_id: int, resolver: Resolver | None = None
) -> WebhookDelivery | None:
    """Make one attempt at a pending delivery and record it. Returns the delivery (its status
    says what happened; ``next_attempt_at`` is set when it should be retried), or None when
    there was nothing to do (already delivered or given up, or another worker holds it)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    now = timezone.now()
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + timedelta(
        seconds=1
    ):
        return None  # an early copy of a retry's message: the retry itself comes later
    # Claim this attempt: a twice-delivered task message makes one attempt, not two.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(attempts=delivery.attempts + 1, last_attempt_at=now, next_attempt_at=None)
    if not claimed:
        return None
    delivery.attempts += 1
    delivery.next_attempt_at = None
    body = delivery_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Captiondesk-Event": delivery.event,
        "X-Captiondesk-Delivery": str(delivery.uuid),
        "X-Captiondesk-Timestamp": str(timestamp),
        "X-Captiondesk-Signature": webhook_sign(
            secret=delivery.webhook.secret, timestamp=timestamp, body=body
        ),
    }
    if not delivery.webhook.active:
        attempt = Attempt(ok=False, retry=False, error="The webhook was switched off.")
    else:
        attempt = _post(delivery.webhook.url, body, headers, resolver)
    delivery.response_code = attempt.status
    delivery.error = attempt.error
    if attempt.ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.SUCCEEDED, timezone.now()
    elif attempt.retry and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.next_attempt_at = timezone.now() + timedelta(
            seconds=backoff_seconds(delivery.attempts)
        )
    else:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(
        update_fields=["status", "response_code", "error", "delivered_at", "next_attempt_at"]
    )
    return delivery


# --- event payloads (built here so the apps that send them stay one call long) ----------------


def item_approved_payload(*, item) -> dict[str, Any]:
    """A review item's approval: the approved text and where it came from."""
    return {
        "item_id": item.pk,
        "image_id": item.image_id,
        "caption_id": item.caption_id,
        "text": item.final_text,
        "edited": item.edited,
        "decided_at": item.decided_at,
    }


def run_event_send(*, run_id: int, event: str) -> int:
    """``run.finished`` or ``budget.reached`` for a captioning run, with its figures; for the
    routing code, which knows the run's id where the status changes."""
    from routing.models import CaptionRun

    run = CaptionRun.objects.filter(pk=run_id).first()
    if run is None:
        return 0
    payload = {
        "run_id": run.pk,
        "status": run.status,
        "kind": run.kind,
        "caption_count": run.caption_count,
        "budget_usd": run.budget_usd,
        "spent_usd": run.spent_usd,
        "finished_at": run.finished_at,
    }
    return webhook_event_send(project_id=run.project_id, event=event, payload=payload)


def export_ready_payload(*, export) -> dict[str, Any]:
    """An export's file is stored: what it is (fetch it through the export's page or the API)."""
    return {
        "export_id": export.pk,
        "format": getattr(export, "format", ""),
        "rows": getattr(export, "rows", None),
        "byte_size": getattr(export, "byte_size", None),
        "sha256": getattr(export, "sha256", ""),
    }


def export_ready_send(*, export_id: int) -> int:
    """``export.ready`` for a stored export (labeling announces it through labeling/hooks.py)."""
    from labeling.models import Export

    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return 0
    return webhook_event_send(
        project_id=export.project_id,
        event="export.ready",
        payload=export_ready_payload(export=export),
    )
