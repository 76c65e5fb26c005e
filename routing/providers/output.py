"""Shared post-processing of model output: cleaning, refusal detection, JSON-schema validation,
and the secret-free excerpts that go into the call log."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema

from routing.providers.base import (
    RAW_EXCERPT_CHARS,
    CaptionRequest,
    MalformedOutput,
    PermanentError,
)

DEFAULT_CAPTION_PROMPT = "Write one short, factual caption for this image."
JSON_INSTRUCTION = (
    "Reply with JSON only (no prose, no code fences) that validates against this JSON schema:"
)

# Refusals open the answer; a caption that merely contains "sorry" (a sign, a quote) is not one.
_REFUSAL_RE = re.compile(
    r"""^\W{0,3}(?:
        (?:i\s*(?:'|’)?\s*m|i\s+am)\s+(?:so\s+|very\s+)?sorry
      | sorry\b
      | (?:i|we)\s+(?:can\s*(?:'|’)?\s*t|cannot|can\s+not|won\s*(?:'|’)?\s*t|will\s+not|am\s+unable|
            (?:'|’)m\s+unable|m\s+unable|am\s+not\s+able|(?:'|’)m\s+not\s+able)\b
      | (?:i|we)\s+(?:do\s+not|don\s*(?:'|’)?\s*t)\s+feel\s+comfortable
      | as\s+an\s+ai\b
      | unfortunately,?\s+i\s+(?:can|am|'m|’m|cannot|won)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_FENCE_RE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_DATA_URL_RE = re.compile(r"data:([\w.+/-]+);base64,[A-Za-z0-9+/=\s]{16,}")
_LONG_B64_RE = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
_SPACES_RE = re.compile(r"[ \t\f\v\u00a0]+")


def clean_text(text: str) -> str:
    """Trim, collapse runs of spaces, drop blank-line runs and stray wrapping quotes."""
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    cleaned = "\n".join(out).strip()
    if (
        len(cleaned) >= 2
        and cleaned[0] == cleaned[-1]
        and cleaned[0] in "\"'"
        and (cleaned.count(cleaned[0]) == 2)
    ):
        cleaned = cleaned[1:-1].strip()
    return cleaned


def is_refusal(text: str) -> bool:
    """True when the answer opens like a refusal ("I'm sorry, I can't help with that")."""
    return bool(_REFUSAL_RE.match(text.strip()))


def strip_code_fence(text: str) -> str:
    match = _FENCE_RE.match(text.strip())
    return match.group(1).strip() if match else text.strip()


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ``PermanentError`` for a schema that is not itself valid JSON Schema."""
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        raise PermanentError(f"invalid JSON schema in the route or project: {exc.message}") from exc


def parse_json_output(text: str, schema: Mapping[str, Any], *, raw_excerpt: str = "") -> Any:
    """Parse model output as JSON and validate it; ``MalformedOutput(reason="schema")`` if not."""
    schema = json.loads(json.dumps(dict(schema)))  # plain dicts all the way down
    check_schema(schema)
    body = strip_code_fence(text)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedOutput(
            f"output is not valid JSON: {exc}", reason="schema", raw_excerpt=raw_excerpt
        ) from exc
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise MalformedOutput(
            f"output fails the JSON schema at {where}: {first.message[:300]}",
            reason="schema",
            raw_excerpt=raw_excerpt,
        )
    return data


def finish_text(
    text: str | None,
    request: CaptionRequest,
    *,
    raw_excerpt: str = "",
    request_id: str | None = None,
) -> tuple[str, Any]:
    """Clean the model's text and reject unusable answers. Returns ``(text, data)``; ``data`` is the
    parsed JSON for ``json`` tasks, else None."""
    cleaned = clean_text(text or "")
    common: dict[str, Any] = {"raw_excerpt": raw_excerpt, "request_id": request_id}
    if not cleaned:
        raise MalformedOutput("the model returned an empty output", reason="empty", **common)
    if is_refusal(cleaned):
        raise MalformedOutput(f"the model refused: {cleaned[:200]}", reason="refusal", **common)
    if request.task == "json":
        assert request.json_schema is not None  # enforced by CaptionRequest
        try:
            data = parse_json_output(cleaned, request.json_schema, raw_excerpt=raw_excerpt)
        except MalformedOutput as exc:
            exc.request_id = request_id
            raise
        return json.dumps(data, ensure_ascii=False, sort_keys=True), data
    return cleaned, None


def instruction_for(
    request: CaptionRequest, *, default_prompt: str = DEFAULT_CAPTION_PROMPT
) -> str:
    """The text prompt for chat-style models (Eden AI v3, Ollama, LLaVA)."""
    prompt = request.prompt.strip()
    if request.task == "caption":
        return prompt or default_prompt
    if request.task == "question":
        return prompt
    schema = json.dumps(dict(request.json_schema or {}), sort_keys=True)
    return f"{prompt or 'Describe this image.'}\n\n{JSON_INSTRUCTION}\n{schema}"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets and inline image data from text that goes into logs or error messages."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _DATA_URL_RE.sub(lambda m: f"data:{m.group(1)};base64,[image data]", text)
    return _LONG_B64_RE.sub("[base64 data]", text)


def excerpt(
    raw: str | bytes, secrets: Iterable[str | None] = (), limit: int = RAW_EXCERPT_CHARS
) -> str:
    """A truncated, redacted piece of a raw vendor response for the call log."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    text = redact(raw, secrets)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def to_decimal(value: object) -> Decimal | None:
    """A vendor cost (number or decimal string) as a Decimal; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not result.is_finite() or result < 0:
        return None
    return result


def usd(value: Decimal) -> Decimal:
    """Round a computed cost to 1e-8 USD, the precision the call log stores."""
    return value.quantize(Decimal("0.00000001"))
