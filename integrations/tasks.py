"""Celery tasks of the integrations app: thin, load by id and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from integrations.services import webhooks


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def webhook_deliver(self, *, delivery_id: int) -> str:
    """One attempt; a failed attempt worth retrying comes back at its ``next_attempt_at``."""
    delivery = webhooks.webhook_deliver_attempt(delivery_id=delivery_id)
    if delivery is None:
        return "nothing to do"
    if delivery.next_attempt_at is not None:
        countdown = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
        raise self.retry(countdown=countdown)
    return delivery.status


@shared_task(ignore_result=True)
def webhook_deliveries_sweep() -> int:
    """Beat, every minute: pending deliveries whose message was lost are queued again."""
    return webhooks.webhook_deliveries_sweep()
