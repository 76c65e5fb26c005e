"""The periodic sweep: work left "running" by a dead worker comes back, at most a few times."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from routing.models import Caption, CaptionRun, ModelCall
from routing.services.execute import caption_execute
from routing.services.runs import caption_sweep
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)


def crashed_caption(project, route, run, *, lost_count=0, reserved=Decimal("0.001")):
    """A caption a worker claimed and died on mid-call: running, lease over, a call in flight."""
    past = timezone.now() - timedelta(minutes=20)
    caption = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="x",
        status=Caption.Status.RUNNING,
        claimed_at=past,
        deadline_at=past + timedelta(minutes=2),
        lease_until=past + timedelta(minutes=3),
        lost_count=lost_count,
    )
    ModelCall.objects.create(
        caption=caption,
        run=run,
        route=route,
        attempt=1,
        trigger="initial",
        started_at=past,
        reserved_usd=reserved,
    )
    CaptionRun.objects.filter(pk=run.pk).update(reserved_usd=reserved)
    return caption


def test_sweep_requeues_work_of_a_dead_worker_and_logs_the_lost_call(project, fake_edenai, broker):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption = crashed_caption(project, route, run)
    live = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="y",
        status=Caption.Status.RUNNING,
        claimed_at=timezone.now(),
        lease_until=timezone.now() + timedelta(minutes=5),
    )

    report = caption_sweep()

    assert report.recovered == [caption.pk] and report.poisoned == []
    caption.refresh_from_db()
    assert (caption.status, caption.lost_count) == ("pending", 1)
    live.refresh_from_db()
    assert live.status == "running"  # its lease is still good: its worker is alive
    lost = caption.calls.get()
    assert lost.status == "lost" and "may have billed" in lost.error
    assert lost.cost_usd == Decimal("0.001") and lost.cost_source == "estimated"
    run.refresh_from_db()
    assert run.reserved_usd == 0 and run.spent_usd == Decimal("0.001")
    assert broker.messages("api") == [("routing.tasks.caption_image", {"caption_id": caption.pk})]

    # The message is delivered again: a new attempt number, the vendor answers, done.
    assert caption_execute(caption_id=caption.pk) == "succeeded"
    assert list(caption.calls.order_by("attempt").values_list("attempt", "status")) == [
        (1, "lost"),
        (2, "succeeded"),
    ]


def test_an_image_that_keeps_killing_workers_is_failed_not_retried_forever(
    project, fake_edenai, broker, routing_settings
):
    routing_settings.ROUTING_POISON_LIMIT = 3
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption = crashed_caption(project, route, run, lost_count=2)

    report = caption_sweep()

    assert report.poisoned == [caption.pk]
    caption.refresh_from_db()
    assert caption.status == "failed" and "poison" in caption.error
    assert caption.lost_count == 3
    assert broker.messages("api") == []
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.FINISHED  # nothing left open


def test_a_redelivered_message_while_the_first_worker_still_runs_is_dropped(project, fake_edenai):
    route = edenai_route(fake_edenai)
    caption = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        prompt="x",
        status=Caption.Status.RUNNING,
        claimed_at=timezone.now(),
        lease_until=timezone.now() + timedelta(minutes=5),
    )
    assert caption_execute(caption_id=caption.pk) == "skipped"
    assert fake_edenai.requests == []


def test_a_worker_that_outlives_its_lease_cannot_overwrite_the_recovery(project, fake_edenai):
    """The sweep took the caption back: the old worker's late answer is dropped."""
    from routing.services.execute import caption_claim

    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption = Caption.objects.create(
        image=ImageFactory(project=project), target_route=route, run=run, prompt="x"
    )
    execution = caption_claim(caption_id=caption.pk, where="api")
    prepared = execution.prepare_next()
    # The lease runs out (the worker hung) and the sweep recovers the caption.
    Caption.objects.filter(pk=caption.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    caption_sweep()
    # Now the hung worker wakes up with an answer.
    execution.complete(prepared, execution.call(prepared))
    assert execution.finish() == "skipped"

    caption.refresh_from_db()
    assert caption.status == "pending" and caption.text == ""
    assert caption.calls.get().status == "lost"
    run.refresh_from_db()
    assert run.reserved_usd == 0


def test_pending_captions_whose_message_was_lost_are_enqueued_again(
    project, fake_edenai, broker, routing_settings
):
    routing_settings.ROUTING_REQUEUE_AFTER_S = 60
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    old = Caption.objects.create(
        image=ImageFactory(project=project), target_route=route, run=run, prompt="x"
    )
    Caption.objects.filter(pk=old.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    fresh = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="y",
        enqueued_at=timezone.now(),
    )
    paused_run = CaptionRun.objects.create(project=project, kind="comparison", status="paused")
    Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=paused_run,
        prompt="z",
        enqueued_at=timezone.now() - timedelta(minutes=5),
    )

    report = caption_sweep()

    assert report.requeued == [old.pk]
    assert fresh.pk not in [m[1]["caption_id"] for m in broker.messages("api")]
