"""Ollama client (kind ``ollama``): ``POST /api/generate`` with base64 ``images`` and
``stream: false``, for LLaVA served by a local Ollama.

Config keys: ``model`` (default ``llava``), ``base_url`` (default ``http://localhost:11434``),
``keep_alive`` (e.g. ``"5m"``), ``gpu_hour_usd`` (cost = (``total_duration`` - ``load_duration``)
x $/GPU-hour, cost source ``configured``; without it the cost is unknown), ``default_prompt``.
``json`` tasks pass the schema as Ollama's ``format``. Decoding params map to ``options``:
``max_new_tokens`` -> ``num_predict``, ``temperature``, ``top_p``, ``seed``,
``repetition_penalty`` -> ``repeat_penalty``. ``done_reason: "length"`` marks the result
``truncated``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from math import inf
from typing import Any, Self

from routing.providers.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    BadRequest,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    Provider,
    ProviderCapabilities,
    ServerError,
)
from routing.providers.http import Deadline, HttpClient, HttpResponse, decode_data_url
from routing.providers.output import finish_text, instruction_for, to_decimal, usd

OLLAMA_BASE_URL = "http://localhost:11434"
DEFAULT_MODEL = "llava"
NS_PER_S = 1_000_000_000
# Both of Ollama's engines decode JPEG and PNG (the llama.cpp runner's stb_image has no WebP).
OLLAMA_CAPABILITIES = ProviderCapabilities(
    image_mime_types=frozenset({"image/jpeg", "image/png"}),
    params=frozenset({"max_new_tokens", "temperature", "top_p", "seed", "repetition_penalty"}),
    param_ranges={"temperature": (0.0, inf), "top_p": (0.0, 1.0)},
)


class OllamaProvider(Provider):
    kind = "ollama"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str = OLLAMA_BASE_URL,
        api_key: str | None = None,
        keep_alive: str | None = None,
        gpu_hour_usd: Decimal | None = None,
        default_prompt: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(name=f"ollama:{model}")
        self.model = model
        self.keep_alive = keep_alive
        self.gpu_hour_usd = gpu_hour_usd
        self.default_prompt = default_prompt
        # Ollama itself needs no key; one is sent only when a proxy in front of it wants one.
        self.http = HttpClient(
            vendor="Ollama", base_url=base_url, api_key=api_key, connect_timeout_s=connect_timeout_s
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(
            model=str(config.get("model") or DEFAULT_MODEL),
            base_url=str(config.get("base_url") or OLLAMA_BASE_URL),
            api_key=config.get("api_key") or None,
            keep_alive=config.get("keep_alive") or None,
            gpu_hour_usd=to_decimal(config.get("gpu_hour_usd")),
            default_prompt=config.get("default_prompt") or None,
            connect_timeout_s=float(config.get("connect_timeout_s") or DEFAULT_CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self.http.close()

    @property
    def capabilities(self) -> ProviderCapabilities:
        return OLLAMA_CAPABILITIES

    def build_body(self, request: CaptionRequest) -> dict[str, Any]:
        image = request.image
        if image is None and request.image_url:
            decoded = decode_data_url(request.image_url)
            if decoded is None:
                raise BadRequest("Ollama needs the image bytes (or a data URL), not a web URL")
            image = decoded[0]
        assert image is not None
        kwargs = {"default_prompt": self.default_prompt} if self.default_prompt else {}
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": instruction_for(request, **kwargs),
            "images": [base64.b64encode(image).decode("ascii")],
            "stream": False,
        }
        if request.task == "json" and request.json_schema is not None:
            body["format"] = dict(request.json_schema)
        options: dict[str, Any] = {}
        params = request.params
        for ours, theirs, cast in (
            ("max_new_tokens", "num_predict", int),
            ("temperature", "temperature", float),
            ("top_p", "top_p", float),
            ("seed", "seed", int),
            ("repetition_penalty", "repeat_penalty", float),
        ):
            if ours in params:
                options[theirs] = cast(params[ours])
        if options:
            body["options"] = options
        if self.keep_alive:
            body["keep_alive"] = self.keep_alive
        return body

    def caption(self, request: CaptionRequest) -> CaptionResult:
        deadline = Deadline(request.timeout_s)
        response = self.http.request(
            "POST",
            self.http.url("/api/generate"),
            deadline=deadline,
            json_body=self.build_body(request),
        )
        raw_excerpt = self.http.excerpt(response.body)
        payload = self._payload(response)
        error = payload.get("error")
        if error:
            # Ollama reports failures that happen after the headers inside an HTTP 200.
            raise ServerError(
                f"Ollama: {str(error)[:300]}",
                http_status=response.status,
                raw_excerpt=raw_excerpt,
                latency_ms=deadline.elapsed_ms(),
            )
        usage = _usage(payload)
        cost = self._cost(usage)
        response_text = payload.get("response")
        try:
            text, data = finish_text(
                response_text if isinstance(response_text, str) else None,
                request,
                raw_excerpt=raw_excerpt,
            )
        except MalformedOutput as exc:
            exc.cost_usd, exc.latency_ms, exc.http_status = cost, deadline.elapsed_ms(), 200
            raise
        model = payload.get("model")
        return CaptionResult(
            text=text,
            data=data,
            served_model=model if isinstance(model, str) and model else self.model,
            request_id=None,  # Ollama has no request ids
            latency_ms=deadline.elapsed_ms(),
            cost_usd=cost,
            cost_source="configured" if cost is not None else "none",
            raw_excerpt=raw_excerpt,
            usage=usage,
            truncated=payload.get("done_reason") == "length",
        )

    def _payload(self, response: HttpResponse) -> dict[str, Any]:
        """One JSON object; a streamed (NDJSON) body is folded into one."""
        lines = [line for line in response.text().splitlines() if line.strip()]
        if len(lines) <= 1:
            payload = self.http.json(response)
            if not isinstance(payload, dict):
                raise MalformedOutput(
                    "Ollama: response is not a JSON object",
                    reason="unparseable",
                    http_status=response.status,
                    raw_excerpt=self.http.excerpt(response.body),
                )
            return payload
        merged: dict[str, Any] = {}
        pieces: list[str] = []
        for line in lines:
            try:
                chunk = json.loads(line)
            except ValueError as exc:
                raise MalformedOutput(
                    "Ollama: unparseable line in the response stream",
                    reason="unparseable",
                    http_status=response.status,
                    raw_excerpt=self.http.excerpt(response.body),
                ) from exc
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                return {"error": chunk["error"]}
            pieces.append(str(chunk.get("response", "")))
            merged.update({k: v for k, v in chunk.items() if k != "response"})
        merged["response"] = "".join(pieces)
        return merged

    def _cost(self, usage: Mapping[str, float]) -> Decimal | None:
        seconds = usage.get("gpu_seconds")
        if seconds is None or self.gpu_hour_usd is None:
            return None
        return usd(Decimal(str(seconds)) * self.gpu_hour_usd / Decimal(3600))


def _usage(payload: Mapping[str, Any]) -> dict[str, float]:
    """``gpu_seconds`` is the answer's own time: ``total_duration`` less ``load_duration`` (the
    model being loaded into memory, seconds on a cold start, is not this call's work)."""
    out: dict[str, float] = {}
    total = _nanoseconds(payload.get("total_duration"))
    load = _nanoseconds(payload.get("load_duration")) or 0
    if load:
        out["load_seconds"] = load / NS_PER_S
    if total is not None:
        out["gpu_seconds"] = max(0, total - load) / NS_PER_S
    for ours, theirs in (
        ("prompt_tokens", "prompt_eval_count"),
        ("completion_tokens", "eval_count"),
    ):
        value = payload.get(theirs)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[ours] = float(value)
    return out


def _nanoseconds(value: object) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    return None
