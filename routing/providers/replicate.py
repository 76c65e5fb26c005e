"""Replicate client for ``andreasjansson/blip-2`` (kind ``replicate``).

``POST /v1/predictions`` with the pinned version and ``Prefer: wait=N``; when the prediction is not
terminal yet, poll it until ``succeeded`` / ``failed`` / ``canceled`` within the request's timeout,
and cancel it when the deadline passes so it stops costing money.

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

import contextlib
import json
import math
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Self

from routing.providers.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    IMAGE_MIME_TYPES,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
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
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
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
        # Sync mode ends a second before our deadline so that we always learn the prediction id
        # (and can cancel it); below two seconds of budget we create asynchronously and poll.
        wait = min(self.wait_s, math.floor(request.timeout_s - 1))
        response = self.http.request(
            "POST",
            self.http.url("/v1/predictions"),
            deadline=deadline,
            json_body={"version": self.version, "input": self.build_input(request)},
            headers={"Prefer": f"wait={wait}"} if wait >= 1 else {},
        )
        prediction = self._prediction(response)
        while str(prediction.get("status")) not in TERMINAL:
            prediction = self._poll(prediction, deadline)
        return self._result(request, prediction, deadline)

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
            self._cancel(prediction)
            raise ProviderTimeout(
                f"Replicate: prediction {prediction_id} not finished within "
                f"{deadline.seconds:g}s (last status {prediction.get('status')!r}); canceled",
                request_id=prediction_id,
                latency_ms=deadline.elapsed_ms(),
            )
        try:
            response = self.http.request("GET", self._url(prediction, "get"), deadline=deadline)
        except ProviderError as exc:
            exc.request_id = exc.request_id or prediction_id
            if isinstance(exc, ProviderTimeout):
                self._cancel(prediction)
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

    def _cancel(self, prediction: Mapping[str, Any]) -> None:
        """Best effort: a cancel that fails must not hide the timeout that caused it."""
        with contextlib.suppress(ProviderError):
            self.http.request(
                "POST",
                self._url(prediction, "cancel"),
                deadline=Deadline(CANCEL_TIMEOUT_S),
                raise_for_status=False,
            )

    def _result(
        self, request: CaptionRequest, prediction: Mapping[str, Any], deadline: Deadline
    ) -> CaptionResult:
        prediction_id = str(prediction["id"])
        status = str(prediction.get("status"))
        raw_excerpt = self.http.excerpt(_json_text(prediction))
        usage: dict[str, float] = {}
        metrics = prediction.get("metrics")
        if isinstance(metrics, Mapping):
            predict_time = metrics.get("predict_time")
            if isinstance(predict_time, int | float) and not isinstance(predict_time, bool):
                usage["predict_time_s"] = float(predict_time)
        cost = self._cost(usage)
        if status != "succeeded":
            error = prediction.get("error")
            detail = (
                error if isinstance(error, str) else ("canceled" if status == "canceled" else "")
            )
            raise ServerError(
                f"Replicate: prediction {status}" + (f": {detail[:300]}" if detail else ""),
                http_status=200,
                request_id=prediction_id,
                raw_excerpt=raw_excerpt,
                cost_usd=cost,
                latency_ms=deadline.elapsed_ms(),
            )
        output = prediction.get("output")
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


def _json_text(payload: Mapping[str, Any]) -> str:
    # The input echoes our data URL; the excerpt keeps only what the call log needs.
    trimmed = {k: v for k, v in payload.items() if k not in ("input", "logs", "urls")}
    return json.dumps(trimmed, sort_keys=True, default=str)
