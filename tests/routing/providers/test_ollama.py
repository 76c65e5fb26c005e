"""Ollama client against the fake Ollama server over real HTTP."""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import pytest

from routing.fakes import Reply
from routing.providers import (
    BadRequest,
    CaptionRequest,
    MalformedOutput,
    ProviderTimeout,
    RateLimited,
    ServerError,
    get_provider,
)

SCHEMA = {"type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"]}


def llava(fake, **config: object):
    return get_provider("ollama", {"base_url": fake.url, "model": "llava:13b", **config})


def ask(png: bytes, **kwargs: object) -> CaptionRequest:
    kwargs.setdefault("timeout_s", 5.0)
    return CaptionRequest(image=png, mime_type="image/png", **kwargs)  # type: ignore[arg-type]


def test_generate_sends_raw_base64_without_streaming(fake_ollama, png):
    fake_ollama.script([Reply.success("A happy cartoon character.")])

    result = llava(fake_ollama, gpu_hour_usd="3.60").caption(
        ask(png, prompt="Describe it.", params={"max_new_tokens": 30, "temperature": 0.1})
    )

    assert result.text == "A happy cartoon character."
    assert result.served_model == "llava:13b"
    assert result.request_id is None
    # total_duration 0.251 s x $3.60/h
    assert result.cost_usd == Decimal("0.00025100")
    assert result.cost_source == "configured"
    assert result.usage["completion_tokens"] == 5
    body = fake_ollama.requests[-1].json
    assert body["model"] == "llava:13b"
    assert body["stream"] is False
    assert body["prompt"] == "Describe it."
    assert base64.b64decode(body["images"][0], validate=True) == png
    assert body["options"] == {"num_predict": 30, "temperature": 0.1}


def test_json_task_passes_the_schema_as_format(fake_ollama, png):
    fake_ollama.script([Reply.success('{"caption": "a cat"}')])

    result = llava(fake_ollama).caption(ask(png, task="json", json_schema=SCHEMA))

    assert result.data == {"caption": "a cat"}
    assert fake_ollama.requests[-1].json["format"] == SCHEMA
    assert result.cost_source == "none"


def test_a_failed_model_run_is_a_server_error(fake_ollama, png):
    fake_ollama.script([Reply.provider_fail("model runner has unexpectedly stopped"), "503"])
    provider = llava(fake_ollama)

    with pytest.raises(ServerError, match="unexpectedly stopped") as failed:
        provider.caption(ask(png))
    with pytest.raises(ServerError) as queue_full:
        provider.caption(ask(png))

    assert failed.value.http_status == 500 and failed.value.retryable
    assert queue_full.value.http_status == 503


def test_missing_model_is_a_bad_request(fake_ollama, png):
    fake_ollama.script([Reply.error(404)])

    with pytest.raises(BadRequest, match="try pulling it first") as info:
        llava(fake_ollama).caption(ask(png))

    assert info.value.http_status == 404
    assert not info.value.retryable


def test_failures(fake_ollama, png):
    fake_ollama.script(
        [Reply.rate_limited(retry_after="1"), "500", "malformed", "empty", "refusal"]
    )
    provider = llava(fake_ollama)

    with pytest.raises(RateLimited):
        provider.caption(ask(png))
    with pytest.raises(ServerError):
        provider.caption(ask(png))
    reasons = []
    for _ in range(3):
        with pytest.raises(MalformedOutput) as info:
            provider.caption(ask(png))
        reasons.append(info.value.reason)

    assert reasons == ["unparseable", "empty", "refusal"]


def test_hang_times_out(fake_ollama, png):
    fake_ollama.script(["hang"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        llava(fake_ollama).caption(ask(png, timeout_s=0.5))

    assert time.monotonic() - started < 1.5


def test_a_web_url_cannot_be_sent_to_ollama(fake_ollama):
    with pytest.raises(BadRequest, match="image bytes"):
        llava(fake_ollama).caption(CaptionRequest(image_url="https://example.org/a.jpg"))

    assert fake_ollama.requests == []


def test_cost_counts_the_answer_not_loading_the_model(fake_ollama, png):
    """The first call after Ollama starts loads the model for seconds; that is not this call's
    work (and ``total_duration`` includes it)."""
    provider = llava(fake_ollama, gpu_hour_usd="3.60")

    cold = provider.caption(ask(png))
    warm = provider.caption(ask(png))

    assert cold.usage["load_seconds"] == 2.0
    assert cold.cost_usd == warm.cost_usd == Decimal("0.00025100")


def test_an_answer_cut_at_num_predict_is_marked_truncated(fake_ollama, png):
    fake_ollama.script([Reply.success("a cat on a", finish_reason="length"), "success"])
    provider = llava(fake_ollama)

    assert provider.caption(ask(png, params={"max_new_tokens": 4})).truncated
    assert not provider.caption(ask(png)).truncated


def test_a_dripping_body_stops_at_the_timeout(fake_ollama, png):
    fake_ollama.script([Reply.success(drip_ms=40)])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        llava(fake_ollama).caption(ask(png, timeout_s=0.7))

    assert time.monotonic() - started < 1.2
