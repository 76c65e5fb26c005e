"""Fake Eden AI: v3 ``POST /v3/chat/completions`` and v2 ``POST /v2/image/question_answer``, in the
shapes of ``shared/reference/providers.md`` §1."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from routing.fakes.server import (
    FakeServer,
    RecordedRequest,
    Reply,
    Response,
    data_url_bytes,
    image_format,
)

V2_ERROR_TYPES = {400: "Invalid request", 404: "Not Found", 500: "Internal server error"}
V2_FILE_EXTENSIONS = ("jpg", "jpeg", "png", "tiff")
V2_FILE_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
}
MB = 1024 * 1024
# The upstream vendors' temperature ranges (OpenAI and Gemini 0-2, Claude 0-1).
V3_TEMPERATURE_MAX = {"openai": 2.0, "google": 2.0, "anthropic": 1.0}
# What the upstream vision models take: (Pillow formats, max bytes, max longest side).
V3_IMAGE_LIMITS: dict[str, tuple[frozenset[str], int, int | None]] = {
    "openai": (frozenset({"PNG", "JPEG", "MPO", "GIF", "WEBP"}), 20 * MB, None),
    "google": (frozenset({"PNG", "JPEG", "MPO", "WEBP"}), 20 * MB, None),
    "anthropic": (frozenset({"PNG", "JPEG", "MPO", "GIF", "WEBP"}), 5 * MB, 8000),
}


class FakeEdenAI(FakeServer):
    vendor = "edenai"

    def handle(self, request: RecordedRequest) -> Response:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "POST" and path == "/v3/chat/completions":
            return self.chat_completion(request, self.next_reply())
        if request.method == "POST" and path == "/v2/image/question_answer":
            return self.question_answer(request, self.next_reply())
        if request.method == "GET" and path == "/v3/models":
            return Response.json(200, {"models": []})
        return self.not_found(request)

    def unauthorized(self, request: RecordedRequest) -> Response:
        return Response.json(
            401, {"error": {"type": "authentication_error", "message": "Invalid API token"}}
        )

    # --- shared failure shapes ------------------------------------------------------------------

    def _http_failure(self, reply: Reply, delay: float) -> Response | None:
        if reply.kind == "hang":
            return Response(status=0, hang_s=reply.hang_s)
        if reply.kind == "rate_limited":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            limited: dict[str, Any] = {
                "error": {
                    "code": 429,
                    "message": reply.message
                    or "Rate limit exceeded. Please wait before making additional requests.",
                }
            }
            return Response.json(429, limited, headers=headers, delay_s=delay)
        if reply.kind == "error":
            status = reply.status or 500
            if status == 402:
                payload: dict[str, Any] = {"error": reply.message or "Insufficient credits"}
            elif status == 422:
                payload = {
                    "detail": [
                        {
                            "loc": ["body", "model"],
                            "msg": reply.message or "Invalid model",
                            "type": "value_error",
                        }
                    ]
                }
            else:
                payload = {
                    "error": {
                        "type": V2_ERROR_TYPES.get(status, "error"),
                        "message": reply.message or f"fake Eden AI error {status}",
                    }
                }
            return Response.json(status, payload, delay_s=delay)
        if reply.kind == "malformed_json":
            return Response(
                status=200, body=b'{"id": "chatcmpl-broken", "choices": [', delay_s=delay
            )
        return None

    # --- v3 ---------------------------------------------------------------------------------------

    def chat_completion(self, request: RecordedRequest, reply: Reply) -> Response:
        delay = (reply.latency_ms or 0) / 1000
        failure = self._http_failure(reply, delay)
        if failure is not None:
            return failure
        body = request.json if isinstance(request.json, dict) else {}
        refused = self._v3_image_refusal(body) or _v3_param_refusal(body)
        if refused is not None:
            return refused
        model = reply.served_model or str(body.get("model") or "openai/gpt-4o")
        request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if reply.kind == "provider_fail":
            payload: dict[str, Any] = {
                "id": request_id,
                "status": "fail",
                "error": {
                    "message": reply.message or "Provider is currently unavailable",
                    "error_code": "PROVIDER_ERROR",
                },
            }
            if reply.cost is not None:
                payload["cost"] = reply.cost
            return Response.json(200, payload, delay_s=delay)
        text = reply.output_text()
        usage = {
            "prompt_tokens": 850,
            "completion_tokens": len(text.split()) + 1,
            "total_tokens": 851 + len(text.split()),
        }
        if reply.stream:
            return self._sse(request_id, model, text, usage, reply, delay)
        finish_reason = reply.finish_reason
        payload = {
            "id": request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        if reply.cost is not None:
            payload["cost"] = reply.cost
        if request.header("x-edenai-metadata") == "enabled":
            payload["edenai_metadata"] = {
                "attempt": 1,
                "attempts": [{"model": model, "status": 200}],
                "is_byok": False,
            }
        return Response.json(200, payload, delay_s=delay, drip_s=reply.drip_ms / 1000)

    def _v3_image_refusal(self, body: dict[str, Any]) -> Response | None:
        """The upstream vendor refuses inline images in formats or sizes it does not take."""
        vendor = str(body.get("model") or "openai/gpt-4o").split("/", 1)[0]
        limits = V3_IMAGE_LIMITS.get(vendor)
        if limits is None:
            return None
        formats, max_bytes, max_side = limits
        for url in _image_urls(body):
            data = data_url_bytes(url)
            if data is None:
                continue  # a web URL: fetched upstream, not checked here
            found = image_format(data)
            if found is None or found[0] not in formats:
                kind = found[0].lower() if found else "unknown"
                return _v3_error(
                    "unsupported_format",
                    f"{vendor} does not support image format '{kind}'; "
                    f"supported: {', '.join(sorted(f.lower() for f in formats - {'MPO'}))}",
                )
            if len(data) > max_bytes:
                return _v3_error(
                    "image_too_large", f"image is {len(data)} bytes; {vendor} takes {max_bytes}"
                )
            if max_side is not None and max(found[1]) > max_side:
                return _v3_error(
                    "image_too_large", f"image side {max(found[1])} px is over {max_side} px"
                )
        return None

    def _sse(
        self,
        request_id: str,
        model: str,
        text: str,
        usage: dict[str, int],
        reply: Reply,
        delay: float,
    ) -> Response:
        words = text.split(" ")
        events = []
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            chunk = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            events.append(chunk)
        if reply.kind == "stream_error":
            # The upstream model failed mid-answer: partial text, then an error frame, no [DONE].
            failure: dict[str, Any] = {
                "error": {
                    "message": reply.message or "Upstream provider error",
                    "type": "provider_error",
                    "code": 502,
                }
            }
            if reply.cost is not None:
                failure["cost"] = reply.cost
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in [*events, failure])
        else:
            final: dict[str, Any] = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}],
                "usage": usage,
            }
            if reply.cost is not None:
                final["cost"] = reply.cost
            events.append(final)
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return Response(
            status=200,
            body=body.encode(),
            content_type="text/event-stream",
            delay_s=delay,
            drip_s=reply.drip_ms / 1000,
        )

    # --- v2 ---------------------------------------------------------------------------------------

    def question_answer(self, request: RecordedRequest, reply: Reply) -> Response:
        delay = (reply.latency_ms or 0) / 1000
        failure = self._http_failure(reply, delay)
        if failure is not None:
            return failure
        fields: dict[str, Any] = dict(request.form)
        if isinstance(request.json, dict):
            fields.update(request.json)
        invalid = _v2_validation_errors(request, fields)
        if invalid:
            return Response.json(
                400, {"error": {"type": V2_ERROR_TYPES[400], "message": invalid}}, delay_s=delay
            )
        providers = _names(fields.get("providers")) or ["openai"]
        fallbacks = _names(fields.get("fallback_providers"))
        primary = providers[0]
        payload: dict[str, Any] = {}
        if reply.kind == "provider_fail":
            payload[primary] = {
                "status": "fail",
                "error": {
                    "type": "ProviderException",
                    "message": reply.message or "Provider is currently unavailable",
                },
                "cost": 0,
            }
            if reply.fallback_succeeds and fallbacks:
                payload[fallbacks[0]] = self._v2_success(reply)
        else:
            payload[primary] = self._v2_success(reply)
        return Response.json(200, payload, delay_s=delay, drip_s=reply.drip_ms / 1000)

    def _v2_success(self, reply: Reply) -> dict[str, Any]:
        entry: dict[str, Any] = {"answers": [reply.output_text()], "status": reply.v2_status}
        if reply.cost is not None:
            entry["cost"] = float(reply.cost)
        return entry


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _image_urls(body: dict[str, Any]) -> list[str]:
    urls: list[str] = []
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                if isinstance(url, str):
                    urls.append(url)
    return urls


def _v3_param_refusal(body: dict[str, Any]) -> Response | None:
    vendor = str(body.get("model") or "openai/gpt-4o").split("/", 1)[0]
    temperature = body.get("temperature")
    highest = V3_TEMPERATURE_MAX.get(vendor)
    if highest is not None and isinstance(temperature, int | float):
        if temperature < 0:
            return _v3_error(
                "decimal_below_min_value",
                f"Invalid 'temperature': expected a value >= 0, but got {temperature} instead.",
            )
        if temperature > highest:
            return _v3_error(
                "decimal_above_max_value",
                f"Invalid 'temperature': expected a value <= {highest:g}, but got "
                f"{temperature} instead.",
            )
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens < 1:
        return _v3_error("integer_below_min_value", "Invalid 'max_tokens': expected >= 1.")
    return None


def _v3_error(code: str, message: str) -> Response:
    return Response.json(400, {"error": {"code": code, "message": message}})


def _v2_validation_errors(request: RecordedRequest, fields: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors in Django REST framework's words, as the v2 API answers them."""
    errors: dict[str, list[str]] = {}
    upload = request.files.get("file")
    if upload is not None:
        filename, content_type, data = upload
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        found = image_format(data)
        if extension not in V2_FILE_EXTENSIONS:
            errors["file"] = [
                f"File extension “{extension}” is not allowed. Allowed extensions are: "
                f"{', '.join(V2_FILE_EXTENSIONS)}."
            ]
        elif found is None or found[0] not in V2_FILE_FORMATS:
            errors["file"] = [
                "Upload a valid image. The file you uploaded was not a jpg, png or tiff."
            ]
        elif content_type not in V2_FILE_FORMATS.values():
            errors["file"] = [f"Unsupported media type “{content_type}”."]
    for name, low, high, cast in (
        ("temperature", 0.0, 1.0, float),
        ("max_tokens", 1, 2048, int),
    ):
        if name not in fields:
            continue
        try:
            value = cast(fields[name])
        except (TypeError, ValueError):
            errors[name] = ["A valid number is required."]
            continue
        if value < low:
            errors[name] = [f"Ensure this value is greater than or equal to {low}."]
        elif value > high:
            errors[name] = [f"Ensure this value is less than or equal to {high}."]
    return errors
