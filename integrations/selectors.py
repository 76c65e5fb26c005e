"""Reads of the integrations app: tokens a user may see, webhooks and their delivery log."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import ApiToken, Webhook, WebhookDelivery
from labeling.models import Project
from labeling.selectors import user_is_admin


def api_tokens_visible_to(*, user) -> QuerySet[ApiToken]:
    """A user's own tokens; site admins see everyone's (to revoke a leaked one)."""
    qs = ApiToken.objects.select_related("user", "created_by")
    if not user_is_admin(user):
        qs = qs.filter(user=user)
    return qs.order_by("-created_at", "-id")


def webhooks_for_project(*, project: Project) -> QuerySet[Webhook]:
    return Webhook.objects.filter(project=project).order_by("id")


def webhook_deliveries(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    return webhook.deliveries.order_by("-id")
