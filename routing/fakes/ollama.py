"""Fake Ollama: ``POST /api/generate`` (``stream`` false or NDJSON) and ``GET /api/tags``, in the
shapes of ``shared/reference/providers.md`` §4. Failures follow Ollama: with ``stream: false`` a
non-2xx with ``{"error": ...}`` (``fail``: 500; ``503``: a full queue); streamed, HTTP 200 and an
error line after the words already sent (``stream_error``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from routing.fakes.server import FakeServer, RecordedRequest, Reply, Response

NS = 1_000_000_000


class FakeOllama(FakeServer):
    """The first generate after start loads the model (``load_duration`` 2 s, counted in
    ``total_duration`` as Ollama does); later ones find it loaded (1 ms)."""

    vendor = "ollama"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loaded = False

    def unauthorized(self, request: RecordedRequest) -> Response:
        return Response.json(401, {"error": "unauthorized"})

    def handle(self, request: RecordedRequest) -> Response:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "POST" and path == "/api/generate":
            return self.generate(request, self.next_reply())
        if request.method == "GET" and path == "/api/tags":
            return Response.json(
                200, {"models": [{"name": "llava:latest", "model": "llava:latest"}]}
            )
        return Response.json(404, {"error": "404 page not found"})

    def generate(self, request: RecordedRequest, reply: Reply) -> Response:
        delay = (reply.latency_ms or 0) / 1000
        body = request.json if isinstance(request.json, dict) else {}
        model = str(body.get("model") or "llava")
        if reply.kind == "hang":
            return Response(status=0, hang_s=reply.hang_s)
        if reply.kind == "rate_limited":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            return Response.json(
                429, {"error": "too many requests"}, headers=headers, delay_s=delay
            )
        if reply.kind == "error":
            status = reply.status or 500
            default = (
                f'model "{model}" not found, try pulling it first'
                if status == 404
                else f"fake Ollama error {status}"
            )
            return Response.json(status, {"error": reply.message or default}, delay_s=delay)
        if reply.kind == "malformed_json":
            return Response(status=200, body=b'{"model": "llava", "respo', delay_s=delay)
        if not body.get("images"):
            return Response.json(400, {"error": "images are required for this model"})
        streaming = body.get("stream", True) is not False
        if reply.kind in ("provider_fail", "stream_error"):
            message = reply.message or "an error was encountered while running the model"
            if not streaming:  # a non-streamed failure is a non-2xx (500 by default)
                return Response.json(500, {"error": message}, delay_s=delay)
            return self._failed_stream(model, reply, message, delay)
        text = reply.output_text()
        with self._lock:
            load_ns = 1_000_000 if self._loaded else 2 * NS
            self._loaded = True
        final = {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "response": text,
            "done": True,
            "done_reason": reply.finish_reason,
            "context": [1, 2, 3],
            "total_duration": load_ns + int(max(delay, 0.001) * NS) + 250_000_000,
            "load_duration": load_ns,
            "prompt_eval_count": 590,
            "prompt_eval_duration": 100_000_000,
            "eval_count": len(text.split()) + 1,
            "eval_duration": 150_000_000,
        }
        drip = reply.drip_ms / 1000
        if not streaming:
            return Response.json(200, final, delay_s=delay, drip_s=drip)
        lines: list[dict[str, Any]] = []
        for i, word in enumerate(text.split(" ") if text else []):
            lines.append(
                {"model": model, "response": word if i == 0 else " " + word, "done": False}
            )
        lines.append({**final, "response": ""})
        ndjson = "".join(json.dumps(line) + "\n" for line in lines)
        return Response(
            status=200,
            body=ndjson.encode(),
            content_type="application/x-ndjson",
            delay_s=delay,
            drip_s=drip,
        )

    def _failed_stream(self, model: str, reply: Reply, message: str, delay: float) -> Response:
        """Mid-stream failures keep the HTTP 200: a few words, then an error line (no ``done``)."""
        words = reply.output_text().split(" ")[:3] if reply.kind == "stream_error" else []
        lines: list[dict[str, Any]] = [
            {"model": model, "response": word if i == 0 else " " + word, "done": False}
            for i, word in enumerate(words)
        ]
        lines.append({"error": message})
        ndjson = "".join(json.dumps(line) + "\n" for line in lines)
        return Response(
            status=200, body=ndjson.encode(), content_type="application/x-ndjson", delay_s=delay
        )
