"""Testing a route: one call of one route on one image, to see its answer, latency and cost (or
its error) before a run depends on it.

A test runs where that route's captions run (a task on ``api``, or on ``gpu`` for a local model:
the web process never loads a model) and asks the same provider client with a request fitted the
same way (``execute.request``). It makes exactly one call: no retry, no fallback, no cache, and
the circuit breaker is neither asked nor told (only a caption's half-open probe decides it). The
call is logged as a ``ModelCall`` of the test, so what it cost is counted with the route's calls,
but a test is not a ``Caption``: no review queue, metric, export or run figure selects it.

One live test per route (a partial unique constraint); a test nobody answered before its lease
ran out (no worker on the queue, a worker that died) is failed by ``route_tests_expire``.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling import imaging
from routing.models import Caption, ModelCall, Route, RouteTest
from routing.providers import CaptionResult, ProviderError
from routing.services.execute import ledger
from routing.services.execute.request import request_build
from routing.services.execute.walk import InternalCallError, RouteConfigError
from routing.services.routes import route_client, route_cost_estimate

logger = logging.getLogger(__name__)

#: How long a test may wait for a worker to take it, on top of the route's timeout.
QUEUE_WAIT_S = 120.0
#: Margin after the attempt's timeout for the worker to write the answer.
ANSWER_MARGIN_S = 30.0
#: The bundled images a test can use instead of an upload (committed under samples/).
SAMPLES_DIR = Path(settings.BASE_DIR) / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_SAMPLE = "coffee.jpg"
LOST_ERROR = "no worker answered in time (is a worker consuming the {queue} queue?)"


class RouteTestError(Exception):
    """The test cannot start; the message says why in words an admin can act on."""


class RouteTestBusy(RouteTestError):
    pass


def samples_available() -> list[str]:
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def route_test_queue(route: Route) -> str:
    return "gpu" if route.is_local else "api"


@dataclass(frozen=True, slots=True)
class RouteTestImage:
    name: str
    data: bytes | None = None  # an upload; None: the sample called ``name``


def _validated_upload(name: str, data: bytes) -> ContentFile[bytes]:
    try:
        decoded = imaging.decode(
            data,
            max_bytes=settings.INGEST_MAX_BYTES,
            max_pixels=settings.INGEST_MAX_PIXELS,
            max_decoded_bytes=settings.INGEST_MAX_DECODED_BYTES,
        )
    except imaging.ImageRejected as exc:
        raise RouteTestError(f"This file cannot be used: {exc.reason}.") from exc
    suffix = {"JPEG": "jpg", "MPO": "jpg"}.get(decoded.format, decoded.format.lower())
    return ContentFile(data, name=f"{decoded.sha256[:16]}.{suffix}")


def route_test_start(*, route: Route, user: object, image: RouteTestImage) -> RouteTest:
    """Create the test and send it to the route's queue after the commit. Raises
    ``RouteTestBusy`` while another test of the route is live, ``RouteTestError`` for an image
    that cannot be used."""
    upload = None
    if image.data is not None:
        upload = _validated_upload(image.name, image.data)
    elif image.name not in samples_available():
        raise RouteTestError(f"No sample image called {image.name}.")
    route_tests_expire(route_id=route.pk)
    lease = timezone.now() + timedelta(seconds=QUEUE_WAIT_S + route.timeout_s + ANSWER_MARGIN_S)
    try:
        with transaction.atomic():
            test = RouteTest(
                route=route,
                image_name=image.name[:255],
                created_by=user if getattr(user, "pk", None) else None,
                lease_until=lease,
            )
            if upload is not None:
                test.image.save(upload.name or "upload", upload, save=False)
            test.save()
    except IntegrityError as exc:
        if upload is not None and test.image:
            test.image.storage.delete(test.image.name)
        raise RouteTestBusy(
            f"A test of {route.name} is already running: wait for its answer."
        ) from exc
    test_id, queue = test.pk, route_test_queue(route)
    transaction.on_commit(lambda: _enqueue(test_id, queue))
    return test


def _enqueue(test_id: int, queue: str) -> None:
    from routing import tasks

    task = tasks.caption_route_test_gpu if queue == "gpu" else tasks.caption_route_test
    task.delay(test_id=test_id)


def _payload(test: RouteTest) -> tuple[bytes, str]:
    if test.image:
        with test.image.open("rb") as fh:
            data = fh.read()
        name = test.image.name
    else:
        path = SAMPLES_DIR / test.image_name
        data = path.read_bytes()
        name = path.name
    return data, mimetypes.guess_type(name)[0] or "application/octet-stream"


def route_test_execute(*, test_id: int) -> str:
    """The worker's side: take the test (pending -> running, once), make the one call, record
    it. Returns the test's outcome, or "skipped" when someone else took it."""
    now = timezone.now()
    test = RouteTest.objects.select_related("route").filter(pk=test_id).first()
    if test is None:
        return "skipped"
    route = test.route
    lease = now + timedelta(seconds=route.timeout_s + ANSWER_MARGIN_S)
    taken = RouteTest.objects.filter(
        pk=test_id, status=RouteTest.Status.PENDING, lease_until__gt=now
    ).update(status=RouteTest.Status.RUNNING, claimed_at=now, lease_until=lease)
    if not taken:
        return "skipped"
    try:
        client = route_client(route)
    except (ValueError, KeyError, TypeError) as exc:
        return _finish_unstarted(
            test_id, RouteConfigError(f"route {route.name} is misconfigured: {exc}")
        )
    try:
        fitted = request_build(
            caption=Caption(task="caption", prompt="", params={}, json_schema=None),
            route=route,
            client=client,
            payload=_payload(test),
            timeout_s=route.timeout_s,
        )
    except (OSError, ValueError) as exc:
        return _finish_unstarted(
            test_id, ProviderError(f"cannot read the image or build the request: {exc}")
        )
    estimate, _ = route_cost_estimate(route)
    call = ledger.call_open(
        caption=None,
        route_test_id=test_id,
        route=route,
        attempt=1,
        route_attempt=1,
        trigger="route_test",
        timeout_s=route.timeout_s,
        reserved=Decimal(0),
        estimate=estimate,
        cache_key="",
        notes=fitted.notes,
    )
    started = time.monotonic()
    result: CaptionResult | ProviderError
    try:
        result = client.caption(fitted.request)
    except ProviderError as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - recorded on the test, as a caption would
        logger.exception("route test %s on route %s crashed", test_id, route.name)
        result = InternalCallError(f"internal error: {type(exc).__name__}: {exc}")
    measured_ms = round((time.monotonic() - started) * 1000)
    with transaction.atomic():
        if isinstance(result, CaptionResult):
            latency_ms = result.latency_ms or measured_ms
            _, cost = ledger.call_close_success(
                call=call, route=route, result=result, latency_ms=latency_ms
            )
            updated = RouteTest.objects.filter(pk=test_id, status=RouteTest.Status.RUNNING).update(
                status=RouteTest.Status.SUCCEEDED,
                text=result.text,
                served_model=(result.served_model or route.model)[:200],
                latency_ms=latency_ms,
                cost_usd=cost,
                finished_at=timezone.now(),
            )
            return "succeeded" if updated else "skipped"
        latency_ms = result.latency_ms if result.latency_ms is not None else measured_ms
        _, cost = ledger.call_close_failure(call=call, error=result, latency_ms=latency_ms)
        updated = RouteTest.objects.filter(pk=test_id, status=RouteTest.Status.RUNNING).update(
            status=RouteTest.Status.FAILED,
            error_class=result.error_class[:40],
            error=str(result)[: ledger.ERROR_CHARS],
            latency_ms=latency_ms,
            cost_usd=cost,
            finished_at=timezone.now(),
        )
        return "failed" if updated else "skipped"


def _finish_unstarted(test_id: int, error: ProviderError) -> str:
    """No call was made (the client or the request could not be built): nothing was billed."""
    RouteTest.objects.filter(pk=test_id, status=RouteTest.Status.RUNNING).update(
        status=RouteTest.Status.FAILED,
        error_class=error.error_class[:40],
        error=str(error)[: ledger.ERROR_CHARS],
        finished_at=timezone.now(),
    )
    return "failed"


def route_tests_expire(*, route_id: int | None = None) -> int:
    """Fail the live tests whose lease ran out, and close their call (if one was opened) as lost
    at its estimate: the vendor may have billed it."""
    now = timezone.now()
    stale = RouteTest.objects.filter(
        status__in=(RouteTest.Status.PENDING, RouteTest.Status.RUNNING), lease_until__lte=now
    )
    if route_id is not None:
        stale = stale.filter(route_id=route_id)
    expired = 0
    for test in stale.select_related("route"):
        error = LOST_ERROR.format(queue=route_test_queue(test.route))
        with transaction.atomic():
            updated = RouteTest.objects.filter(
                pk=test.pk, status=test.status, lease_until__lte=now
            ).update(
                status=RouteTest.Status.FAILED,
                error_class="worker_lost",
                error=error,
                finished_at=now,
            )
            if not updated:
                continue
            expired += 1
            for call in ModelCall.objects.filter(
                route_test_id=test.pk, status=ModelCall.Status.IN_FLIGHT
            ):
                ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
                    status=ModelCall.Status.LOST,
                    finished_at=now,
                    error_class="worker_lost",
                    error=error,
                    cost_usd=call.estimate_usd,
                    cost_source=ModelCall.CostSource.ESTIMATED,
                )
                RouteTest.objects.filter(pk=test.pk).update(cost_usd=call.estimate_usd)
    return expired
