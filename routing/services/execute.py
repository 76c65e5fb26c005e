"""Producing one caption: claim it, walk its routes (retries, fallbacks, breaker, deadline, budget,
cache), log every attempt, and record the outcome.

At most once: a caption is claimed by one conditional UPDATE (pending -> running), every write
after that is conditional on the same claim, and each attempt number is unique per caption.
Identical requests to a route are answered from the cache or wait for the one in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import random
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from labeling.models import Image
from routing import policy
from routing.models import Caption, CaptionRun, Chain, ChainStep, ModelCall, Route
from routing.providers import CaptionRequest, CaptionResult, PermanentError, ProviderError
from routing.services import breaker, budget, cache, config
from routing.services.routes import route_client, route_cost_estimate

logger = logging.getLogger(__name__)

Outcome = Literal[
    "succeeded",
    "failed",
    "skipped",
    "paused",
    "cancelled",
    "budget",
    "deferred",
    "handed_off",
]
Where = Literal["api", "gpu", "inline"]

RAW_OUTPUT_CHARS = 2000
ERROR_CHARS = 2000


class InternalCallError(ProviderError):
    """Something other than the vendor failed during a call (a bug, a library error)."""

    error_class = "internal"


class RouteConfigError(PermanentError):
    """The route's configuration cannot build a client (unknown model form, bad option)."""

    error_class = "config_error"


@dataclass(slots=True)
class Prepared:
    """An attempt ready to go: its log row is written (in flight) and its budget reserved."""

    route: Route
    call: ModelCall
    request: CaptionRequest
    flight_token: str | None
    cache_key: str
    reserved: Decimal
    started: float


class Execution:
    """The state of one claimed caption walking its routes."""

    def __init__(
        self, caption: Caption, routes: list[Route], *, where: Where, fresh: bool = False
    ) -> None:
        self.caption = caption
        self.routes = routes
        self.where = where
        self.run_id = caption.run_id
        self.use_cache = caption.run.use_cache if caption.run is not None else True
        resume = caption.resume or {}
        self.position = int(resume.get("position", 0))
        self.route_attempt = 0
        self.fallback_reason: str | None = resume.get("reason") or None
        # A caption never claimed before has no call yet; others continue their log's numbering.
        self.attempt_no = 0 if fresh else int(caption.calls.aggregate(n=Max("attempt"))["n"] or 0)
        self.capped = caption.run is not None and caption.run.budget_usd is not None
        assert caption.deadline_at is not None
        self.deadline = time.monotonic() + (caption.deadline_at - timezone.now()).total_seconds()
        self.deadline_s = float(resume.get("deadline_s") or 0) or None
        self.claimed_at = caption.claimed_at
        self.cost = Decimal(caption.cost_usd or 0)
        self.outcome: Outcome | None = None
        self.text = ""
        self.served_route: Route | None = None
        self.served_model = ""
        self.latency_ms: int | None = None
        self.error = ""
        self.last_error = ""
        self.calls_made = 0
        self.breaker_skipped: list[str] = []
        self.delay_s = 0.0
        self.rng = random.Random()
        self._image: tuple[bytes, str] | None = None
        self._unsettled: list[tuple[Decimal, Decimal]] = []
        self._breaker_seen: policy.BreakerState | None = None
        self.finished = False

    # --- helpers --------------------------------------------------------------------------

    @property
    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def image_payload(self) -> tuple[bytes, str]:
        if self._image is None:
            image = self.caption.image
            field = image.display if image.display else image.file
            with field.open("rb") as fh:
                data = fh.read()
            mime = mimetypes.guess_type(field.name or "")[0] or f"image/{image.format.lower()}"
            self._image = (data, mime)
        return self._image

    def params_for(self, route: Route) -> dict[str, object]:
        return {**(route.params or {}), **(self.caption.params or {})}

    def cache_key_for(self, route: Route) -> str:
        return cache.cache_key(
            image_sha256=self.caption.image.sha256,
            route=route,
            task=self.caption.task,
            prompt=self.caption.prompt,
            params=self.params_for(route),
            json_schema=self.caption.json_schema,
        )

    def _fallback(self, reason: str) -> None:
        self.position += 1
        self.route_attempt = 0
        self.fallback_reason = reason

    def _fail(self, error: str) -> None:
        self.outcome = "failed"
        self.error = error[:ERROR_CHARS]

    def _deadline_error(self) -> str:
        seconds = f"{self.deadline_s:g}s " if self.deadline_s else ""
        last = f"; last error: {self.last_error}" if self.last_error else ""
        return f"chain deadline {seconds}passed after {self.calls_made} attempt(s){last}"

    # --- one step -------------------------------------------------------------------------

    def prepare_next(self) -> Prepared | None:
        """The next attempt, ready to call; None when the walk ended (``outcome`` is set) or a
        cached answer was used."""
        while self.outcome is None:
            if self.position >= len(self.routes):
                if self.calls_made == 0 and self.breaker_skipped and not self.last_error:
                    self.outcome = "deferred"
                elif self.breaker_skipped and not self.last_error:
                    self._fail("every route's circuit breaker is open")
                else:
                    self._fail(self.last_error or "no route could be tried")
                return None
            if self.remaining_s <= policy.RetryPolicy().min_attempt_s:
                self._fail(self._deadline_error())
                return None
            route = self.routes[self.position]
            key = self.cache_key_for(route)
            if self.use_cache and self._use_cached(route, key):
                return None
            if route.is_local and self.where == "api":
                self.outcome = "handed_off"
                return None
            allowed, self._breaker_seen = breaker.breaker_check(route_id=route.pk)
            if not allowed:
                self.breaker_skipped.append(route.name)
                self._fallback("breaker_open")
                continue
            return self._start_call(route, key)
        return None

    def _use_cached(self, route: Route, key: str) -> bool:
        hit = cache.cache_lookup(key=key)
        if hit is None:
            return False
        now = timezone.now()
        self.attempt_no += 1
        ModelCall.objects.create(
            caption=self.caption,
            run_id=self.run_id,
            route=route,
            attempt=self.attempt_no,
            route_attempt=self.route_attempt + 1,
            trigger=policy.trigger_for(
                route_attempt=self.route_attempt + 1, fallback_reason=self.fallback_reason
            ),
            status=ModelCall.Status.CACHED,
            started_at=now,
            finished_at=now,
            latency_ms=0,
            cost_usd=Decimal(0),
            cost_source=ModelCall.CostSource.CACHE,
            request_id=hit.request_id,
            served_model=hit.served_model,
            text=hit.text,
            cache_key=key,
            cached_from_id=hit.cached_from_id or hit.pk,
        )
        self._succeed(route=route, text=hit.text, served_model=hit.served_model, latency_ms=0)
        return True

    def _start_call(self, route: Route, key: str) -> Prepared | None:
        route_attempt = self.route_attempt + 1
        timeout_s = policy.attempt_timeout(
            route_timeout_s=route.timeout_s, remaining_s=self.remaining_s
        )
        token: str | None = None
        if self.use_cache:
            token = cache.flight_acquire(key=key, ttl_s=timeout_s + 10)
            if token is None:
                # Someone is paying for the same request right now: wait for their answer.
                cache.flight_wait(key=key, timeout_s=min(self.remaining_s, timeout_s + 10))
                if self._use_cached(route, key):
                    return None
                token = cache.flight_acquire(key=key, ttl_s=timeout_s + 10)
                timeout_s = policy.attempt_timeout(
                    route_timeout_s=route.timeout_s, remaining_s=self.remaining_s
                )
        reserved = Decimal(0)
        # Reserve before every call of a capped run. An uncapped run's first call needs no
        # reservation (the claim just checked the run is running); later tries of the same
        # caption do, so that a pause or a cancel stops retries and fallbacks too.
        if self.run_id is not None and (self.capped or self.calls_made > 0):
            estimate, _ = route_cost_estimate(route)
            reserved = max(estimate or Decimal(0), policy.MICRO_USD)
            if not budget.budget_reserve(run_id=self.run_id, amount=reserved):
                if token:
                    cache.flight_release(key=key, token=token)
                self._stop_for_run()
                return None
        try:
            data, mime = self.image_payload()
            request = CaptionRequest(
                image=data,
                mime_type=mime,
                task=self.caption.task,  # type: ignore[arg-type]
                prompt=self.caption.prompt,
                json_schema=self.caption.json_schema,
                params=self.params_for(route),
                timeout_s=max(timeout_s, 0.001),
            )
        except (OSError, ValueError) as exc:
            if token:
                cache.flight_release(key=key, token=token)
            if self.run_id is not None:
                budget.budget_settle(run_id=self.run_id, reserved=reserved, cost=Decimal(0))
            self._fail(f"cannot read the image or build the request: {exc}")
            return None
        self.route_attempt = route_attempt
        self.attempt_no += 1
        self.calls_made += 1
        call = ModelCall.objects.create(
            caption=self.caption,
            run_id=self.run_id,
            route=route,
            attempt=self.attempt_no,
            route_attempt=route_attempt,
            trigger=policy.trigger_for(
                route_attempt=route_attempt, fallback_reason=self.fallback_reason
            ),
            status=ModelCall.Status.IN_FLIGHT,
            started_at=timezone.now(),
            timeout_s=timeout_s,
            reserved_usd=reserved,
            cache_key=key,
        )
        return Prepared(
            route=route,
            call=call,
            request=request,
            flight_token=token,
            cache_key=key,
            reserved=reserved,
            started=time.monotonic(),
        )

    def _stop_for_run(self) -> None:
        """The budget reservation failed: the run is paused, cancelled or out of budget."""
        assert self.run_id is not None
        status = CaptionRun.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
        if status == CaptionRun.Status.RUNNING:
            budget.budget_stop(run_id=self.run_id)
            self.outcome = "budget"
        elif status == CaptionRun.Status.CANCELLED:
            self.outcome = "cancelled"
        elif status == CaptionRun.Status.BUDGET:
            self.outcome = "budget"
        else:
            self.outcome = "paused"

    def call(self, prepared: Prepared) -> CaptionResult | ProviderError:
        try:
            client = route_client(prepared.route)
        except (ValueError, KeyError, TypeError) as exc:
            return RouteConfigError(f"route {prepared.route.name} is misconfigured: {exc}")
        try:
            return client.caption(prepared.request)
        except ProviderError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - logged, recorded, and the chain moves on
            logger.exception("caption call on route %s crashed", prepared.route.name)
            return InternalCallError(f"internal error: {type(exc).__name__}: {exc}")

    def complete(self, prepared: Prepared, result: CaptionResult | ProviderError) -> None:
        route, call = prepared.route, prepared.call
        now = timezone.now()
        measured_ms = round((time.monotonic() - prepared.started) * 1000)
        if isinstance(result, CaptionResult):
            cost, source = result.cost_usd, result.cost_source
            if cost is None and route.usd_per_call is not None:
                cost, source = route.usd_per_call, "configured"
            updated = ModelCall.objects.filter(
                pk=call.pk, status=ModelCall.Status.IN_FLIGHT
            ).update(
                status=ModelCall.Status.SUCCEEDED,
                finished_at=now,
                latency_ms=result.latency_ms or measured_ms,
                cost_usd=cost,
                cost_source=source,
                request_id=(result.request_id or "")[:200],
                served_model=result.served_model[:200],
                text=result.text,
                raw_output=result.raw_excerpt[:RAW_OUTPUT_CHARS],
                usage=dict(result.usage),
            )
            if not updated:
                return self._lost(prepared)
            self._settle(prepared, cost)
            breaker.breaker_record(route_id=route.pk, failure=False, seen=self._breaker_seen)
            self._release(prepared)
            self._succeed(
                route=route,
                text=result.text,
                served_model=result.served_model,
                latency_ms=result.latency_ms or measured_ms,
            )
            return
        error = result
        cost = error.cost_usd
        updated = ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
            status=ModelCall.Status.FAILED,
            finished_at=now,
            latency_ms=error.latency_ms if error.latency_ms is not None else measured_ms,
            cost_usd=cost,
            cost_source="provider" if cost is not None else "none",
            error_class=error.error_class[:40],
            error=str(error)[:ERROR_CHARS],
            http_status=error.http_status,
            request_id=(error.request_id or "")[:200],
            raw_output=(error.raw_excerpt or "")[:RAW_OUTPUT_CHARS],
        )
        if not updated:
            return self._lost(prepared)
        self._settle(prepared, cost)
        breaker.breaker_record(
            route_id=route.pk, failure=error.error_class in policy.BREAKER_ERROR_CLASSES
        )
        self._release(prepared)
        self.last_error = f"{route.name}: {error.error_class}: {error}"
        decision = policy.decide_after_failure(
            error_class=error.error_class,
            retryable=error.retryable,
            attempt=self.route_attempt,
            retry_after_s=getattr(error, "retry_after_s", None),
            remaining_s=self.remaining_s,
            has_next_route=self.position + 1 < len(self.routes),
            policy=config.retry_policy(max_attempts=route.max_attempts),
            rng=self.rng,
        )
        if decision.action == "retry":
            self.delay_s = decision.delay_s
        elif decision.reason == "deadline":
            self._fail(self._deadline_error())
        else:
            self._fallback(decision.reason)

    def _lost(self, prepared: Prepared) -> None:
        """The sweep took this caption back (our lease ran out): whatever we learnt is dropped,
        the caption is someone else's now."""
        self._release(prepared)
        self.outcome = "skipped"

    def _settle(self, prepared: Prepared, cost: Decimal | None) -> None:
        self.cost += cost or Decimal(0)
        if self.run_id is not None:
            self._unsettled.append((prepared.reserved, cost or Decimal(0)))

    def flush_settlements(self) -> None:
        """Move finished calls from the run's reservations to its spend. Every caption of a run
        updates the same run row, so this is the last statement before a commit: the row lock
        is then held for the commit only, and workers do not queue behind each other."""
        if self.run_id is None or not self._unsettled:
            return
        reserved = sum((r for r, _ in self._unsettled), Decimal(0))
        cost = sum((c for _, c in self._unsettled), Decimal(0))
        self._unsettled.clear()
        budget.budget_settle(run_id=self.run_id, reserved=reserved, cost=cost)

    def _release(self, prepared: Prepared) -> None:
        """Let others waiting on the same request in, once our answer is committed."""
        token = prepared.flight_token
        if token:
            key = prepared.cache_key
            transaction.on_commit(lambda: cache.flight_release(key=key, token=token))

    def _succeed(self, *, route: Route, text: str, served_model: str, latency_ms: int) -> None:
        self.outcome = "succeeded"
        self.text = text
        self.served_route = route
        self.served_model = served_model or route.model
        self.latency_ms = latency_ms

    # --- the whole walk -------------------------------------------------------------------

    def run(self) -> Outcome:
        while self.outcome is None:
            if self.delay_s > 0:
                time.sleep(max(0.0, min(self.delay_s, self.remaining_s)))
                self.delay_s = 0.0
            prepared = self.prepare_next()
            if prepared is not None:
                result = self.call(prepared)
                # The call's row, the run's spend and, when this was the last try, the caption
                # itself are written in one transaction: one commit, and never half of them.
                with transaction.atomic():
                    self.complete(prepared, result)
                    outcome = self.finish() if self.outcome is not None else None
                    self.flush_settlements()
                if outcome is not None:
                    return outcome
        self.flush_settlements()
        return self.finish()

    def finish(self) -> Outcome:
        assert self.outcome is not None
        self.finished = True
        if self.outcome == "skipped":
            return self.outcome
        now = timezone.now()
        mine = Caption.objects.filter(
            pk=self.caption.pk, status=Caption.Status.RUNNING, claimed_at=self.claimed_at
        )
        common = {"lease_until": None, "cost_usd": self.cost}
        if self.outcome == "succeeded":
            assert self.served_route is not None
            updated = mine.update(
                status=Caption.Status.SUCCEEDED,
                text=self.text,
                route=self.served_route,
                model_name=self.served_model[:200],
                latency_ms=self.latency_ms,
                error="",
                finished_at=now,
                resume={},
                **common,
            )
            if updated:
                Image.objects.filter(pk=self.caption.image_id, status=Image.Status.NEW).update(
                    status=Image.Status.CAPTIONED
                )
                # The new text is evidence for the risk flags (a caption saying "x-ray" tips a
                # borderline image): combined off this hot path with the image scores already
                # stored (the file is not analysed again).
                image_id = self.caption.image_id
                transaction.on_commit(lambda: risk_recompute_request(image_id=image_id))
        elif self.outcome == "failed":
            mine.update(
                status=Caption.Status.FAILED,
                error=self.error,
                finished_at=now,
                resume={},
                **common,
            )
        elif self.outcome == "cancelled":
            mine.update(status=Caption.Status.CANCELLED, finished_at=now, resume={}, **common)
        elif self.outcome == "handed_off":
            resume = {
                "position": self.position,
                "reason": self.fallback_reason or "",
                "deadline_s": self.deadline_s,
            }
            if mine.update(status=Caption.Status.PENDING, resume=resume, enqueued_at=now, **common):
                from routing import tasks

                caption_id = self.caption.pk
                transaction.on_commit(lambda: tasks.caption_image_gpu.delay(caption_id=caption_id))
        else:  # paused, budget, deferred: back to pending, to start afresh later
            updated = mine.update(
                status=Caption.Status.PENDING,
                deadline_at=None,
                resume={},
                enqueued_at=now,
                **common,
            )
            if updated and self.outcome == "deferred":
                from routing.services.runs import caption_enqueue

                ids, wait = [self.caption.pk], breaker_wait_s(self.routes)
                transaction.on_commit(lambda: caption_enqueue(caption_ids=ids, countdown=wait))
        if self.run_id is not None and self.outcome in ("succeeded", "failed", "cancelled"):
            # After the commit: the last caption to finish must see every other one finished.
            run_id = self.run_id
            transaction.on_commit(lambda: run_maybe_finish(run_id=run_id))
        return self.outcome


def breaker_wait_s(routes: list[Route]) -> float:
    """How long until the first of these routes' breakers lets a probe through."""
    cfg = config.breaker_config()
    now = time.time()
    waits = []
    for route in routes:
        state = breaker.breaker_state(route_id=route.pk)
        if state.status == "open" and state.opened_at is not None:
            waits.append(state.opened_at + cfg.cooldown_s - now)
        elif state.status == "half_open" and state.probe_started_at is not None:
            waits.append(state.probe_started_at + cfg.probe_timeout_s - now)
    return max(1.0, min(waits, default=cfg.cooldown_s))


_FINISH_RUN_SQL = """
UPDATE routing_captionrun SET status = 'finished', finished_at = %s
WHERE id = %s AND status = 'running' AND NOT EXISTS (
    SELECT 1 FROM routing_caption WHERE run_id = %s AND status IN ('pending', 'running')
)
"""


def run_maybe_finish(*, run_id: int) -> bool:
    """A running run whose captions are all settled is finished. Each finishing caption asks after
    its own commit, so the last one to finish always sees the others. One statement (written by
    hand: it runs after every caption), and the run row is only locked when nothing is open."""
    if connection.vendor != "postgresql":
        still_open = Caption.objects.filter(
            run_id=OuterRef("pk"), status__in=(Caption.Status.PENDING, Caption.Status.RUNNING)
        )
        return (
            CaptionRun.objects.filter(pk=run_id, status=CaptionRun.Status.RUNNING)
            .exclude(Exists(still_open))
            .update(status=CaptionRun.Status.FINISHED, finished_at=timezone.now())
            == 1
        )
    with connection.cursor() as cursor:
        cursor.execute(_FINISH_RUN_SQL, [timezone.now(), run_id, run_id])
        return cursor.rowcount == 1


# --- claiming ------------------------------------------------------------------------------


# What producing a caption reads. Loaded with one hand-written query on PostgreSQL: building this
# SELECT through the ORM cost more CPU than the vendor call itself (api workers are CPU-bound).
_CLAIM_SQL = """
SELECT c.id, c.status, c.image_id, c.chain_id, c.target_route_id, c.run_id, c.task, c.prompt,
       c.params, c.json_schema, c.resume, c.deadline_at, c.claimed_at, c.cost_usd,
       i.file, i.display, i.sha256, i.format, r.status, r.budget_usd, r.use_cache, ch.deadline_s
FROM routing_caption c
JOIN labeling_image i ON i.id = c.image_id
LEFT JOIN routing_captionrun r ON r.id = c.run_id
LEFT JOIN routing_chain ch ON ch.id = c.chain_id
WHERE c.id = %s
"""
_CLAIM_UPDATE_SQL = """
UPDATE routing_caption SET status = 'running', claimed_at = %s, deadline_at = %s, lease_until = %s
WHERE id = %s AND status = 'pending'
"""
CLAIM_FIELDS = (
    "id", "image_id", "status", "chain_id", "target_route_id", "run_id", "task", "prompt",
    "params", "json_schema", "resume", "deadline_at", "claimed_at", "cost_usd",
    *(f"image__{name}" for name in ("id", "file", "display", "sha256", "format")),
    *(f"run__{name}" for name in ("id", "status", "budget_usd", "use_cache")),
    *(f"chain__{name}" for name in ("id", "deadline_s")),
)  # fmt: skip


def _json(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _load_for_claim(caption_id: int) -> Caption | None:
    if connection.vendor != "postgresql":
        return (
            Caption.objects.select_related("image", "run", "chain")
            .only(*CLAIM_FIELDS)
            .filter(pk=caption_id)
            .first()
        )
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [caption_id])
        row = cursor.fetchone()
    if row is None:
        return None
    (pk, status, image_id, chain_id, route_id, run_id, task, prompt, params, schema, resume,
     deadline_at, claimed_at, cost, file, display, sha256, fmt, run_status, run_budget,
     run_cache, chain_deadline) = row  # fmt: skip
    caption = Caption(
        id=pk, status=status, image_id=image_id, chain_id=chain_id, target_route_id=route_id,
        run_id=run_id, task=task, prompt=prompt, params=_json(params) or {},
        json_schema=_json(schema), resume=_json(resume) or {}, deadline_at=deadline_at,
        claimed_at=claimed_at, cost_usd=cost,
    )  # fmt: skip
    caption.image = Image(id=image_id, file=file, display=display, sha256=sha256, format=fmt)
    if run_id is not None:
        caption.run = CaptionRun(
            id=run_id, status=run_status, budget_usd=run_budget, use_cache=run_cache
        )
    if chain_id is not None:
        caption.chain = Chain(id=chain_id, deadline_s=chain_deadline)
    return caption


def _claim_update(
    caption_id: int, *, now: datetime, deadline_at: datetime, lease: datetime
) -> bool:
    if connection.vendor != "postgresql":
        return bool(
            Caption.objects.filter(pk=caption_id, status=Caption.Status.PENDING).update(
                status=Caption.Status.RUNNING, claimed_at=now, deadline_at=deadline_at,
                lease_until=lease,
            )
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_UPDATE_SQL, [now, deadline_at, lease, caption_id])
        return cursor.rowcount == 1


_ROUTE_CACHE_S = 2.0
_route_cache: dict[tuple[str, int], tuple[float, list[Route]]] = {}
_route_cache_lock = threading.Lock()


def caption_routes(caption: Caption) -> list[Route]:
    """The routes to walk, in order. Cached per process for two seconds: a route or chain edit
    reaches running workers that quickly, and a busy worker does not re-read them per caption."""
    if caption.chain_id is not None:
        key = ("chain", caption.chain_id)
    elif caption.target_route_id is not None:
        key = ("route", caption.target_route_id)
    else:
        return []
    now = time.monotonic()
    with _route_cache_lock:
        hit = _route_cache.get(key)
    if hit is not None and now - hit[0] < _ROUTE_CACHE_S:
        return hit[1]
    if key[0] == "chain":
        steps = (
            ChainStep.objects.filter(chain_id=key[1], route__enabled=True)
            .select_related("route")
            .order_by("position")
        )
        routes = [step.route for step in steps]
    else:
        routes = list(Route.objects.filter(pk=key[1]))
    with _route_cache_lock:
        _route_cache[key] = (now, routes)
    return routes


def _deadline_s(caption: Caption, routes: list[Route]) -> float:
    if caption.chain_id is not None and caption.chain is not None:
        return min(caption.chain.deadline_s, config.max_deadline_s())
    if not routes:
        return 0.0
    route = routes[0]
    return config.single_route_deadline_s(
        timeout_s=route.timeout_s, max_attempts=route.max_attempts
    )


def caption_claim(*, caption_id: int, where: Where) -> Execution | Outcome:
    """Take a pending caption for this worker, or say why not."""
    caption = _load_for_claim(caption_id)
    if caption is None or caption.status != Caption.Status.PENDING:
        return "skipped"
    run = caption.run
    if run is not None and run.status != CaptionRun.Status.RUNNING:
        stopped: dict[str, Outcome] = {
            CaptionRun.Status.CANCELLED: "cancelled",
            CaptionRun.Status.BUDGET: "budget",
        }
        return stopped.get(run.status, "paused")
    routes = caption_routes(caption)
    now = timezone.now()
    deadline_s = _deadline_s(caption, routes)
    resumed = bool(caption.resume) and caption.deadline_at is not None
    deadline_at: datetime = caption.deadline_at if resumed else now + timedelta(seconds=deadline_s)  # type: ignore[assignment]
    lease = deadline_at + timedelta(seconds=config.lease_margin_s())
    if not _claim_update(caption_id, now=now, deadline_at=deadline_at, lease=lease):
        return "skipped"
    fresh = caption.claimed_at is None
    caption.status = Caption.Status.RUNNING
    caption.claimed_at = now
    caption.deadline_at = deadline_at
    if not resumed:
        caption.resume = {"deadline_s": deadline_s}
    execution = Execution(caption, routes, where=where, fresh=fresh)
    if not routes:
        execution._fail("no enabled route to ask: the chain is empty or its routes are disabled")
    return execution


def caption_execute(*, caption_id: int, where: Where = "api") -> Outcome:
    """Produce one caption (the body of the caption tasks and of the caption command)."""
    claimed = caption_claim(caption_id=caption_id, where=where)
    if isinstance(claimed, str):
        return claimed
    with _guard([claimed]):
        return claimed.run()


def caption_execute_batch(*, caption_ids: list[int], where: Where = "gpu") -> dict[int, Outcome]:
    """Produce several captions; first attempts on the same local route share one batched
    ``generate()``. Retries and fallbacks then continue one caption at a time."""
    outcomes: dict[int, Outcome] = {}
    executions: list[Execution] = []
    for caption_id in caption_ids:
        claimed = caption_claim(caption_id=caption_id, where=where)
        if isinstance(claimed, str):
            outcomes[caption_id] = claimed
        else:
            executions.append(claimed)
    with _guard(executions):
        groups: dict[int, list[tuple[Execution, Prepared]]] = {}
        for execution in executions:
            prepared = execution.prepare_next()
            if prepared is None:
                continue
            if prepared.route.is_local:
                groups.setdefault(prepared.route.pk, []).append((execution, prepared))
            else:
                execution.complete(prepared, execution.call(prepared))
                execution.flush_settlements()
        for items in groups.values():
            _complete_batch(items)
        for execution in executions:
            outcomes[execution.caption.pk] = execution.run()
    return outcomes


@contextlib.contextmanager
def _guard(executions: list[Execution]) -> Iterator[None]:
    """Never leave a claimed caption "running" because of our own bug: record the error on every
    caption not finished yet, then let the exception propagate to the task's log."""
    try:
        yield
    except Exception as exc:
        logger.exception("captioning crashed")
        message = f"internal error: {type(exc).__name__}: {exc}"
        for execution in executions:
            if execution.finished:
                continue
            calls_abandon(caption_id=execution.caption.pk, error=message)
            execution.outcome = None
            execution._fail(message)
            execution.finish()
        raise


def calls_abandon(*, caption_id: int, error: str, status: str = ModelCall.Status.FAILED) -> int:
    """Close the caption's calls still marked in flight (their worker crashed or died). Their
    reservation is counted as spent at its estimate: the vendor may have billed them."""
    now = timezone.now()
    closed = 0
    for call in ModelCall.objects.filter(caption_id=caption_id, status=ModelCall.Status.IN_FLIGHT):
        updated = ModelCall.objects.filter(pk=call.pk, status=ModelCall.Status.IN_FLIGHT).update(
            status=status,
            finished_at=now,
            error_class="internal" if status == ModelCall.Status.FAILED else "worker_lost",
            error=error[:ERROR_CHARS],
            cost_usd=call.reserved_usd,
            cost_source=ModelCall.CostSource.ESTIMATED,
        )
        if updated and call.run_id is not None:
            budget.budget_settle(
                run_id=call.run_id, reserved=call.reserved_usd, cost=call.reserved_usd
            )
        closed += updated
    return closed


def _complete_batch(items: list[tuple[Execution, Prepared]]) -> None:
    route = items[0][1].route
    results: list[CaptionResult | ProviderError]
    try:
        client = route_client(route)
        results = client.caption_batch([prepared.request for _, prepared in items])
    except ProviderError as exc:
        results = [exc] * len(items)
    except Exception as exc:  # noqa: BLE001 - logged; every caption of the batch records it
        logger.exception("batched caption call on route %s crashed", route.name)
        results = [InternalCallError(f"internal error: {type(exc).__name__}: {exc}")] * len(items)
    if len(results) != len(items):
        results = [InternalCallError("the batch returned a wrong number of results")] * len(items)
    for (execution, prepared), result in zip(items, results, strict=True):
        execution.complete(prepared, result)
        execution.flush_settlements()


# --- risk flags after captioning ------------------------------------------------------------

_risk_pending: ContextVar[list[int] | None] = ContextVar("risk_pending", default=None)


def risk_recompute_request(*, image_id: int) -> None:
    """Ask for the image's risk flags with its new caption: one message now, or one for the
    whole batch when inside ``risk_recompute_batched()`` (a message costs a worker about as
    much CPU as the rest of a caption's bookkeeping)."""
    pending = _risk_pending.get()
    if pending is not None:
        pending.append(image_id)
        return
    from review import tasks as review_tasks

    review_tasks.risk_flags_compute.delay(image_id=image_id, reanalyse=False)


@contextlib.contextmanager
def risk_recompute_batched() -> Iterator[None]:
    """Collect the recompute requests of several captions and send them as one message."""
    token = _risk_pending.set([])
    try:
        yield
    finally:
        image_ids = sorted(set(_risk_pending.get() or []))
        _risk_pending.reset(token)
        if image_ids:
            from review import tasks as review_tasks

            review_tasks.risk_flags_compute_many.delay(image_ids=image_ids, reanalyse=False)
