"""When Redis is down or lost its messages: pages still show, health says what is wrong, and
captions whose message was lost are sent again within minutes, not after the hour-long
visibility timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from routing.models import Caption, CaptionRun
from routing.services.runs import caption_enqueue, caption_sweep
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def waiting_caption(project, route, run, *, enqueued_minutes_ago: float) -> Caption:
    return Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="p",
        enqueued_at=timezone.now() - timedelta(minutes=enqueued_minutes_ago),
    )


def test_captions_whose_message_was_lost_are_sent_again_once_the_queues_are_empty(
    project, fake_edenai, broker
):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    lost = waiting_caption(project, route, run, enqueued_minutes_ago=5)

    report = caption_sweep()

    assert report.requeued == [lost.pk]
    assert [kwargs["caption_id"] for _, kwargs in broker.messages("api")] == [lost.pk]


def test_captions_still_queued_behind_others_are_not_sent_twice(project, fake_edenai, broker):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    queued = waiting_caption(project, route, run, enqueued_minutes_ago=0)
    caption_enqueue(caption_ids=[queued.pk])  # its message is in the queue
    behind = waiting_caption(project, route, run, enqueued_minutes_ago=5)
    broker_before = broker.messages("api")

    report = caption_sweep()

    assert behind.pk not in report.requeued
    assert broker.messages("api") == broker_before


def test_with_redis_down_the_project_page_shows_and_health_says_which_part_is_down(
    settings, project, admin, fake_edenai
):
    edenai_route(fake_edenai)
    client = Client()
    client.force_login(admin)
    live_redis = settings.REDIS_URL
    settings.REDIS_URL = DEAD_REDIS  # breaker state lives there
    settings.CELERY_BROKER_URL = DEAD_REDIS
    try:
        _pages_and_health_with_redis_down(client, project)
    finally:
        settings.REDIS_URL = live_redis  # the fixtures' clean-up needs the live one


def _pages_and_health_with_redis_down(client, project):
    page = client.get(f"/projects/{project.slug}/")
    assert page.status_code == 200
    routes = client.get("/routing/routes/")
    assert routes.status_code == 200 and b"unknown" in routes.content

    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["database"] == "ok" and body["broker"].startswith("error:")
    assert client.get("/livez").status_code == 200
