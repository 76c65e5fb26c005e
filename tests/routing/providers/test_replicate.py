"""Replicate BLIP-2 client against the fake Replicate server over real HTTP."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from routing.fakes import Reply
from routing.providers import (
    AuthError,
    CaptionRequest,
    MalformedOutput,
    OutOfCredits,
    ProviderTimeout,
    RateLimited,
    ServerError,
    get_provider,
)
from routing.providers.replicate import BLIP2_VERSION
from tests.routing.providers.conftest import API_KEY


def blip2(fake, **config: object):
    return get_provider(
        "replicate",
        {
            "base_url": fake.url,
            "api_key": API_KEY,
            "usd_per_second": "0.000725",
            "poll_interval_s": 0.05,
            **config,
        },
    )


def ask(png: bytes, **kwargs: object) -> CaptionRequest:
    kwargs.setdefault("timeout_s", 5.0)
    return CaptionRequest(image=png, mime_type="image/png", **kwargs)  # type: ignore[arg-type]


def test_caption_in_sync_mode_costs_predict_time_times_hardware_price(fake_replicate, png):
    fake_replicate.script([Reply.success("a red square", predict_time=2.0)])

    result = blip2(fake_replicate).caption(ask(png, timeout_s=10))

    assert result.text == "a red square"
    assert result.cost_usd == Decimal("0.00145")  # 2.0 s x $0.000725/s
    assert result.cost_source == "computed"
    assert result.usage["predict_time_s"] == 2.0
    assert result.served_model.startswith("andreasjansson/blip-2:f677695e")
    assert result.request_id == next(iter(fake_replicate.predictions))
    sent = fake_replicate.requests[-1]
    assert sent.path == "/v1/predictions"
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    assert sent.header("prefer") == "wait=9"  # ends before our 10 s deadline
    assert sent.json["version"] == BLIP2_VERSION
    assert sent.json["input"]["caption"] is True
    assert sent.json["input"]["image"].startswith("data:image/png;base64,")
    assert "question" not in sent.json["input"]
    assert len(fake_replicate.requests) == 1  # no polling needed


def test_question_mode_sends_question_context_and_sampling(fake_replicate, png):
    request = ask(
        png,
        task="question",
        prompt="What colour is the square?",
        params={
            "context": "Question: is it a shape? Answer: yes",
            "use_nucleus_sampling": True,
            "temperature": 0.7,
        },
    )

    blip2(fake_replicate).caption(request)

    inputs = fake_replicate.requests[-1].json["input"]
    assert inputs["caption"] is False
    assert inputs["question"] == "What colour is the square?"
    assert inputs["context"] == "Question: is it a shape? Answer: yes"
    assert inputs["use_nucleus_sampling"] is True
    assert inputs["temperature"] == 0.7


def test_polls_until_a_terminal_status(fake_replicate, png):
    fake_replicate.script([Reply.success("a lighthouse", polls=3)])

    result = blip2(fake_replicate).caption(ask(png))

    assert result.text == "a lighthouse"
    gets = [r for r in fake_replicate.requests if r.method == "GET"]
    assert len(gets) == 4  # three "processing", then "succeeded"
    assert all(r.path == f"/v1/predictions/{result.request_id}" for r in gets)
    assert all(r.header("authorization") == f"Bearer {API_KEY}" for r in gets)


def test_a_prediction_slower_than_the_sync_wait_is_polled(fake_replicate, png):
    fake_replicate.script([Reply.success("slow", latency_ms=1300)])

    result = blip2(fake_replicate).caption(ask(png, timeout_s=2.2))  # Prefer: wait=1

    assert result.text == "slow"
    assert any(r.method == "GET" for r in fake_replicate.requests)


def test_stuck_prediction_is_canceled_at_the_deadline(fake_replicate, png):
    fake_replicate.script(["stuck"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout) as info:
        blip2(fake_replicate).caption(ask(png, timeout_s=1.0))

    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    prediction_id = info.value.request_id
    assert prediction_id in fake_replicate.canceled
    cancels = [r for r in fake_replicate.requests if r.path.endswith("/cancel")]
    assert [r.method for r in cancels] == ["POST"]
    assert cancels[0].header("authorization") == f"Bearer {API_KEY}"
    assert fake_replicate.predictions[prediction_id].status == "canceled"


def test_stuck_prediction_in_sync_mode_is_canceled_too(fake_replicate, png):
    fake_replicate.script(["stuck"])

    with pytest.raises(ProviderTimeout) as info:
        blip2(fake_replicate).caption(ask(png, timeout_s=2.5))  # Prefer: wait=1, then polls

    assert info.value.request_id in fake_replicate.canceled


def test_failed_prediction_is_a_server_error_and_still_costs(fake_replicate, png):
    fake_replicate.script([Reply.provider_fail("CUDA error: out of memory", polls=1)])

    with pytest.raises(ServerError, match="out of memory") as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.cost_usd == Decimal("0.00090625")  # 1.25 s were billed
    assert info.value.request_id in fake_replicate.predictions


def test_throttled_create_parses_retry_after(fake_replicate, png):
    fake_replicate.script(
        [Reply.rate_limited(retry_after="4"), Reply.rate_limited(retry_after=None)]
    )

    with pytest.raises(RateLimited) as with_header:
        blip2(fake_replicate).caption(ask(png))
    with pytest.raises(RateLimited) as body_only:
        blip2(fake_replicate).caption(ask(png))

    assert with_header.value.retry_after_s == 4
    assert body_only.value.retry_after_s == 30  # "Your rate limit resets in ~30s."


@pytest.mark.parametrize(("status", "error"), [(402, OutOfCredits), (500, ServerError)])
def test_http_errors(fake_replicate, png, status, error):
    fake_replicate.script([Reply.error(status)])

    with pytest.raises(error) as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.http_status == status


def test_402_carries_the_billing_message(fake_replicate, png):
    fake_replicate.script(["402"])

    with pytest.raises(OutOfCredits, match="Billing required"):
        blip2(fake_replicate).caption(ask(png))


def test_wrong_token_is_an_auth_error_without_the_token(fake_replicate, png):
    provider = get_provider(
        "replicate", {"base_url": fake_replicate.url, "api_key": "r8_wrong_token_abcdef"}
    )

    with pytest.raises(AuthError) as info:
        provider.caption(ask(png))

    assert "r8_wrong_token_abcdef" not in str(info.value) + info.value.raw_excerpt


def test_hang_on_create_times_out(fake_replicate, png):
    fake_replicate.script(["hang"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        blip2(fake_replicate).caption(ask(png, timeout_s=0.5))

    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("reply", "reason"), [("empty", "empty"), ("refusal", "refusal"), ("malformed", "unparseable")]
)
def test_unusable_answers_are_malformed(fake_replicate, png, reply, reason):
    fake_replicate.script([reply])

    with pytest.raises(MalformedOutput) as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.reason == reason


def test_without_a_hardware_price_the_cost_is_unknown(fake_replicate, png):
    provider = get_provider("replicate", {"base_url": fake_replicate.url, "api_key": API_KEY})

    result = provider.caption(ask(png))

    assert result.cost_usd is None and result.cost_source == "none"


def test_version_can_be_pinned_in_the_model_string(fake_replicate, png):
    provider = blip2(fake_replicate, model="someone/blip-3:abc123")

    result = provider.caption(ask(png))

    assert fake_replicate.requests[-1].json["version"] == "abc123"
    assert result.served_model.startswith("someone/blip-3")


def test_poll_urls_pointing_elsewhere_are_not_followed(fake_replicate, png):
    """The token is only ever sent to the configured base URL."""
    other = get_provider(
        "replicate",
        {"base_url": "http://localhost:1", "api_key": API_KEY, "poll_interval_s": 0.01},
    )
    prediction = {"id": "abc", "urls": {"get": fake_replicate.url + "/v1/predictions/abc"}}

    assert other._url(prediction, "get") == "http://localhost:1/v1/predictions/abc"
    assert other._url(prediction, "cancel") == "http://localhost:1/v1/predictions/abc/cancel"
