"""Eden AI v3 and v2 clients against the fake Eden AI server over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal

import pytest

from routing.fakes import FakeEdenAI, Reply
from routing.providers import (
    AuthError,
    BadRequest,
    CaptionRequest,
    MalformedOutput,
    OutOfCredits,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    get_provider,
)
from tests.routing.providers.conftest import API_KEY

SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string"}, "objects": {"type": "array"}},
    "required": ["caption", "objects"],
    "additionalProperties": False,
}


def v3(fake: FakeEdenAI, **config: object):
    return get_provider(
        "edenai", {"base_url": fake.url, "api_key": API_KEY, "model": "openai/gpt-4o", **config}
    )


def v2(fake: FakeEdenAI, **config: object):
    return get_provider("edenai_v2", {"base_url": fake.url, "api_key": API_KEY, **config})


def ask(png: bytes, **kwargs: object) -> CaptionRequest:
    kwargs.setdefault("timeout_s", 5.0)
    return CaptionRequest(image=png, mime_type="image/png", **kwargs)  # type: ignore[arg-type]


# --- v3 success ------------------------------------------------------------------------------


def test_v3_caption_sends_the_image_as_a_data_url_and_reports_provider_cost(fake_edenai, png):
    fake_edenai.script([Reply.success("A red square on a white page.", cost="0.00123")])

    result = v3(fake_edenai).caption(
        ask(png, prompt="Describe it.", params={"max_new_tokens": 40, "temperature": 0.2})
    )

    assert result.text == "A red square on a white page."
    assert result.served_model == "openai/gpt-4o"
    assert result.request_id and result.request_id.startswith("chatcmpl-")
    assert result.cost_usd == Decimal("0.00123")
    assert result.cost_source == "provider"
    assert result.usage["prompt_tokens"] == 850
    assert 0 <= result.latency_ms < 5000
    sent = fake_edenai.requests[-1]
    assert sent.path == "/v3/chat/completions"
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    body = sent.json
    assert body["model"] == "openai/gpt-4o"
    assert body["stream"] is False
    assert body["max_tokens"] == 40 and body["temperature"] == 0.2
    text_part, image_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Describe it."}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png


def test_v3_sends_an_image_url_as_is_and_the_configured_fallbacks(fake_edenai):
    provider = v3(fake_edenai, fallbacks=["google/gemini-2.5-flash"])

    provider.caption(CaptionRequest(image_url="https://example.org/cat.jpg", timeout_s=5))

    body = fake_edenai.requests[-1].json
    assert body["messages"][0]["content"][1]["image_url"]["url"] == "https://example.org/cat.jpg"
    assert body["fallbacks"] == ["google/gemini-2.5-flash"]


def test_v3_served_model_is_what_the_response_says(fake_edenai, png):
    fake_edenai.script([Reply.success("a cat", served_model="google/gemini-2.5-flash")])

    result = v3(fake_edenai, fallbacks=["google/gemini-2.5-flash"]).caption(ask(png))

    assert result.served_model == "google/gemini-2.5-flash"


def test_v3_cost_is_computed_from_tokens_when_the_response_has_none(fake_edenai, png):
    fake_edenai.script([Reply.success("one two three", cost=None)] * 2)

    priced = v3(fake_edenai, input_usd_per_mtok="2.50", output_usd_per_mtok="10").caption(ask(png))
    unpriced = v3(fake_edenai).caption(ask(png))

    # 850 prompt tokens x $2.50/M + 4 completion tokens x $10/M
    assert priced.cost_usd == Decimal("0.002165")
    assert priced.cost_source == "computed"
    assert unpriced.cost_usd is None and unpriced.cost_source == "none"


def test_v3_event_stream_answers_are_folded_into_one_caption(fake_edenai, png):
    fake_edenai.script([Reply.success("a dog on a beach", stream=True, cost="0.0002")])

    result = v3(fake_edenai).caption(ask(png))

    assert result.text == "a dog on a beach"
    assert result.cost_usd == Decimal("0.0002")


def test_v3_json_task_validates_against_the_schema(fake_edenai, png):
    answer = '```json\n{"caption": "a cat", "objects": ["cat", "table"]}\n```'
    fake_edenai.script([Reply.success(answer)])

    result = v3(fake_edenai).caption(
        ask(png, task="json", prompt="List what you see.", json_schema=SCHEMA)
    )

    assert result.data == {"caption": "a cat", "objects": ["cat", "table"]}
    assert json.loads(result.text) == result.data
    prompt = fake_edenai.requests[-1].json["messages"][0]["content"][0]["text"]
    assert "List what you see." in prompt and '"required": ["caption", "objects"]' in prompt


def test_v3_json_failing_the_schema_is_malformed(fake_edenai, png):
    fake_edenai.script([Reply.success('{"caption": "a cat"}', cost="0.001")])

    with pytest.raises(MalformedOutput) as info:
        v3(fake_edenai).caption(ask(png, task="json", json_schema=SCHEMA))

    assert info.value.reason == "schema"
    assert info.value.error_class == "malformed"
    assert "objects" in str(info.value)
    assert info.value.cost_usd == Decimal("0.001")  # the vendor still charged for it


def test_v3_prose_instead_of_json_is_malformed(fake_edenai, png):
    fake_edenai.script([Reply.success("Here is a cat.")])

    with pytest.raises(MalformedOutput) as info:
        v3(fake_edenai).caption(ask(png, task="json", json_schema=SCHEMA))

    assert info.value.reason == "schema"


# --- v3 failures -----------------------------------------------------------------------------


def test_v3_429_is_rate_limited_with_retry_after_seconds(fake_edenai, png):
    fake_edenai.script([Reply.rate_limited(retry_after="7")])

    with pytest.raises(RateLimited) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.retry_after_s == 7
    assert info.value.http_status == 429
    assert info.value.retryable
    assert "Rate limit exceeded" in str(info.value)


def test_v3_429_retry_after_as_an_http_date(fake_edenai, png):
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    fake_edenai.script([Reply.rate_limited(retry_after=when)])

    with pytest.raises(RateLimited) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.retry_after_s is not None
    assert 25 <= info.value.retry_after_s <= 31


def test_v3_429_without_retry_after(fake_edenai, png):
    fake_edenai.script([Reply.rate_limited(retry_after=None)])

    with pytest.raises(RateLimited) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.retry_after_s is None


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (500, ServerError, True),
        (503, ServerError, True),
        (402, OutOfCredits, False),
        (400, BadRequest, False),
        (422, BadRequest, False),
    ],
)
def test_v3_http_errors_map_to_typed_errors(fake_edenai, png, status, error, retryable):
    fake_edenai.script([Reply.error(status)])

    with pytest.raises(error) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.http_status == status
    assert info.value.retryable is retryable
    assert info.value.raw_excerpt


def test_v3_402_says_out_of_credits(fake_edenai, png):
    fake_edenai.script(["402"])

    with pytest.raises(OutOfCredits, match="Insufficient credits") as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.error_class == "out_of_credits"


def test_v3_wrong_key_is_an_auth_error_that_does_not_leak_the_key(fake_edenai, png):
    provider = get_provider(
        "edenai", {"base_url": fake_edenai.url, "api_key": "sk-wrong-secret-123456"}
    )

    with pytest.raises(AuthError) as info:
        provider.caption(ask(png))

    assert info.value.http_status == 401
    assert "sk-wrong-secret-123456" not in str(info.value)
    assert "sk-wrong-secret-123456" not in info.value.raw_excerpt
    assert fake_edenai.requests[-1].header("authorization") == "Bearer sk-wrong-secret-123456"


def test_v3_secret_echoed_by_the_vendor_is_redacted(fake_edenai, png):
    fake_edenai.script([Reply.error(500, message=f"upstream rejected key {API_KEY}")])

    with pytest.raises(ServerError) as info:
        v3(fake_edenai).caption(ask(png))

    assert API_KEY not in str(info.value)
    assert API_KEY not in info.value.raw_excerpt
    assert "[redacted]" in str(info.value)


def test_v3_hang_times_out_within_the_request_timeout(fake_edenai, png):
    fake_edenai.script([Reply.hang(seconds=30)])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout) as info:
        v3(fake_edenai).caption(ask(png, timeout_s=0.5))

    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.5
    assert info.value.error_class == "timeout"
    assert info.value.retryable


def test_v3_slow_answer_within_the_timeout_succeeds(fake_edenai, png):
    fake_edenai.script([Reply.success("slow but fine", latency_ms=300)])

    result = v3(fake_edenai).caption(ask(png, timeout_s=2))

    assert result.text == "slow but fine"
    assert result.latency_ms >= 290


def test_v3_malformed_json_body(fake_edenai, png):
    fake_edenai.script(["malformed"])

    with pytest.raises(MalformedOutput) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.reason == "unparseable"
    assert info.value.http_status == 200
    assert "chatcmpl-broken" in info.value.raw_excerpt


def test_v3_empty_output(fake_edenai, png):
    fake_edenai.script(["empty"])

    with pytest.raises(MalformedOutput) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.reason == "empty"
    assert info.value.request_id


def test_v3_refusal(fake_edenai, png):
    fake_edenai.script(["refusal"])

    with pytest.raises(MalformedOutput) as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.reason == "refusal"
    assert "sorry" in str(info.value).lower()


def test_v3_provider_failure_inside_a_200(fake_edenai, png):
    fake_edenai.script([Reply.provider_fail("Provider returned an error", cost="0.001")])

    with pytest.raises(ServerError, match="Provider returned an error") as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.cost_usd == Decimal("0.001")


def test_connection_refused_is_transient():
    with FakeEdenAI() as fake:
        url = fake.url  # the port is free again once the fake stops
    provider = get_provider("edenai", {"base_url": url, "api_key": API_KEY})

    with pytest.raises(ProviderConnectionError) as info:
        provider.caption(CaptionRequest(image=b"x", timeout_s=2))

    assert info.value.retryable
    assert API_KEY not in str(info.value)


def test_v3_base_url_may_include_the_version(fake_edenai, png):
    provider = get_provider("edenai", {"base_url": fake_edenai.url + "/v3/", "api_key": API_KEY})

    assert provider.caption(ask(png)).text


def test_v3_model_must_name_the_provider():
    with pytest.raises(ValueError, match="provider/model"):
        get_provider("edenai", {"model": "gpt-4o"})


# --- v2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["success", "sucess"])
def test_v2_accepts_both_spellings_of_success(fake_edenai, png, spelling):
    fake_edenai.script([Reply.success("two cats on a sofa", v2_status=spelling, cost="0.0005")])

    result = v2(fake_edenai, model="openai", settings={"openai": "gpt-4o-mini"}).caption(ask(png))

    assert result.text == "two cats on a sofa"
    assert result.served_model == "openai/gpt-4o-mini"
    assert result.cost_usd == Decimal("0.0005")
    assert result.cost_source == "provider"


def test_v2_uploads_the_image_as_multipart_with_providers_and_fallbacks(fake_edenai, png):
    provider = v2(fake_edenai, model="openai", fallback_providers=["google"])

    provider.caption(ask(png, task="question", prompt="How many cats?", params={"temperature": 0}))

    sent = fake_edenai.requests[-1]
    assert sent.path == "/v2/image/question_answer"
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    assert sent.form["providers"] == "openai"
    assert sent.form["fallback_providers"] == "google"
    assert sent.form["question"] == "How many cats?"
    assert sent.form["temperature"] == "0.0"
    filename, content_type, data = sent.files["file"]
    assert (filename, content_type, data) == ("image.png", "image/png", png)


def test_v2_caption_sends_no_question(fake_edenai, png):
    v2(fake_edenai).caption(ask(png))

    assert "question" not in fake_edenai.requests[-1].form


def test_v2_image_url_goes_as_json_file_url(fake_edenai):
    v2(fake_edenai, fallback_providers="google").caption(
        CaptionRequest(image_url="https://example.org/a.jpg", timeout_s=5)
    )

    body = fake_edenai.requests[-1].json
    assert body["file_url"] == "https://example.org/a.jpg"
    assert body["providers"] == "openai"
    assert body["fallback_providers"] == ["google"]
    assert body["response_as_dict"] is True


def test_v2_failed_provider_status_in_a_200_is_a_server_error(fake_edenai, png):
    fake_edenai.script([Reply.provider_fail("Provider is currently unavailable")])

    with pytest.raises(ServerError, match="Provider is currently unavailable") as info:
        v2(fake_edenai).caption(ask(png))

    assert info.value.http_status == 200
    assert info.value.retryable


def test_v2_answer_from_the_fallback_provider(fake_edenai, png):
    fake_edenai.script([Reply.provider_fail(fallback_succeeds=True, text="a bridge at night")])

    result = v2(fake_edenai, model="openai", fallback_providers=["google"]).caption(ask(png))

    assert result.text == "a bridge at night"
    assert result.served_model == "google"


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [("empty", MalformedOutput, "empty"), ("refusal", MalformedOutput, "refusal")],
)
def test_v2_unusable_answers(fake_edenai, png, reply, error, reason):
    fake_edenai.script([reply])

    with pytest.raises(error) as info:
        v2(fake_edenai).caption(ask(png))

    assert info.value.reason == reason


def test_v2_http_failures(fake_edenai, png):
    fake_edenai.script([Reply.rate_limited(retry_after="3"), "402", "500", "malformed"])
    provider = v2(fake_edenai)

    with pytest.raises(RateLimited) as limited:
        provider.caption(ask(png))
    with pytest.raises(OutOfCredits):
        provider.caption(ask(png))
    with pytest.raises(ServerError):
        provider.caption(ask(png))
    with pytest.raises(MalformedOutput) as malformed:
        provider.caption(ask(png))

    assert limited.value.retry_after_s == 3
    assert malformed.value.reason == "unparseable"


def test_v2_hang_times_out(fake_edenai, png):
    fake_edenai.script(["hang"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        v2(fake_edenai).caption(ask(png, timeout_s=0.5))

    assert time.monotonic() - started < 1.5


# --- answers cut short --------------------------------------------------------------------------


def test_v3_stream_that_ends_in_an_error_frame_is_an_error_not_a_caption(fake_edenai, png):
    """Half a caption followed by the vendor's error is not a caption."""
    fake_edenai.script([Reply.stream_error(text="a photo of a", message="Upstream timed out")])

    with pytest.raises(ServerError, match="Upstream timed out") as info:
        v3(fake_edenai).caption(ask(png))

    assert info.value.retryable
    assert "mid-answer (after 12 characters)" in str(info.value)
    assert info.value.cost_usd == Decimal("0.00042")


@pytest.mark.parametrize("stream", [False, True])
def test_v3_answer_cut_at_the_token_limit_is_marked_truncated(fake_edenai, png, stream):
    fake_edenai.script(
        [
            Reply.success("a red square on a", finish_reason="length", stream=stream),
            Reply.success("a red square", stream=stream),
        ]
    )
    provider = v3(fake_edenai)

    cut = provider.caption(ask(png, params={"max_new_tokens": 5}))
    whole = provider.caption(ask(png))

    assert cut.text == "a red square on a" and cut.truncated
    assert not whole.truncated


def test_a_body_dripping_one_byte_at_a_time_stops_at_the_timeout(fake_edenai, png):
    """requests' read timeout is per socket read, so a trickle would never trip it."""
    fake_edenai.script([Reply.success(drip_ms=50), Reply.success("next")])
    provider = v3(fake_edenai)
    started = time.monotonic()

    with pytest.raises(ProviderTimeout, match="still arriving"):
        provider.caption(ask(png, timeout_s=1.0))

    assert time.monotonic() - started < 1.5
    assert provider.caption(ask(png)).text == "next"  # the half-read connection is not reused


def test_v2_dripping_body_stops_at_the_timeout_too(fake_edenai, png):
    fake_edenai.script([Reply.success(drip_ms=50)])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        v2(fake_edenai).caption(ask(png, timeout_s=0.8))

    assert time.monotonic() - started < 1.3


def test_v3_refuses_a_bmp_for_an_openai_model_as_openai_does(fake_edenai):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, format="BMP")

    with pytest.raises(BadRequest, match="does not support image format 'bmp'"):
        v3(fake_edenai).caption(CaptionRequest(image=buffer.getvalue(), mime_type="image/bmp"))
