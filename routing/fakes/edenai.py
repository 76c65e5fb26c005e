"""Fake Eden AI: v3 ``POST /v3/chat/completions`` and v2 ``POST /v2/image/question_answer``, in the
shapes of ``shared/reference/providers.md`` §1."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from routing.fakes.server import FakeServer, RecordedRequest, Reply, Response

V2_ERROR_TYPES = {400: "Invalid request", 404: "Not Found", 500: "Internal server error"}


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
        payload = {
            "id": request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
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
        return Response.json(200, payload, delay_s=delay)

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
        final: dict[str, Any] = {
            "id": request_id,
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": usage,
        }
        if reply.cost is not None:
            final["cost"] = reply.cost
        events.append(final)
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return Response(
            status=200, body=body.encode(), content_type="text/event-stream", delay_s=delay
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
        return Response.json(200, payload, delay_s=delay)

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
