"""The periodic tasks, sent the way ``celery beat`` sends them, reach a real worker and run.

Before, beat logged "Couldn't apply scheduled task routing-caption-sweep: soft_time_limit must
be less than or equal to time_limit" every minute: the sweep set only ``time_limit`` and
inherited the global soft limit, so Celery refused to send it and nothing recovered dead
workers' captions. Checking that the entries name registered tasks did not catch it; sending
them does.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.beat import Scheduler
from django.conf import settings
from django.utils import timezone

from captiondesk.celery import app
from routing.models import Caption, CaptionRun, ModelCall
from tests.conftest import wait_until
from tests.factories import ImageFactory, RouteFactory


def _soft_and_hard(task) -> tuple[float | None, float | None]:
    soft = (
        task.soft_time_limit if task.soft_time_limit is not None else app.conf.task_soft_time_limit
    )
    hard = task.time_limit if task.time_limit is not None else app.conf.task_time_limit
    return soft, hard


def test_no_task_has_a_soft_time_limit_above_its_hard_one():
    """Celery refuses to send such a task at all; this covers tasks added later too."""
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) > 10
    for task in ours:
        soft, hard = _soft_and_hard(task)
        assert soft is None or hard is None or soft <= hard, task.name


def _send_like_beat(name: str, spec: dict) -> None:
    """What ``celery beat`` does for one due entry (``Scheduler.apply_async``, with the task's
    real options); it raises ``SchedulingError`` where beat would log "Couldn't apply"."""
    scheduler = Scheduler(app=app, lazy=True)
    entry = scheduler.Entry(
        name=name,
        task=spec["task"],
        schedule=spec["schedule"],
        args=spec.get("args", ()),
        kwargs=spec.get("kwargs", {}),
        options=spec.get("options", {}),
        app=app,
    )
    scheduler.apply_async(entry, advance=False)


@pytest.mark.worker
@pytest.mark.slow
def test_every_beat_entry_is_sent_and_run_by_a_worker(project, celery_worker_process):
    app.loader.import_default_modules()
    route = RouteFactory(name="gone-vendor", provider="edenai", model="openai/gpt-4o")
    run = CaptionRun.objects.create(project=project, kind="comparison")
    past = timezone.now() - timedelta(minutes=30)
    # a worker died holding this caption twenty minutes ago
    caption = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="p",
        status=Caption.Status.RUNNING,
        claimed_at=past,
        deadline_at=past,
        lease_until=past,
        lost_count=2,  # the poison limit (3) is reached: failed, not re-enqueued to a vendor
    )
    ModelCall.objects.create(
        caption=caption, run=run, route=route, attempt=1, trigger="initial", started_at=past
    )
    celery_worker_process(queues="default,api", concurrency=2)

    for name, spec in settings.CELERY_BEAT_SCHEDULE.items():
        _send_like_beat(name, spec)

    caption = wait_until(
        lambda: Caption.objects.filter(pk=caption.pk, status=Caption.Status.FAILED).first(),
        timeout=60,
    )
    assert "poison-message limit" in caption.error
    # The sweep fails the caption, then closes its call and settles the run, each in its own
    # statement: wait for those too rather than read them the moment the caption has failed.
    wait_until(
        lambda: ModelCall.objects.filter(caption=caption, status=ModelCall.Status.LOST).exists(),
        timeout=30,
    )
    run = wait_until(
        lambda: CaptionRun.objects.filter(pk=run.pk, status=CaptionRun.Status.FINISHED).first(),
        timeout=30,
    )
    assert run.status == CaptionRun.Status.FINISHED
