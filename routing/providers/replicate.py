"""Replicate client for ``andreasjansson/blip-2`` (kind ``replicate``).

``POST /v1/predictions`` with the pinned version and ``Prefer: wait=N``; when the prediction is not
terminal yet, poll it until ``succeeded`` / ``failed`` / ``canceled`` / ``aborted`` within the
request's timeout.

A prediction is never left running for a retry to duplicate: every create carries a
``Cancel-After`` header (the request's timeout, rounded up), so Replicate stops it itself even when
the create's answer is lost; and any failure after the create (a poll's 5xx, 429, connection
error, timeout or unreadable body) cancels it before the error propagates. Cancelled predictions
are billed for the time they ran: the cancel response's ``metrics.predict_time`` becomes the
error's ``cost_usd``. ``aborted`` (the deadline came before it started) costs nothing and raises
``PredictionAborted``. ``CaptionRequest.on_submitted`` receives the prediction id as soon as the
create answers (the create then skips sync mode, so that happens at once), and
``CaptionRequest.resume_request_id`` polls that prediction instead of creating another.

Config keys: ``api_key`` (``REPLICATE_API_TOKEN``), ``base_url`` (default
``https://api.replicate.com``), ``version`` (default: the pinned BLIP-2 version), ``model`` (a
label for the served model), ``usd_per_second`` (the hardware price; cost =
``metrics.predict_time`` x price, cost source ``computed``), ``poll_interval_s`` (default 0.5),
``wait_s`` (the ``Prefer: wait`` seconds, 1-60, default 60, never beyond the timeout).

Task mapping (BLIP-2 inputs, ``shared/reference/providers.md`` §2.7): ``caption`` sends
``caption: true`` (BLIP-2 captions take no instruction, so ``prompt`` is not sent); ``question``
sends ``question``; ``json`` sends the instruction and schema as the question and validates the
answer. ``params``: ``context``, ``use_nucleus_sampling``, ``temperature`` (0.5-1, only with
nucleus sampling).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Self

from routing.providers.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    IMAGE_MIME_TYPES,
    BadRequest,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    PredictionAborted,
    PredictionLost,
    Provider,
    ProviderCapabilities,
    ProviderError,
    ProviderTimeout,
    ServerError,
)
from routing.providers.http import Deadline, HttpClient, HttpResponse, data_url
from routing.providers.output import finish_text, instruction_for, to_decimal, usd

REPLICATE_BASE_URL = "https://api.replicate.com"
BLIP2_MODEL = "andreasjansson/blip-2"
BLIP2_VERSION = "f677695e5e89f8b236e52ecd1d3f01beb44c34606419bcc19345e046d8f786f9"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
#: Replicate takes data URLs for files up to about 256 KB; bigger request bodies get HTTP 413.
DATA_URL_MAX_BYTES = 256 * 1024
REPLICATE_PARAMS = frozenset({"context", "use_nucleus_sampling", "temperature"})
CANCEL_TIMEOUT_S = 5.0


class ReplicateProvider(Provider):
    kind = "replicate"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = REPLICATE_BASE_URL,
        model: str = BLIP2_MODEL,
        version: str = BLIP2_VERSION,
        usd_per_second: Decimal | None = None,
        poll_interval_s: float = 0.5,
        wait_s: int = 60,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(name=f"replicate:{model}")
        self.model = model
        self.version = version
        self.usd_per_second = usd_per_second
        self.poll_interval_s = poll_interval_s
        self.wait_s = max(1, min(60, int(wait_s)))
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[:-3]
        self.http = HttpClient(
            vendor="Replicate",
            base_url=root,
            api_key=api_key,
            connect_timeout_s=connect_timeout_s,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        model = str(config.get("model") or BLIP2_MODEL)
        # "owner/name:version" pins the version in the model string, as Replicate writes it.
        version = config.get("version")
        if not version and ":" in model:
            model, version = model.split(":", 1)
        return cls(
            api_key=config.get("api_key") or None,
            base_url=str(config.get("base_url") or REPLICATE_BASE_URL),
            model=model,
            version=str(version or BLIP2_VERSION),
            usd_per_second=to_decimal(config.get("usd_per_second")),
            poll_interval_s=float(config.get("poll_interval_s") or 0.5),
            wait_s=int(config.get("wait_s") or 60),
            connect_timeout_s=float(config.get("connect_timeout_s") or DEFAULT_CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self.http.close()

    @property
    def capabilities(self) -> ProviderCapabilities:
        """Images go inline as data URLs (256 KB at most); the predictor opens them with Pillow.
        ``andreasjansson/blip-2`` takes ``temperature`` 0.5-1; other models' ranges are unknown."""
        ranges = {"temperature": (0.5, 1.0)} if self.model == BLIP2_MODEL else {}
        return ProviderCapabilities(
            image_mime_types=frozenset(IMAGE_MIME_TYPES),
            max_image_bytes=DATA_URL_MAX_BYTES,
            params=REPLICATE_PARAMS,
            param_ranges=ranges,
        )

    def build_input(self, request: CaptionRequest) -> dict[str, Any]:
        image = (
            data_url(request.image, request.mime_type)
            if request.image is not None
            else str(request.image_url)
        )
        body: dict[str, Any] = {"image": image}
        if request.task == "caption":
            body["caption"] = True
        else:
            body["caption"] = False
            body["question"] = instruction_for(request)
            context = request.params.get("context")
            if context:
                body["context"] = str(context)
        if "use_nucleus_sampling" in request.params:
            body["use_nucleus_sampling"] = bool(request.params["use_nucleus_sampling"])
        if "temperature" in request.params:
            body["temperature"] = float(request.params["temperature"])
        return body

    def caption(self, request: CaptionRequest) -> CaptionResult:
        deadline = Deadline(request.timeout_s)
        if request.resume_request_id:
            prediction = self._resume(request.resume_request_id, deadline)
        else:
            prediction = self._create(request, deadline)
        try:
            while str(prediction.get("status")) not in TERMINAL:
                prediction = self._poll(prediction, deadline)
        except ProviderError as exc:
            # Whatever went wrong, a retry must not leave this prediction running and billing.
            final = self._cancel(prediction)
            if final is not None and final.get("status") == "succeeded":
                return self._result(request, final, deadline)  # it finished meanwhile: use it
            exc.request_id = exc.request_id or str(prediction["id"])
            if final is not None:
                exc.cost_usd = self._cost(_usage(final))
                exc.message += f"; prediction {prediction['id']} canceled"
            else:
                exc.message += (
                    f"; canceling prediction {prediction['id']} failed too (its Cancel-After "
                    "deadline stops it)"
                )
            exc.args = (exc.message,)
            raise
        return self._result(request, prediction, deadline)

    def _create(self, request: CaptionRequest, deadline: Deadline) -> dict[str, Any]:
        # Cancel-After makes Replicate stop the prediction at our deadline even when we never
        # learn its id (the create timed out or the connection dropped).
        headers = {"Cancel-After": cancel_after(request.timeout_s)}
        # Sync mode ends a second before our deadline so that we always learn the prediction id
        # (and can cancel it); below two seconds of budget we create asynchronously and poll.
        # A caller that stores the id (on_submitted) gets it at once: no sync wait either.
        wait = min(self.wait_s, math.floor(request.timeout_s - 1))
        if wait >= 1 and request.on_submitted is None:
            headers["Prefer"] = f"wait={wait}"
        response = self.http.request(
            "POST",
            self.http.url("/v1/predictions"),
            deadline=deadline,
            json_body={"version": self.version, "input": self.build_input(request)},
            headers=headers,
        )
        prediction = self._prediction(response)
        if request.on_submitted is not None:
            try:
                request.on_submitted(str(prediction["id"]))
            except Exception:
                self._cancel(prediction)  # nobody could find it again
                raise
        return prediction

    def _resume(self, prediction_id: str, deadline: Deadline) -> dict[str, Any]:
        """The prediction an earlier attempt started, as it is now."""
        known = {"id": prediction_id}
        try:
            response = self.http.request("GET", self._url(known, "get"), deadline=deadline)
        except BadRequest as exc:
            if exc.http_status != 404:
                raise
            raise PredictionLost(
                f"Replicate: prediction {prediction_id} no longer exists; a new one is needed",
                http_status=404,
                request_id=prediction_id,
                raw_excerpt=exc.raw_excerpt,
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        except ProviderError as exc:
            final = self._cancel(known)
            exc.request_id = prediction_id
            exc.cost_usd = self._cost(_usage(final)) if final is not None else None
            raise
        return self._prediction(response)

    def _prediction(self, response: HttpResponse) -> dict[str, Any]:
        payload = self.http.json(response)
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise MalformedOutput(
                "Replicate: response is not a prediction object",
                reason="unparseable",
                http_status=response.status,
                raw_excerpt=self.http.excerpt(response.body),
            )
        return payload

    def _poll(self, prediction: Mapping[str, Any], deadline: Deadline) -> dict[str, Any]:
        prediction_id = str(prediction["id"])
        pause = min(self.poll_interval_s, deadline.remaining())
        if pause > 0:
            time.sleep(pause)
        if deadline.expired():
            raise ProviderTimeout(
                f"Replicate: prediction {prediction_id} not finished within "
                f"{deadline.seconds:g}s (last status {prediction.get('status')!r})",
                request_id=prediction_id,
                latency_ms=deadline.elapsed_ms(),
            )
        try:
            response = self.http.request("GET", self._url(prediction, "get"), deadline=deadline)
        except ProviderError as exc:
            exc.request_id = exc.request_id or prediction_id
            raise
        return self._prediction(response)

    def _url(self, prediction: Mapping[str, Any], which: str) -> str:
        """``urls.get`` / ``urls.cancel`` when they point at our base URL; never send the token
        to a host the response names."""
        urls = prediction.get("urls")
        if isinstance(urls, Mapping):
            url = urls.get(which)
            if isinstance(url, str) and url.startswith(self.http.base_url + "/"):
                return url
        suffix = "/cancel" if which == "cancel" else ""
        return self.http.url(f"/v1/predictions/{prediction['id']}{suffix}")

    def _cancel(self, prediction: Mapping[str, Any]) -> dict[str, Any] | None:
        """Best effort; the prediction as the cancel left it (its ``metrics.predict_time`` is
        what Replicate bills), or None when the cancel itself failed. A failed cancel must not
        hide the error that caused it: the Cancel-After deadline still stops the prediction."""
        try:
            response = self.http.request(
                "POST",
                self._url(prediction, "cancel"),
                deadline=Deadline(CANCEL_TIMEOUT_S),
                raise_for_status=False,
            )
            if not 200 <= response.status < 300:
                return None
            return self._prediction(response)
        except ProviderError:
            return None

    def _result(
        self, request: CaptionRequest, prediction: Mapping[str, Any], deadline: Deadline
    ) -> CaptionResult:
        prediction_id = str(prediction["id"])
        status = str(prediction.get("status"))
        raw_excerpt = self.http.excerpt(_json_text(prediction))
        usage = _usage(prediction)
        cost = self._cost(usage)
        common: dict[str, Any] = {
            "http_status": 200,
            "request_id": prediction_id,
            "raw_excerpt": raw_excerpt,
            "latency_ms": deadline.elapsed_ms(),
        }
        if status == "aborted":
            raise PredictionAborted(
                f"Replicate: prediction {prediction_id} aborted: its deadline passed before it "
                "started (not charged)",
                cost_usd=Decimal(0),
                **common,
            )
        if status != "succeeded":
            error = prediction.get("error")
            detail = (
                error if isinstance(error, str) else ("canceled" if status == "canceled" else "")
            )
            raise ServerError(
                f"Replicate: prediction {status}" + (f": {detail[:300]}" if detail else ""),
                cost_usd=cost,
                **common,
            )
        output = prediction.get("output")
        if output is None and prediction.get("data_removed") is True:
            raise PredictionLost(
                f"Replicate: prediction {prediction_id} succeeded but its output was removed "
                "(Replicate keeps API outputs for an hour)",
                cost_usd=cost,
                **common,
            )
        if isinstance(output, list):  # token-streaming models answer with a list of pieces
            output = "".join(str(piece) for piece in output)
        try:
            text, data = finish_text(
                output if isinstance(output, str) else None,
                request,
                raw_excerpt=raw_excerpt,
                request_id=prediction_id,
            )
        except MalformedOutput as exc:
            exc.cost_usd, exc.latency_ms, exc.http_status = cost, deadline.elapsed_ms(), 200
            raise
        version = prediction.get("version")
        served = self.model + (f":{version[:12]}" if isinstance(version, str) and version else "")
        return CaptionResult(
            text=text,
            data=data,
            served_model=served,
            request_id=prediction_id,
            latency_ms=deadline.elapsed_ms(),
            cost_usd=cost,
            cost_source="computed" if cost is not None else "none",
            raw_excerpt=raw_excerpt,
            usage=usage,
        )

    def _cost(self, usage: Mapping[str, float]) -> Decimal | None:
        seconds = usage.get("predict_time_s")
        if seconds is None or self.usd_per_second is None:
            return None
        return usd(Decimal(str(seconds)) * self.usd_per_second)


def cancel_after(seconds: float) -> str:
    """A ``Cancel-After`` duration (``45s``, ``1m30s``, ``2h``): ``seconds`` rounded up."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = ((hours, "h"), (minutes, "m"), (secs, "s"))
    return "".join(f"{value}{unit}" for value, unit in parts if value)


def _usage(prediction: Mapping[str, Any] | None) -> dict[str, float]:
    usage: dict[str, float] = {}
    metrics = prediction.get("metrics") if prediction is not None else None
    if isinstance(metrics, Mapping):
        predict_time = metrics.get("predict_time")
        if isinstance(predict_time, int | float) and not isinstance(predict_time, bool):
            usage["predict_time_s"] = float(predict_time)
    return usage


def _json_text(payload: Mapping[str, Any]) -> str:
    # The input echoes our data URL; the excerpt keeps only what the call log needs.
    trimmed = {k: v for k, v in payload.items() if k not in ("input", "logs", "urls")}
    return json.dumps(trimmed, sort_keys=True, default=str)
