"""Shared helpers: refusals, cleaning, JSON schema, Retry-After, redaction, the interface rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from routing.providers import (
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    PermanentError,
    ProviderError,
    get_provider,
)
from routing.providers.http import parse_retry_after, retry_after_from_text
from routing.providers.output import clean_text, excerpt, finish_text, is_refusal, parse_json_output


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I’m sorry, I cannot describe this image.",
        "Sorry, I can't assist with that request.",
        "I cannot identify people in images.",
        "I can't help with identifying this person.",
        "I am unable to describe this image.",
        "As an AI, I cannot see images.",
        "Unfortunately, I can't provide a description.",
        '"I apologize"'.replace("I apologize", "I'm sorry, I can't do that"),
    ],
)
def test_refusals_are_recognised(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "a sign that reads I'm sorry on a brick wall",
        "A man holding a card saying sorry.",
        "Icons of a camera and a phone",
        "I-beam steel girders stacked in a yard",
        "Two people at a cannery",
    ],
)
def test_captions_mentioning_sorry_are_not_refusals(text):
    assert not is_refusal(text)


def test_clean_text_trims_whitespace_and_wrapping_quotes():
    assert clean_text('  "a  cat\t on a mat"  ') == "a cat on a mat"
    assert clean_text("line one\n\n\n\nline two\r\n") == "line one\n\nline two"
    assert clean_text('he said "hi" to "her"') == 'he said "hi" to "her"'


def test_json_output_with_code_fence_and_schema():
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}

    assert parse_json_output('```json\n{"n": 3}\n```', schema) == {"n": 3}
    with pytest.raises(MalformedOutput, match="at n"):
        parse_json_output('{"n": "three"}', schema)


def test_an_invalid_schema_is_a_permanent_configuration_error():
    with pytest.raises(PermanentError, match="invalid JSON schema"):
        parse_json_output("{}", {"type": "no-such-type"})


def test_finish_text_rejects_empty_and_whitespace():
    request = CaptionRequest(image=b"x")
    with pytest.raises(MalformedOutput) as info:
        finish_text("  \n ", request)
    assert info.value.reason == "empty"


def test_retry_after_seconds_and_http_date():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("120") == 120
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Tue, 01 Dec 2026 12:00:45 GMT", now=now) == 45
    assert parse_retry_after("Tue, 01 Dec 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert retry_after_from_text("Request was throttled. Expected available in 1 second.") == 1


def test_excerpt_redacts_secrets_and_inline_images_and_truncates():
    raw = 'key=sk-abcdef123 image="data:image/png;base64,' + "A" * 5000 + '"' + "x" * 5000

    text = excerpt(raw, ["sk-abcdef123"], limit=300)

    assert "sk-abcdef123" not in text
    assert "[redacted]" in text
    assert "AAAAAAAAAAAAAAAAAAAA" not in text
    assert len(text) <= 300


def test_requests_validate_their_inputs():
    with pytest.raises(ValueError, match="image"):
        CaptionRequest()
    with pytest.raises(ValueError, match="question"):
        CaptionRequest(image=b"x", task="question")
    with pytest.raises(ValueError, match="json_schema"):
        CaptionRequest(image=b"x", task="json")
    request = CaptionRequest(image=b"\x89PNG" * 1000, params={"temperature": 0.2})
    with pytest.raises(TypeError):
        request.params["temperature"] = 1.0  # type: ignore[index]
    assert "4000 bytes" in repr(request)


def test_results_keep_cost_and_source_consistent():
    with pytest.raises(ValueError):
        CaptionResult(
            text="a",
            served_model="m",
            request_id=None,
            latency_ms=1,
            cost_usd=None,
            cost_source="provider",
        )
    with pytest.raises(ValueError):
        CaptionResult(
            text="a",
            served_model="m",
            request_id=None,
            latency_ms=1,
            cost_usd=Decimal(1),
            cost_source="none",
        )


def test_error_classes_are_stable_strings():
    from routing.providers import base

    classes = {
        cls.__name__: cls.error_class
        for cls in vars(base).values()
        if isinstance(cls, type) and issubclass(cls, ProviderError)
    }
    assert classes == {
        "ProviderError": "provider_error",
        "TransientError": "transient",
        "ProviderTimeout": "timeout",
        "ProviderConnectionError": "connection_error",
        "ServerError": "server_error",
        "RateLimited": "rate_limited",
        "PredictionAborted": "aborted",
        "PredictionLost": "prediction_lost",
        "PermanentError": "permanent",
        "AuthError": "auth_error",
        "BadRequest": "bad_request",
        "OutOfCredits": "out_of_credits",
        "WeightsUnavailable": "weights_unavailable",
        "MalformedOutput": "malformed",
    }


def test_registry_knows_every_route_kind_and_rejects_others():
    for kind, config in [
        ("edenai", {}),
        ("edenai_v2", {}),
        ("replicate", {}),
        ("ollama", {}),
        ("local", {"model": "Salesforce/blip2-opt-2.7b"}),
    ]:
        assert get_provider(kind, config).kind == kind
    with pytest.raises(ValueError, match="unknown provider kind"):
        get_provider("openai", {})


def test_importing_the_providers_does_not_import_torch_or_django():
    import subprocess
    import sys

    code = (
        "import sys, routing.providers as p\n"
        "from routing.providers import edenai, replicate, ollama, local\n"
        "p.get_provider('local', {'model': 'Salesforce/blip2-opt-2.7b'})\n"
        "bad = [m for m in ('torch', 'transformers', 'django') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""
