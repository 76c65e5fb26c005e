"""Fake Replicate: ``POST /v1/predictions`` (honouring ``Prefer: wait[=N]`` and ``Cancel-After``),
``GET /v1/predictions/{id}`` and ``POST /v1/predictions/{id}/cancel``, in the shapes of
``shared/reference/providers.md`` §2.

A prediction runs from its creation, answers after the reply's ``latency_ms`` and after ``polls``
GETs that still say ``processing``; ``stuck`` predictions never finish. A prediction past its
``Cancel-After`` deadline ends ``canceled`` (``aborted`` for the ``aborted`` reply, which never
starts). Canceled predictions carry ``metrics.predict_time``: the seconds they ran, which
Replicate bills; aborted ones carry none and cost nothing. ``poll_error`` makes the first GETs
fail (5xx, 429 or a connection reset) while the prediction keeps running, as a real one does.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from routing.fakes.server import FakeServer, RecordedRequest, Reply, Response, data_url_bytes

DATA_URL_MAX_BYTES = 256 * 1024
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_PREFER_RE = re.compile(r"^wait(?:=([1-9]|[1-9][0-9]|60))?$")
_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(value: str) -> float | None:
    """Seconds in a Go-style duration (``90s``, ``1m30s``, ``2h``, ``500ms``), else None."""
    match = _DURATION_RE.match(value.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


@dataclass
class Prediction:
    id: str
    version: str
    input: dict[str, Any]
    reply: Reply
    created: float
    ready_at: float
    polls_left: int
    poll_errors_left: int = 0
    cancel_after_s: float | None = None
    status: str = "starting"
    canceled: bool = False  # someone called the cancel endpoint
    predict_time: float | None = None  # billed seconds, once terminal
    data_removed: bool = False


class FakeReplicate(FakeServer):
    vendor = "replicate"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predictions: dict[str, Prediction] = {}
        self._pred_lock = threading.Lock()

    @property
    def canceled(self) -> list[str]:
        with self._pred_lock:
            return [p.id for p in self.predictions.values() if p.canceled]

    def status_of(self, prediction_id: str) -> str:
        """The prediction's status now (a deadline that has passed takes effect)."""
        prediction = self.predictions[prediction_id]
        self._advance(prediction, polling=False)
        return prediction.status

    def expire(self, prediction_id: str) -> None:
        """Remove input and output, as Replicate does an hour after an API prediction."""
        with self._pred_lock:
            prediction = self.predictions[prediction_id]
            prediction.data_removed = True
            prediction.input = {}

    def unauthorized(self, request: RecordedRequest) -> Response:
        return Response.json(
            401,
            {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid authentication token",
                "status": 401,
            },
        )

    def handle(self, request: RecordedRequest) -> Response:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "POST" and path == "/v1/predictions":
            return self.create(request, self.next_reply())
        match = re.fullmatch(r"/v1/predictions/([A-Za-z0-9]+)(/cancel)?", path)
        if match:
            with self._pred_lock:
                prediction = self.predictions.get(match.group(1))
            if prediction is None:
                return Response.json(
                    404, {"title": "Not found", "detail": "Not found.", "status": 404}
                )
            if match.group(2) and request.method == "POST":
                return self.cancel(prediction)
            if not match.group(2) and request.method == "GET":
                return self.get(prediction)
        return self.not_found(request)

    def create(self, request: RecordedRequest, reply: Reply) -> Response:
        delay = (reply.latency_ms or 0) / 1000
        if reply.kind == "hang":
            return Response(status=0, hang_s=reply.hang_s)
        if reply.kind == "rate_limited":
            return _throttled(reply.retry_after, reply.message)
        if reply.kind == "error":
            return Response.json(reply.status or 500, _problem(reply))
        if reply.kind == "malformed_json":
            return Response(status=201, body=b'{"id": "abc", "status": "succ', delay_s=delay)
        body = request.json if isinstance(request.json, dict) else {}
        inputs = body.get("input")
        version = body.get("version")
        if not isinstance(inputs, dict) or not isinstance(version, str) or not version:
            return Response.json(
                422,
                {
                    "title": "Input validation failed",
                    "detail": "version and input are required",
                    "status": 422,
                },
            )
        refused = _input_refusal(inputs)
        if refused is not None:
            return refused
        prefer = request.header("prefer")
        match = _PREFER_RE.match(prefer.strip()) if prefer else None
        if prefer and not match:
            return Response.json(
                400, {"title": "Invalid Prefer header", "detail": prefer, "status": 400}
            )
        cancel_after = request.header("cancel-after")
        cancel_after_s = parse_duration(cancel_after) if cancel_after is not None else None
        if cancel_after is not None and cancel_after_s is None:
            return Response.json(
                400, {"title": "Invalid Cancel-After header", "detail": cancel_after, "status": 400}
            )
        now = time.monotonic()
        prediction = Prediction(
            id=uuid.uuid4().hex[:26],
            version=version,
            input=inputs,
            reply=reply,
            created=now,
            ready_at=now + delay,
            polls_left=reply.polls,
            poll_errors_left=reply.poll_errors if reply.poll_error else 0,
            cancel_after_s=cancel_after_s,
        )
        with self._pred_lock:
            self.predictions[prediction.id] = prediction
        if reply.kind == "create_hang":  # created and running; the answer never comes
            return Response(status=0, hang_s=reply.hang_s)
        if match and reply.polls == 0:
            wait = float(match.group(1) or 60)
            # Sync mode: hold the connection until the prediction is done or the wait ends.
            if reply.kind == "stuck":
                self.wait(wait)
            else:
                self.wait(min(wait, delay))
            self._advance(prediction, polling=False)
        return Response.json(201, self._object(prediction), drip_s=reply.drip_ms / 1000)

    def get(self, prediction: Prediction) -> Response:
        with self._pred_lock:
            failing = prediction.poll_errors_left > 0
            if failing:
                prediction.poll_errors_left -= 1
        if failing:
            return _poll_failure(str(prediction.reply.poll_error))
        self._advance(prediction, polling=True)
        return Response.json(200, self._object(prediction))

    def cancel(self, prediction: Prediction) -> Response:
        self._advance(prediction, polling=False)  # one that has finished stays finished
        with self._pred_lock:
            if prediction.status not in TERMINAL:
                prediction.status = "canceled"
                prediction.predict_time = round(time.monotonic() - prediction.created, 3)
            prediction.canceled = True
        return Response.json(200, self._object(prediction))

    def _advance(self, prediction: Prediction, *, polling: bool) -> None:
        with self._pred_lock:
            if prediction.status in TERMINAL:
                return
            now = time.monotonic()
            reply = prediction.reply
            deadline = (
                prediction.created + prediction.cancel_after_s
                if prediction.cancel_after_s is not None
                else None
            )
            if reply.kind == "aborted":
                prediction.status = "aborted"  # its deadline came before a worker did
                return
            unfinished_at_deadline = deadline is not None and (
                reply.kind == "stuck" or prediction.ready_at > deadline
            )
            if deadline is not None and now >= deadline and unfinished_at_deadline:
                prediction.status = "canceled"
                prediction.predict_time = round(prediction.cancel_after_s or 0.0, 3)
                return
            if polling and prediction.polls_left > 0:
                prediction.polls_left -= 1
                prediction.status = "processing"
                return
            if reply.kind == "stuck" or now < prediction.ready_at:
                prediction.status = "processing" if polling else "starting"
                return
            if prediction.polls_left > 0:
                return
            prediction.status = "failed" if reply.kind == "provider_fail" else "succeeded"
            prediction.predict_time = reply.predict_time

    def _object(self, prediction: Prediction) -> dict[str, Any]:
        host = f"{self.url}/v1/predictions/{prediction.id}"
        reply = prediction.reply
        terminal = prediction.status in TERMINAL
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        payload: dict[str, Any] = {
            "id": prediction.id,
            "model": "andreasjansson/blip-2",
            "version": prediction.version,
            "input": prediction.input,
            "logs": "",
            "output": None,
            "error": None,
            "status": prediction.status,
            "created_at": created,
            "started_at": None if prediction.status == "aborted" else created,
            "completed_at": created if terminal else None,
            "data_removed": prediction.data_removed,
            "metrics": {},
            "urls": {"get": host, "cancel": f"{host}/cancel", "stream": f"{host}/stream"},
        }
        if prediction.status == "succeeded" and not prediction.data_removed:
            payload["output"] = reply.output_text()
        if prediction.status == "failed":
            payload["error"] = reply.message or "CUDA error: out of memory"
        if prediction.predict_time is not None:
            payload["metrics"] = {"predict_time": prediction.predict_time}
        return payload


def _throttled(retry_after: str | None, message: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    reset = retry_after or "30"
    detail = message or f"Request was throttled. Your rate limit resets in ~{reset}s."
    return Response.json(429, {"detail": detail}, headers=headers)


def _poll_failure(error: str) -> Response:
    if error == "reset":
        return Response(status=0, reset=True)
    status = int(error)
    if status == 429:
        return _throttled("1")
    return Response.json(status, _problem(Reply.error(status)))


def _input_refusal(inputs: dict[str, Any]) -> Response | None:
    """What Replicate refuses before running BLIP-2: big data URLs and inputs out of range."""
    image = inputs.get("image")
    if isinstance(image, str) and image.startswith("data:"):
        data = data_url_bytes(image)
        if data is not None and len(data) > DATA_URL_MAX_BYTES:
            return Response.json(
                413,
                {
                    "title": "Request Entity Too Large",
                    "detail": f"data URL of {len(data)} bytes; use an HTTP URL for files over "
                    f"{DATA_URL_MAX_BYTES // 1024} KB",
                    "status": 413,
                },
            )
    problems: list[str] = []
    temperature = inputs.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            problems.append("- input.temperature: Invalid type. Expected: number, given: string")
        elif temperature < 0.5:
            problems.append("- input.temperature: Must be greater than or equal to 0.5")
        elif temperature > 1:
            problems.append("- input.temperature: Must be less than or equal to 1")
    if problems:
        return Response.json(
            422,
            {"title": "Input validation failed", "detail": "\n".join(problems), "status": 422},
        )
    return None


def _problem(reply: Reply) -> dict[str, Any]:
    status = reply.status or 500
    titles = {
        400: "Bad request",
        401: "Unauthenticated",
        402: "Billing required",
        404: "Not found",
        422: "Input validation failed",
        500: "Internal server error",
    }
    details = {
        402: "You need to set up billing to run this model. Go to https://replicate.com/account/billing",
        401: "You did not pass a valid authentication token",
    }
    return {
        "type": f"https://replicate.com/docs/errors#{status}",
        "title": titles.get(status, "Error"),
        "detail": reply.message or details.get(status, f"fake Replicate error {status}"),
        "status": status,
    }
