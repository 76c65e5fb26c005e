"""Runs always finish and money is never spent twice: what a dead worker, a cancel or an admin
leaves behind is closed, counted and released.

Each test here reproduces something seen going wrong (issue "Runs that always finish"):
the sweep never ran, a cancelled run kept "In flight 1" and "$0.0031 reserved", a lost call was
logged at $0 for uncapped runs, a dead worker's Replicate prediction was paid for twice, and a
caption stuck in "running" had no way out but the database.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Membership
from routing.fakes import Reply
from routing.models import Caption, CaptionRun, ModelCall, Route
from routing.services.execute import caption_execute
from routing.services.runs import caption_stop, caption_sweep, run_cancel
from tests.factories import ImageFactory, RouteFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)

PAST = timedelta(minutes=20)


def dead_worker_caption(project, route, run, *, reserved="0", estimate="0.0031", request_id=""):
    """A caption whose worker died mid-call: running, lease over, one call in flight."""
    past = timezone.now() - PAST
    caption = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="Describe the image.",
        status=Caption.Status.RUNNING,
        claimed_at=past,
        deadline_at=past + timedelta(minutes=1),
        lease_until=past + timedelta(minutes=2),
    )
    call = ModelCall.objects.create(
        caption=caption,
        run=run,
        route=route,
        attempt=1,
        trigger="initial",
        started_at=past,
        reserved_usd=Decimal(reserved),
        estimate_usd=Decimal(estimate),
        request_id=request_id,
        submitted_at=past if request_id else None,
    )
    CaptionRun.objects.filter(pk=run.pk).update(reserved_usd=Decimal(reserved))
    return caption, call


def test_a_lost_call_of_an_uncapped_run_counts_at_its_estimate(project, fake_edenai, broker):
    """An uncapped run reserves nothing for a first call, yet the vendor may have billed it."""
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption, call = dead_worker_caption(project, route, run, reserved="0", estimate="0.0031")

    report = caption_sweep()

    assert report.recovered == [caption.pk]
    call.refresh_from_db()
    assert call.status == ModelCall.Status.LOST
    assert call.cost_usd == Decimal("0.0031") and call.cost_source == "estimated"
    run.refresh_from_db()
    assert run.spent_usd == Decimal("0.0031") and run.reserved_usd == 0
    caption.refresh_from_db()
    assert caption.status == Caption.Status.PENDING and caption.cost_usd == Decimal("0.0031")


def test_every_call_records_the_estimate_it_would_count_at_if_lost(project, fake_edenai):
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.0031"))
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption = Caption.objects.create(
        image=ImageFactory(project=project), target_route=route, run=run, prompt="p"
    )

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    [call] = caption.calls.all()
    assert call.estimate_usd == Decimal("0.0031")


def test_the_sweep_cancels_a_dead_workers_caption_when_its_run_was_cancelled(
    project, fake_edenai, broker
):
    """Before, it went back to "pending" in a cancelled run and stayed there for ever."""
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison", budget_usd=Decimal("1"))
    caption, call = dead_worker_caption(project, route, run, reserved="0.0031")
    run_cancel(run=run)

    report = caption_sweep()

    assert report.cancelled == [caption.pk] and report.recovered == []
    caption.refresh_from_db()
    assert caption.status == Caption.Status.CANCELLED
    call.refresh_from_db()
    assert call.status == ModelCall.Status.LOST and call.cost_usd == Decimal("0.0031")
    run.refresh_from_db()
    assert run.reserved_usd == 0 and run.spent_usd == Decimal("0.0031")
    assert broker.messages("api") == []  # nothing is sent to a vendor for a cancelled run


def test_cancel_closes_a_prediction_kept_for_a_successor_that_will_never_come(
    project, fake_replicate, broker
):
    route = replicate_route(fake_replicate)
    run = CaptionRun.objects.create(project=project, kind="comparison", budget_usd=Decimal("1"))
    caption, call = dead_worker_caption(
        project, route, run, reserved="0.0031", request_id="pred-kept"
    )
    caption_sweep()  # the prediction is kept in flight for the next worker
    call.refresh_from_db()
    assert call.status == ModelCall.Status.IN_FLIGHT

    assert run_cancel(run=run) == 1

    call.refresh_from_db()
    assert call.status == ModelCall.Status.LOST and call.cost_source == "estimated"
    run.refresh_from_db()
    assert run.reserved_usd == 0 and run.spent_usd == Decimal("0.0031")
    assert not Caption.objects.filter(run=run, status__in=["pending", "running"]).exists()


def replicate_route(fake, **kwargs) -> Route:
    return RouteFactory(
        name=kwargs.pop("name", "replicate-blip2"),
        provider=Route.Provider.REPLICATE,
        model="andreasjansson/blip-2",
        base_url=fake.url,
        usd_per_second=Decimal("0.001"),
        timeout_s=kwargs.pop("timeout_s", 5.0),
        config={"poll_interval_s": 0.05},
        **kwargs,
    )


def create_prediction(fake, reply: Reply) -> str:
    """A prediction started on the vendor by a worker that then died."""
    fake.script([reply])
    response = requests.post(
        f"{fake.url}/v1/predictions",
        json={"version": "andreasjansson/blip-2", "input": {"image": "https://example.com/x.jpg"}},
        headers={"Authorization": "Bearer anything"},
        timeout=5,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def test_a_dead_workers_prediction_is_picked_up_not_paid_for_twice(project, fake_replicate, broker):
    route = replicate_route(fake_replicate)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    prediction_id = create_prediction(
        fake_replicate, Reply.success("a dog on a beach", predict_time=2.0)
    )
    caption, call = dead_worker_caption(project, route, run, request_id=prediction_id)

    report = caption_sweep()
    assert report.recovered == [caption.pk]
    assert [name for name, _ in broker.messages("api")] == ["routing.tasks.caption_image"]
    assert caption_execute(caption_id=caption.pk) == "succeeded"

    assert len(fake_replicate.predictions) == 1  # polled again, never created again
    caption.refresh_from_db()
    assert caption.text.lower().startswith("a dog on a beach")
    [only] = caption.calls.all()
    assert only.pk == call.pk and only.status == ModelCall.Status.SUCCEEDED
    assert only.cost_usd == Decimal("0.002") and only.cost_source == "computed"
    run.refresh_from_db()
    assert run.spent_usd == Decimal("0.002") and run.reserved_usd == 0
    assert caption.cost_usd == Decimal("0.002")


def test_an_unknown_prediction_id_falls_back_to_a_new_one(project, fake_replicate, broker):
    """Replicate forgot it (or it never existed): counted at its estimate, and asked again."""
    route = replicate_route(fake_replicate)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption, call = dead_worker_caption(project, route, run, request_id="no-such-prediction")
    caption_sweep()
    fake_replicate.script([Reply.success("a red bicycle")])

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    calls = list(caption.calls.order_by("attempt"))
    assert calls[0].pk == call.pk and calls[0].status == ModelCall.Status.FAILED
    assert calls[-1].status == ModelCall.Status.SUCCEEDED
    assert len(fake_replicate.predictions) == 1


def test_an_admin_stops_a_stuck_caption_after_confirming_then_retries_it(
    project, admin, fake_edenai, broker
):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption, call = dead_worker_caption(project, route, run)
    # still inside its lease: the sweep would not take it back yet
    Caption.objects.filter(pk=caption.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
    client = Client()
    client.force_login(admin)
    url = reverse("routing:caption-stop", args=[caption.pk])

    confirm = client.post(url)
    assert confirm.status_code == 200 and b"Stop caption" in confirm.content
    caption.refresh_from_db()
    assert caption.status == Caption.Status.RUNNING  # nothing happened without the confirmation

    client.post(url, {"confirm": "1"})
    caption.refresh_from_db()
    assert caption.status == Caption.Status.FAILED and "stopped by" in caption.error
    call.refresh_from_db()
    assert call.status == ModelCall.Status.LOST and call.cost_source == "estimated"
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.FINISHED and run.reserved_usd == 0

    client.post(reverse("routing:caption-retry", args=[caption.pk]))
    caption.refresh_from_db()
    assert caption.status == Caption.Status.PENDING


def test_a_worker_that_was_not_dead_cannot_write_over_a_stopped_caption(project, fake_edenai):
    route = edenai_route(fake_edenai)
    fake_edenai.script([Reply.success("late answer", latency_ms=0)])
    caption = Caption.objects.create(
        image=ImageFactory(project=project), target_route=route, prompt="p"
    )
    from routing.services.execute import caption_claim

    execution = caption_claim(caption_id=caption.pk, where="api")
    prepared = execution.prepare_next()
    caption_stop(caption=caption)
    execution.complete(prepared, execution.call(prepared))

    assert execution.finish() == "skipped"
    caption.refresh_from_db()
    assert caption.status == Caption.Status.FAILED and caption.text == ""


def test_stopping_and_cancelling_are_for_project_admins_only(project, annotator, fake_edenai):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption, _ = dead_worker_caption(project, route, run)
    client = Client()
    client.force_login(annotator)
    assert Membership.objects.get(user=annotator).role == Membership.Role.ANNOTATOR

    for url in (
        reverse("routing:caption-stop", args=[caption.pk]),
        reverse("routing:run-action", args=[run.pk, "cancel"]),
    ):
        assert client.post(url, {"confirm": "1"}).status_code in (403, 404)
    caption.refresh_from_db()
    run.refresh_from_db()
    assert caption.status == Caption.Status.RUNNING and run.status == CaptionRun.Status.RUNNING


def test_cancel_asks_first_and_says_what_will_happen(project, admin, fake_edenai, broker):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    for _ in range(3):
        Caption.objects.create(
            image=ImageFactory(project=project), target_route=route, run=run, prompt="p"
        )
    client = Client()
    client.force_login(admin)
    url = reverse("routing:run-action", args=[run.pk, "cancel"])

    page = client.post(url)
    assert page.status_code == 200
    assert b"3 waiting caption(s) will be cancelled" in page.content
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.RUNNING

    client.post(url, {"confirm": "1"})
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.CANCELLED
    assert run.captions.filter(status="cancelled").count() == 3
