"""One caption walking its chain against fake vendors over real HTTP: served route, attempt rows,
triggers, costs, retries with Retry-After, fallbacks, the chain deadline."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from labeling.models import Image
from routing.fakes import Reply
from routing.models import Caption, ModelCall
from routing.services.cache import request_key
from routing.services.execute import caption_execute
from tests.routing.conftest import edenai_route, make_chain

pytestmark = pytest.mark.django_db(transaction=True)


def chain_caption(image, chain, *, prompt="Describe this image.", params=None) -> Caption:
    params = params or {}
    return Caption.objects.create(
        image=image,
        chain=chain,
        prompt=prompt,
        params=params,
        request_key=request_key(
            image_id=image.pk,
            chain_id=chain.pk,
            route_id=None,
            task="caption",
            prompt=prompt,
            params=params,
        ),
    )


def calls_of(caption):
    return list(caption.calls.order_by("attempt"))


def test_success_records_served_route_text_cost_and_one_initial_call(project, image, fake_edenai):
    fake_edenai.script([Reply.success("A red bicycle leaning on a wall.", cost="0.00042")])
    route = edenai_route(fake_edenai, name="gpt4o")
    caption = chain_caption(image, make_chain(project, [route]))

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    caption.refresh_from_db()
    assert caption.status == Caption.Status.SUCCEEDED
    assert caption.text == "A red bicycle leaning on a wall."
    assert caption.route == route
    assert caption.model_name == "openai/gpt-4o"
    assert caption.cost_usd == Decimal("0.00042")
    [call] = calls_of(caption)
    assert (call.route, call.attempt, call.trigger, call.status) == (
        route,
        1,
        "initial",
        "succeeded",
    )
    assert call.cost_usd == Decimal("0.00042") and call.cost_source == "provider"
    assert call.request_id.startswith("chatcmpl-")
    assert call.latency_ms is not None and call.finished_at >= call.started_at
    assert call.text == "A red bicycle leaning on a wall."
    # The vendor got the prompt and the image as a data URL.
    [request] = fake_edenai.requests
    content = request.json["messages"][0]["content"]
    assert any(part.get("text") == "Describe this image." for part in content)
    assert any(
        part.get("image_url", {}).get("url", "").startswith("data:image/png;base64,")
        for part in content
    )
    image.refresh_from_db()
    assert image.status == Image.Status.CAPTIONED


def test_server_error_is_retried_on_the_same_route(project, image, fake_edenai):
    fake_edenai.script(["500", Reply.success("A cat.")])
    route = edenai_route(fake_edenai)
    caption = chain_caption(image, make_chain(project, [route]))

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    first, second = calls_of(caption)
    assert (first.trigger, first.status, first.error_class, first.http_status) == (
        "initial",
        "failed",
        "server_error",
        500,
    )
    assert (second.trigger, second.route_attempt, second.status) == ("retry", 2, "succeeded")
    assert first.cost_usd is None and first.cost_source == "none"


def test_rate_limit_waits_for_retry_after(project, image, fake_edenai):
    fake_edenai.script([Reply.rate_limited(retry_after="1"), Reply.success("A dog.")])
    route = edenai_route(fake_edenai)
    caption = chain_caption(image, make_chain(project, [route]))

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    limited, ok = calls_of(caption)
    assert (limited.error_class, limited.http_status, ok.trigger) == ("rate_limited", 429, "retry")
    first, second = fake_edenai.requests
    assert second.received_at - first.received_at >= 1.0


def test_out_of_credits_falls_back_at_once(project, image, fake_edenai, fake_edenai_b):
    fake_edenai.script(["402"], default="402")
    fake_edenai_b.script([Reply.success("A boat on a lake.", cost="0.001")])
    primary = edenai_route(fake_edenai, name="primary")
    backup = edenai_route(fake_edenai_b, name="backup")
    caption = chain_caption(image, make_chain(project, [primary, backup]))

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    caption.refresh_from_db()
    assert caption.route == backup and caption.text == "A boat on a lake."
    first, second = calls_of(caption)
    assert (first.route, first.error_class, first.http_status) == (primary, "out_of_credits", 402)
    assert (second.route, second.trigger) == (backup, "fallback:out_of_credits")
    assert len(fake_edenai.requests) == 1  # a 402 is never retried


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply.malformed_json(), "malformed"),
        (Reply.empty(), "malformed"),
        (Reply.refusal(), "malformed"),
        (Reply.provider_fail(), "server_error"),
    ],
)
def test_bad_answers_fall_back_like_errors(
    project, image, fake_edenai, fake_edenai_b, reply, reason
):
    fake_edenai.script([reply], default=reply)
    fake_edenai_b.script([Reply.success("Two apples.")])
    primary = edenai_route(fake_edenai, max_attempts=1)
    backup = edenai_route(fake_edenai_b)
    caption = chain_caption(image, make_chain(project, [primary, backup]))

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    first, second = calls_of(caption)
    assert first.status == "failed" and first.error_class == reason
    assert second.trigger == f"fallback:{reason}" and second.route == backup
    caption.refresh_from_db()
    assert caption.text == "Two apples."


def test_every_route_failing_keeps_the_last_error(project, image, fake_edenai, fake_edenai_b):
    fake_edenai.script([], default="500")
    fake_edenai_b.script([], default="401")
    primary = edenai_route(fake_edenai, name="flaky", max_attempts=2)
    backup = edenai_route(fake_edenai_b, name="nokey")
    caption = chain_caption(image, make_chain(project, [primary, backup]))

    assert caption_execute(caption_id=caption.pk) == "failed"

    caption.refresh_from_db()
    assert caption.status == Caption.Status.FAILED
    assert caption.error.startswith("nokey: auth_error:")
    assert [c.trigger for c in calls_of(caption)] == ["initial", "retry", "fallback:server_error"]


def test_chain_deadline_cuts_hanging_attempts(project, image, fake_edenai):
    fake_edenai.script([], default=Reply.hang(30))
    route = edenai_route(fake_edenai, timeout_s=1.0, max_attempts=5)
    caption = chain_caption(image, make_chain(project, [route], deadline_s=2.5))

    started = time.monotonic()
    assert caption_execute(caption_id=caption.pk) == "failed"
    elapsed = time.monotonic() - started

    assert 2.3 <= elapsed < 3.5
    caption.refresh_from_db()
    assert "deadline 2.5s passed" in caption.error
    calls = calls_of(caption)
    assert all(c.error_class == "timeout" for c in calls)
    assert calls[0].timeout_s == 1.0
    # The last try only got what was left of the chain's 2.5 s.
    assert calls[-1].timeout_s < 1.0


def test_failed_call_cost_is_counted_when_the_vendor_bills_it(
    project, image, fake_edenai, fake_edenai_b
):
    fake_edenai.script([Reply.provider_fail(cost="0.0002")])
    fake_edenai_b.script([Reply.success(cost="0.0005")])
    primary = edenai_route(fake_edenai, max_attempts=1)
    backup = edenai_route(fake_edenai_b)
    caption = chain_caption(image, make_chain(project, [primary, backup]))

    caption_execute(caption_id=caption.pk)

    caption.refresh_from_db()
    first, second = calls_of(caption)
    assert first.cost_usd == Decimal("0.0002")
    assert caption.cost_usd == Decimal("0.0007")


def test_configured_price_when_the_vendor_reports_none(project, image, fake_edenai):
    fake_edenai.script([Reply.success(cost=None)])
    route = edenai_route(
        fake_edenai,
        usd_per_1k_input_tokens=Decimal("0.001"),
        usd_per_1k_output_tokens=Decimal("0.002"),
    )
    caption = chain_caption(image, make_chain(project, [route]))

    caption_execute(caption_id=caption.pk)

    [call] = calls_of(caption)
    # The fake reports 850 prompt tokens; cost computed from the route's token prices.
    assert call.cost_source == "computed"
    assert call.cost_usd > Decimal("0.00085")


def test_empty_chain_fails_with_a_clear_error(project, image):
    chain = make_chain(project, [])
    caption = chain_caption(image, chain)

    assert caption_execute(caption_id=caption.pk) == "failed"
    caption.refresh_from_db()
    assert "no enabled route" in caption.error


def test_a_caption_that_is_not_pending_is_left_alone(project, image, fake_edenai):
    route = edenai_route(fake_edenai)
    caption = chain_caption(image, make_chain(project, [route]))
    Caption.objects.filter(pk=caption.pk).update(status=Caption.Status.SUCCEEDED, text="done")

    assert caption_execute(caption_id=caption.pk) == "skipped"
    assert fake_edenai.requests == []
    assert not ModelCall.objects.exists()
