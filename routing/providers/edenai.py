"""Eden AI clients.

- ``EdenAIProvider`` (kind ``edenai``): v3 ``POST /v3/chat/completions``, OpenAI-style messages
  with an ``image_url`` part (a data URL or the image URL), model ``provider/model``. Extra config
  keys: ``fallbacks`` (list of up to 3 ``provider/model``), ``input_usd_per_mtok`` /
  ``output_usd_per_mtok`` (used only when the response carries no ``cost``), ``default_prompt``.
  An event stream that ends in an error frame is a ``ServerError`` even after partial text;
  ``finish_reason: "length"`` marks the result ``truncated``.
- ``EdenAIV2Provider`` (kind ``edenai_v2``, legacy): ``POST /v2/image/question_answer`` with
  ``providers`` (the configured ``model``, e.g. ``openai`` or ``openai/gpt-4o``) and
  ``fallback_providers`` (config key of the same name, at most 5). Failures can arrive inside an
  HTTP 200 as a per-provider ``status``; both ``success`` and the spec's ``sucess`` count.

Wire formats: ``shared/reference/providers.md`` §1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from math import inf
from typing import Any, Self

from routing.providers.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    CaptionRequest,
    CaptionResult,
    CostSource,
    MalformedOutput,
    Provider,
    ProviderCapabilities,
    ServerError,
)
from routing.providers.http import (
    Deadline,
    HttpClient,
    HttpResponse,
    data_url,
    decode_data_url,
    request_id_from_headers,
)
from routing.providers.output import finish_text, instruction_for, to_decimal, usd

EDENAI_BASE_URL = "https://api.edenai.run"
DEFAULT_V3_MODEL = "openai/gpt-4o"
DEFAULT_V2_PROVIDER = "openai"
SUCCESS_STATUSES = frozenset({"success", "sucess"})
MAX_V3_FALLBACKS = 3
MAX_V2_FALLBACKS = 5


V3_PARAMS = frozenset({"max_new_tokens", "temperature", "top_p", "seed"})
V2_PARAMS = frozenset({"max_new_tokens", "temperature"})
MB = 1024 * 1024
# Image limits per upstream vendor. Formats: OpenAI vision takes png/jpeg/gif/webp; Gemini
# png/jpeg/webp/heic/heif; Claude jpeg/png/gif/webp. Sizes come from Eden AI's former "Vision
# Capabilities" page (20 MB OpenAI/Google, 5 MB Anthropic); Claude refuses sides over 8000 px.
_V3_VENDOR_CAPABILITIES: Mapping[str, ProviderCapabilities] = {
    "openai": ProviderCapabilities(
        image_mime_types=frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"}),
        max_image_bytes=20 * MB,
        params=V3_PARAMS,
        param_ranges={"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "max_new_tokens": (1, inf)},
    ),
    "google": ProviderCapabilities(
        image_mime_types=frozenset({"image/png", "image/jpeg", "image/webp"}),
        max_image_bytes=20 * MB,
        params=V3_PARAMS,
        param_ranges={"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "max_new_tokens": (1, inf)},
    ),
    "anthropic": ProviderCapabilities(
        image_mime_types=frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"}),
        max_image_bytes=5 * MB,
        max_image_side_px=8000,
        params=V3_PARAMS,
        param_ranges={"temperature": (0.0, 1.0), "top_p": (0.0, 1.0), "max_new_tokens": (1, inf)},
    ),
}
# Any other vision model: the formats and the size every one of the above takes.
_V3_DEFAULT_CAPABILITIES = ProviderCapabilities(
    image_mime_types=frozenset({"image/png", "image/jpeg"}),
    max_image_bytes=5 * MB,
    params=V3_PARAMS,
    param_ranges={"temperature": (0.0, 1.0), "top_p": (0.0, 1.0), "max_new_tokens": (1, inf)},
)
# v2 ``file`` takes jpg/jpeg/png/tiff (OpenAPI pattern) and is answered by OpenAI or Google, neither
# of which documents TIFF, so TIFF is not offered; ranges from the v2 OpenAPI spec.
V2_CAPABILITIES = ProviderCapabilities(
    image_mime_types=frozenset({"image/jpeg", "image/png"}),
    params=V2_PARAMS,
    param_ranges={"temperature": (0.0, 1.0), "max_new_tokens": (1, 2048)},
)


def v3_model_capabilities(model: str) -> ProviderCapabilities:
    """What an Eden AI v3 ``provider/model`` accepts, by its upstream vendor."""
    return _V3_VENDOR_CAPABILITIES.get(model.split("/", 1)[0], _V3_DEFAULT_CAPABILITIES)


def _base_url(config: Mapping[str, Any]) -> str:
    """Accept the bare host or a URL that already ends in ``/v2`` or ``/v3``."""
    url = str(config.get("base_url") or EDENAI_BASE_URL).rstrip("/")
    for suffix in ("/v3", "/v2"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def _string_list(value: object, *, limit: int, what: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    names = tuple(str(item).strip() for item in items if str(item).strip())
    if len(names) > limit:
        raise ValueError(f"{what}: at most {limit} entries, got {len(names)}")
    return names


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class EdenAIProvider(Provider):
    """Eden AI v3 chat completions with a vision model."""

    kind = "edenai"

    def __init__(
        self,
        *,
        model: str = DEFAULT_V3_MODEL,
        api_key: str | None = None,
        base_url: str = EDENAI_BASE_URL,
        fallbacks: Sequence[str] = (),
        input_usd_per_mtok: Decimal | None = None,
        output_usd_per_mtok: Decimal | None = None,
        default_prompt: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(name=f"edenai:{model}")
        if "/" not in model:
            raise ValueError(f"Eden AI v3 model must be 'provider/model', got {model!r}")
        self.model = model
        self.fallbacks = tuple(fallbacks)
        if len(self.fallbacks) > MAX_V3_FALLBACKS:
            raise ValueError(f"Eden AI v3 allows at most {MAX_V3_FALLBACKS} fallbacks")
        self.input_usd_per_mtok = input_usd_per_mtok
        self.output_usd_per_mtok = output_usd_per_mtok
        self.default_prompt = default_prompt
        self.http = HttpClient(
            vendor="Eden AI",
            base_url=base_url,
            api_key=api_key,
            connect_timeout_s=connect_timeout_s,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(
            model=str(config.get("model") or DEFAULT_V3_MODEL),
            api_key=config.get("api_key") or None,
            base_url=_base_url(config),
            fallbacks=_string_list(
                config.get("fallbacks"), limit=MAX_V3_FALLBACKS, what="fallbacks"
            ),
            input_usd_per_mtok=to_decimal(config.get("input_usd_per_mtok")),
            output_usd_per_mtok=to_decimal(config.get("output_usd_per_mtok")),
            default_prompt=config.get("default_prompt") or None,
            connect_timeout_s=float(config.get("connect_timeout_s") or DEFAULT_CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self.http.close()

    @property
    def capabilities(self) -> ProviderCapabilities:
        """The model's vendor limits; with fallbacks, what every model in the list accepts."""
        caps = v3_model_capabilities(self.model)
        for fallback in self.fallbacks:
            caps = caps.intersect(v3_model_capabilities(fallback))
        return caps

    def build_body(self, request: CaptionRequest) -> dict[str, Any]:
        if request.image is not None:
            url = data_url(request.image, request.mime_type)
        else:
            url = str(request.image_url)
        kwargs = {"default_prompt": self.default_prompt} if self.default_prompt else {}
        content = [
            {"type": "text", "text": instruction_for(request, **kwargs)},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "stream": False,
        }
        params = request.params
        if "max_new_tokens" in params:
            body["max_tokens"] = int(params["max_new_tokens"])
        if "temperature" in params:
            body["temperature"] = float(params["temperature"])
        if "top_p" in params:
            body["top_p"] = float(params["top_p"])
        if "seed" in params:
            body["seed"] = int(params["seed"])
        if self.fallbacks:
            body["fallbacks"] = list(self.fallbacks)
        return body

    def caption(self, request: CaptionRequest) -> CaptionResult:
        deadline = Deadline(request.timeout_s)
        response = self.http.request(
            "POST",
            self.http.url("/v3/chat/completions"),
            deadline=deadline,
            json_body=self.build_body(request),
            headers={"x-edenai-metadata": "enabled"},
        )
        raw_excerpt = self.http.excerpt(response.body)
        if response.content_type == "text/event-stream":
            payload = _payload_from_sse(response, self.http)
        else:
            payload = self.http.json(response)
        if not isinstance(payload, dict):
            raise MalformedOutput(
                "Eden AI: response is not a JSON object",
                reason="unparseable",
                http_status=response.status,
                raw_excerpt=raw_excerpt,
            )
        request_id = _str_or_none(payload.get("id")) or _header_id(response)
        cost = to_decimal(payload.get("cost"))
        error = payload.get("error")
        choices = payload.get("choices")
        if error:  # also after partial text: a stream that ends in an error frame
            partial, _ = _first_choice(choices)
            when = f" mid-answer (after {len(partial)} characters)" if partial else ""
            raise ServerError(
                f"Eden AI: the provider failed{when}: {_error_message(error)}",
                http_status=response.status,
                request_id=request_id,
                raw_excerpt=raw_excerpt,
                cost_usd=cost,
                latency_ms=deadline.elapsed_ms(),
            )
        text, finish_reason = _first_choice(choices)
        if finish_reason == "content_filter" and not (text or "").strip():
            raise MalformedOutput(
                "Eden AI: the provider's content filter blocked the answer",
                reason="refusal",
                request_id=request_id,
                raw_excerpt=raw_excerpt,
                cost_usd=cost,
                latency_ms=deadline.elapsed_ms(),
            )
        try:
            final, data = finish_text(text, request, raw_excerpt=raw_excerpt, request_id=request_id)
        except MalformedOutput as exc:
            exc.cost_usd, exc.latency_ms, exc.http_status = cost, deadline.elapsed_ms(), 200
            raise
        usage = _usage(payload)
        cost_usd, source = self._cost(cost, usage)
        return CaptionResult(
            text=final,
            data=data,
            served_model=_str_or_none(payload.get("model")) or self.model,
            request_id=request_id,
            latency_ms=deadline.elapsed_ms(),
            cost_usd=cost_usd,
            cost_source=source,
            raw_excerpt=raw_excerpt,
            usage=usage,
            truncated=finish_reason == "length",
        )

    def _cost(
        self, reported: Decimal | None, usage: Mapping[str, float]
    ) -> tuple[Decimal | None, CostSource]:
        if reported is not None:
            return reported, "provider"
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if (
            self.input_usd_per_mtok is not None
            and self.output_usd_per_mtok is not None
            and prompt_tokens is not None
            and completion_tokens is not None
        ):
            total = (
                Decimal(str(prompt_tokens)) * self.input_usd_per_mtok
                + Decimal(str(completion_tokens)) * self.output_usd_per_mtok
            ) / Decimal(1_000_000)
            return usd(total), "computed"
        return None, "none"


class EdenAIV2Provider(Provider):
    """Eden AI v2 ``image/question_answer`` (legacy API, supported until the end of 2026)."""

    kind = "edenai_v2"

    def __init__(
        self,
        *,
        model: str = DEFAULT_V2_PROVIDER,
        api_key: str | None = None,
        base_url: str = EDENAI_BASE_URL,
        fallback_providers: Sequence[str] = (),
        settings: Mapping[str, str] | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(name=f"edenai_v2:{model}")
        self.model = model
        self.fallback_providers = tuple(fallback_providers)
        if len(self.fallback_providers) > MAX_V2_FALLBACKS:
            raise ValueError(f"Eden AI v2 allows at most {MAX_V2_FALLBACKS} fallback providers")
        self.settings = dict(settings or {})
        self.http = HttpClient(
            vendor="Eden AI",
            base_url=base_url,
            api_key=api_key,
            connect_timeout_s=connect_timeout_s,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        settings = config.get("settings")
        return cls(
            model=str(config.get("model") or DEFAULT_V2_PROVIDER),
            api_key=config.get("api_key") or None,
            base_url=_base_url(config),
            fallback_providers=_string_list(
                config.get("fallback_providers"),
                limit=MAX_V2_FALLBACKS,
                what="fallback_providers",
            ),
            settings=settings if isinstance(settings, Mapping) else None,
            connect_timeout_s=float(config.get("connect_timeout_s") or DEFAULT_CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self.http.close()

    @property
    def capabilities(self) -> ProviderCapabilities:
        return V2_CAPABILITIES

    def build_fields(self, request: CaptionRequest) -> dict[str, str]:
        """Form fields (all strings); the same keys go into a JSON body for URL images."""
        fields: dict[str, str] = {
            "providers": self.model,
            "response_as_dict": "true",
            "show_base_64": "false",
            "show_original_response": "false",
        }
        if self.fallback_providers:
            fields["fallback_providers"] = ",".join(self.fallback_providers)
        if self.settings:
            fields["settings"] = json.dumps(self.settings, sort_keys=True)
        if request.task != "caption" or request.prompt.strip():
            # No question means "describe the image", i.e. a caption.
            fields["question"] = instruction_for(request)
        params = request.params
        if "temperature" in params:
            fields["temperature"] = str(float(params["temperature"]))
        if "max_new_tokens" in params:
            fields["max_tokens"] = str(int(params["max_new_tokens"]))
        return fields

    def caption(self, request: CaptionRequest) -> CaptionResult:
        deadline = Deadline(request.timeout_s)
        url = self.http.url("/v2/image/question_answer")
        fields = self.build_fields(request)
        image = request.image
        mime = request.mime_type
        if image is None and request.image_url:
            decoded = decode_data_url(request.image_url)
            if decoded is not None:
                image, mime = decoded
        if image is not None:
            extension = mime.rsplit("/", 1)[-1].replace("jpeg", "jpg")
            response = self.http.request(
                "POST",
                url,
                deadline=deadline,
                data=fields,
                files={"file": (f"image.{extension}", image, mime)},
            )
        else:
            body: dict[str, Any] = dict(fields)
            body["file_url"] = request.image_url
            for key in ("response_as_dict", "show_base_64", "show_original_response"):
                body[key] = fields[key] == "true"
            if "settings" in fields:
                body["settings"] = self.settings
            if "fallback_providers" in fields:
                body["fallback_providers"] = list(self.fallback_providers)
            for key, cast in (("temperature", float), ("max_tokens", int)):
                if key in fields:
                    body[key] = cast(fields[key])
            response = self.http.request("POST", url, deadline=deadline, json_body=body)
        return self._result(request, response, deadline)

    def _result(
        self, request: CaptionRequest, response: HttpResponse, deadline: Deadline
    ) -> CaptionResult:
        raw_excerpt = self.http.excerpt(response.body)
        payload = self.http.json(response)
        entries = _v2_entries(payload)
        if entries is None:
            raise MalformedOutput(
                "Eden AI v2: response has no per-provider results",
                reason="unparseable",
                http_status=response.status,
                raw_excerpt=raw_excerpt,
            )
        order = [self.model, *self.fallback_providers]
        total_cost = _sum_costs(entries.values())
        failures: list[str] = []
        for name in order:
            entry = _find_entry(entries, name)
            if entry is None:
                continue
            status = str(entry.get("status", "")).strip().lower()
            if status not in SUCCESS_STATUSES:
                failures.append(f"{name}: {_error_message(entry.get('error')) or status}")
                continue
            answers = entry.get("answers")
            text = answers[0] if isinstance(answers, list) and answers else None
            try:
                final, data = finish_text(
                    text if isinstance(text, str) else None, request, raw_excerpt=raw_excerpt
                )
            except MalformedOutput as exc:
                exc.cost_usd, exc.latency_ms, exc.http_status = (
                    total_cost,
                    deadline.elapsed_ms(),
                    response.status,
                )
                raise
            return CaptionResult(
                text=final,
                data=data,
                served_model=self._served_model(name),
                request_id=_header_id(response),
                latency_ms=deadline.elapsed_ms(),
                cost_usd=total_cost,
                cost_source="provider" if total_cost is not None else "none",
                raw_excerpt=raw_excerpt,
                usage=_usage(entry),
            )
        if not failures:
            raise MalformedOutput(
                f"Eden AI v2: no result for provider {self.model!r}",
                reason="unparseable",
                http_status=response.status,
                raw_excerpt=raw_excerpt,
                cost_usd=total_cost,
            )
        raise ServerError(
            "Eden AI v2: provider failed: " + "; ".join(failures)[:400],
            http_status=response.status,
            request_id=_header_id(response),
            raw_excerpt=raw_excerpt,
            cost_usd=total_cost,
            latency_ms=deadline.elapsed_ms(),
        )

    def _served_model(self, name: str) -> str:
        provider = name.split("/", 1)[0]
        configured = self.settings.get(provider)
        if "/" not in name and configured:
            return f"{provider}/{configured}"
        return name


def _v2_entries(payload: object) -> dict[str, Mapping[str, Any]] | None:
    """Per-provider results keyed by name, from either ``response_as_dict`` shape."""
    if isinstance(payload, dict):
        entries = {k: v for k, v in payload.items() if isinstance(v, Mapping) and "status" in v}
        return entries or None
    if isinstance(payload, list):
        out: dict[str, Mapping[str, Any]] = {}
        for item in payload:
            if isinstance(item, Mapping) and isinstance(item.get("provider"), str):
                out[item["provider"]] = item
        return out or None
    return None


def _find_entry(entries: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    if name in entries:
        return entries[name]
    provider = name.split("/", 1)[0]
    return entries.get(provider)


def _sum_costs(entries: Any) -> Decimal | None:
    costs = [to_decimal(entry.get("cost")) for entry in entries]
    known = [c for c in costs if c is not None]
    return sum(known, Decimal(0)) if known else None


def _first_choice(choices: object) -> tuple[str | None, str | None]:
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None, None
    choice = choices[0]
    message = choice.get("message") or choice.get("delta") or {}
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, list):  # some providers answer with content parts
        content = "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping)
        )
    finish = choice.get("finish_reason")
    return (content if isinstance(content, str) else None), (
        finish if isinstance(finish, str) else None
    )


def _payload_from_sse(response: HttpResponse, http: HttpClient) -> dict[str, Any]:
    """Fold a chat-completion event stream into one completion-shaped payload."""
    merged: dict[str, Any] = {}
    parts: list[str] = []
    finish: str | None = None
    event = "message"
    for line in response.text().splitlines():
        if not line.strip():
            event = "message"  # a blank line ends the event
            continue
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        if event == "error":  # "event: error" frames carry the error as their data
            try:
                frame = json.loads(data)
            except ValueError:
                frame = data
            if isinstance(frame, dict) and isinstance(frame.get("error"), Mapping | str):
                frame = frame["error"]
            merged["error"] = frame if isinstance(frame, Mapping | str) and frame else data
            continue
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise MalformedOutput(
                "Eden AI: unparseable event in the response stream",
                reason="unparseable",
                http_status=response.status,
                raw_excerpt=http.excerpt(response.body),
            ) from exc
        if not isinstance(chunk, dict):
            continue
        for key in ("id", "model", "usage", "cost", "error"):
            if chunk.get(key) is not None:
                merged[key] = chunk[key]
        text, reason = _first_choice(chunk.get("choices"))
        parts.append(text or "")
        finish = reason or finish
    merged["choices"] = [
        {"message": {"role": "assistant", "content": "".join(parts)}, "finish_reason": finish}
    ]
    return merged


def _usage(payload: Mapping[str, Any]) -> dict[str, float]:
    usage = payload.get("usage")
    out: dict[str, float] = {}
    if isinstance(usage, Mapping):
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = _number(usage.get(key))
            if value is not None:
                out[key] = value
    metadata = payload.get("edenai_metadata")
    if isinstance(metadata, Mapping):
        attempt = _number(metadata.get("attempt"))
        if attempt is not None:
            out["edenai_attempt"] = attempt
    return out


def _error_message(error: object) -> str:
    if isinstance(error, str):
        return error[:300]
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, str):
            return message[:300]
        if message is not None:
            return json.dumps(message, sort_keys=True)[:300]
    return ""


def _str_or_none(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _header_id(response: HttpResponse) -> str | None:
    return request_id_from_headers(response)
