"""Breaker shared across workers, budget caps under concurrency, the result cache, and at-most-once
production when the same work is done twice at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from labeling.models import Image
from routing.fakes import Reply
from routing.models import Caption, CaptionRun, ModelCall
from routing.services import breaker
from routing.services.execute import caption_execute
from routing.services.runs import ImageSelection, run_launch
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route, make_chain
from tests.routing.test_execute import chain_caption

pytestmark = pytest.mark.django_db(transaction=True)


def run_in_threads(fn, args_list, workers=8):
    def wrapped(arg):
        try:
            return fn(arg)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(wrapped, args_list))


# --- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_skips_the_route_then_half_opens_and_closes(
    project, fake_edenai, fake_edenai_b, routing_settings
):
    routing_settings.ROUTING_BREAKER_FAILURES = 2
    routing_settings.ROUTING_BREAKER_COOLDOWN_S = 1.0
    fake_edenai.script([], default="500")
    fake_edenai_b.script([], default=Reply.success("from the backup"))
    primary = edenai_route(fake_edenai, name="primary", max_attempts=1)
    backup = edenai_route(fake_edenai_b, name="backup")
    chain = make_chain(project, [primary, backup])
    captions = [chain_caption(ImageFactory(project=project), chain) for _ in range(4)]

    for caption in captions[:2]:
        assert caption_execute(caption_id=caption.pk) == "succeeded"
    assert breaker.breaker_state(route_id=primary.pk).status == "open"
    assert len(fake_edenai.requests) == 2

    # Open: the primary is not even called; the backup serves, logged as a breaker fallback.
    assert caption_execute(caption_id=captions[2].pk) == "succeeded"
    assert len(fake_edenai.requests) == 2
    [only] = captions[2].calls.all()
    assert (only.route, only.trigger) == (backup, "fallback:breaker_open")

    # After the cool-down one probe goes through; the vendor is back, so the breaker closes.
    time.sleep(1.1)
    fake_edenai.set_default(Reply.success("primary is back"))
    assert caption_execute(caption_id=captions[3].pk) == "succeeded"
    captions[3].refresh_from_db()
    assert captions[3].route == primary and captions[3].text == "primary is back"
    assert breaker.breaker_state(route_id=primary.pk).status == "closed"


def test_breaker_state_is_shared_through_redis(project, fake_edenai, routing_settings):
    """What one worker records, every other process reads: the state lives in Redis."""
    import redis

    routing_settings.ROUTING_BREAKER_FAILURES = 1
    route = edenai_route(fake_edenai)
    breaker.breaker_record(route_id=route.pk, failure=True)
    raw = redis.Redis.from_url(routing_settings.REDIS_URL).get(
        f"{routing_settings.ROUTING_REDIS_PREFIX}breaker:{route.pk}"
    )
    assert b'"status":"open"' in raw
    assert breaker.breaker_allow(route_id=route.pk) is False
    breaker.breaker_reset(route_id=route.pk)
    assert breaker.breaker_allow(route_id=route.pk) is True


def test_only_one_probe_when_many_workers_ask_at_once(project, fake_edenai, routing_settings):
    routing_settings.ROUTING_BREAKER_FAILURES = 1
    routing_settings.ROUTING_BREAKER_COOLDOWN_S = 0.0
    route = edenai_route(fake_edenai)
    breaker.breaker_record(route_id=route.pk, failure=True)
    barrier = threading.Barrier(16)

    def ask(_):
        barrier.wait()
        return breaker.breaker_allow(route_id=route.pk)

    answers = run_in_threads(ask, range(16), workers=16)
    assert answers.count(True) == 1


def test_a_stale_call_finishing_during_the_probe_does_not_decide_it(
    project, fake_edenai, routing_settings
):
    routing_settings.ROUTING_BREAKER_FAILURES = 1
    routing_settings.ROUTING_BREAKER_COOLDOWN_S = 0.0
    route = edenai_route(fake_edenai)
    closed_seen = breaker.breaker_state(route_id=route.pk)  # a call started while closed
    breaker.breaker_record(route_id=route.pk, failure=True)
    allowed, probe_seen = breaker.breaker_check(route_id=route.pk)
    assert allowed and probe_seen.status == "half_open"

    # The old call now fails, or succeeds: neither re-opens nor closes the probing breaker.
    breaker.breaker_record(route_id=route.pk, failure=True, seen=closed_seen)
    assert breaker.breaker_state(route_id=route.pk).status == "half_open"
    breaker.breaker_record(route_id=route.pk, failure=False, seen=closed_seen)
    assert breaker.breaker_state(route_id=route.pk).status == "half_open"

    breaker.breaker_record(route_id=route.pk, failure=False, seen=probe_seen)
    assert breaker.breaker_state(route_id=route.pk).status == "closed"


def test_all_routes_open_defers_the_caption_instead_of_failing_it(
    project, image, fake_edenai, routing_settings, broker
):
    routing_settings.ROUTING_BREAKER_FAILURES = 1
    route = edenai_route(fake_edenai)
    breaker.breaker_record(route_id=route.pk, failure=True)
    caption = chain_caption(image, make_chain(project, [route]))

    assert caption_execute(caption_id=caption.pk) == "deferred"

    caption.refresh_from_db()
    assert caption.status == Caption.Status.PENDING and caption.error == ""
    assert fake_edenai.requests == []
    assert broker.messages("api") == [("routing.tasks.caption_image", {"caption_id": caption.pk})]


# --- budget ---------------------------------------------------------------------------------


def test_budget_cap_is_never_exceeded_with_many_calls_in_flight(project, fake_edenai):
    fake_edenai.latency_ms = 50
    fake_edenai.set_default(Reply.success(cost="0.0004"))
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.0005"))
    chain = make_chain(project, [route])
    ImageFactory.create_batch(30, project=project)
    run = run_launch(
        project=project,
        user=None,
        kind=CaptionRun.Kind.CHAIN,
        chain=chain,
        selection=ImageSelection(),
        budget_usd=Decimal("0.005"),
    )
    ids = list(run.captions.values_list("id", flat=True))

    outcomes = run_in_threads(lambda cid: caption_execute(caption_id=cid), ids, workers=8)

    run.refresh_from_db()
    billed = ModelCall.objects.filter(run=run, status="succeeded")
    assert run.status == CaptionRun.Status.BUDGET
    assert run.spent_usd <= run.budget_usd
    assert run.spent_usd == sum(c.cost_usd for c in billed)
    assert run.reserved_usd == 0
    # Each call reserved 0.0005 of a 0.005 cap: ten reservations fit, later ones are refused.
    assert 10 <= billed.count() <= 12
    assert outcomes.count("budget") == len(ids) - billed.count()
    assert run.captions.filter(status="pending").count() == outcomes.count("budget")


def test_raising_the_cap_and_resuming_finishes_the_run(project, fake_edenai, broker):
    from routing.services.runs import run_resume, run_set_budget

    fake_edenai.set_default(Reply.success(cost="0.001"))
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.001"))
    chain = make_chain(project, [route])
    ImageFactory.create_batch(3, project=project)
    run = run_launch(
        project=project,
        user=None,
        kind=CaptionRun.Kind.CHAIN,
        chain=chain,
        selection=ImageSelection(),
        budget_usd=Decimal("0.001"),
    )
    ids = list(run.captions.order_by("id").values_list("id", flat=True))
    assert [caption_execute(caption_id=i) for i in ids] == ["succeeded", "budget", "budget"]

    run_set_budget(run=run, budget_usd=Decimal("0.01"))
    broker.clear()
    assert run_resume(run=run) == 2
    assert {m[1]["caption_id"] for m in broker.messages("api")} == set(ids[1:])
    assert [caption_execute(caption_id=i) for i in ids[1:]] == ["succeeded", "succeeded"]
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.FINISHED and run.spent_usd == Decimal("0.003")


# --- cache and at-most-once -----------------------------------------------------------------


def test_identical_request_reuses_the_cached_result(project, image, fake_edenai):
    fake_edenai.script([Reply.success("A lighthouse at dusk.", cost="0.002")])
    route = edenai_route(fake_edenai)
    first = chain_caption(image, make_chain(project, [route], name="a"))
    second = chain_caption(image, make_chain(project, [route], name="b", is_default=False))

    assert caption_execute(caption_id=first.pk) == "succeeded"
    assert caption_execute(caption_id=second.pk) == "succeeded"

    assert len(fake_edenai.requests) == 1
    second.refresh_from_db()
    assert second.text == "A lighthouse at dusk." and second.cost_usd == 0
    [cached] = second.calls.all()
    assert (cached.status, cached.cost_usd, cached.cost_source) == ("cached", 0, "cache")
    assert cached.cached_from == first.calls.get()


def test_a_different_prompt_is_not_a_cache_hit(project, image, fake_edenai):
    route = edenai_route(fake_edenai)
    chain = make_chain(project, [route])
    caption_execute(caption_id=chain_caption(image, chain, prompt="Describe.").pk)
    caption_execute(caption_id=chain_caption(image, chain, prompt="What is shown?").pk)
    assert len(fake_edenai.requests) == 2


def test_same_caption_run_twice_at_once_calls_the_vendor_once(project, image, fake_edenai):
    fake_edenai.latency_ms = 300
    route = edenai_route(fake_edenai)
    caption = chain_caption(image, make_chain(project, [route]))
    barrier = threading.Barrier(4)

    def deliver(_):
        barrier.wait()
        return caption_execute(caption_id=caption.pk)

    outcomes = run_in_threads(deliver, range(4), workers=4)

    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "succeeded"]
    assert len(fake_edenai.requests) == 1
    assert ModelCall.objects.filter(caption=caption).count() == 1


def test_identical_requests_in_flight_together_are_paid_once(project, fake_edenai):
    """Two runs ask the same route about the same image at the same moment: one call is paid,
    the other waits for it and reuses the answer."""
    fake_edenai.latency_ms = 400
    route = edenai_route(fake_edenai)
    image = ImageFactory(project=project)
    captions = [
        chain_caption(image, make_chain(project, [route], name=f"c{i}", is_default=False))
        for i in range(3)
    ]
    barrier = threading.Barrier(3)

    def deliver(caption):
        barrier.wait()
        return caption_execute(caption_id=caption.pk)

    assert run_in_threads(deliver, captions, workers=3) == ["succeeded"] * 3
    assert len(fake_edenai.requests) == 1
    statuses = sorted(ModelCall.objects.values_list("status", flat=True))
    assert statuses == ["cached", "cached", "succeeded"]


def test_a_live_caption_cannot_be_created_twice_for_one_request(project, image, fake_edenai):
    from django.db import IntegrityError, transaction

    route = edenai_route(fake_edenai)
    chain = make_chain(project, [route])
    chain_caption(image, chain)
    with pytest.raises(IntegrityError), transaction.atomic():
        chain_caption(image, chain)


def test_images_become_captioned_only_once_their_caption_succeeds(project, fake_edenai):
    fake_edenai.script(["401"])
    route = edenai_route(fake_edenai)
    image = ImageFactory(project=project)
    caption_execute(caption_id=chain_caption(image, make_chain(project, [route])).pk)
    image.refresh_from_db()
    assert image.status == Image.Status.NEW
