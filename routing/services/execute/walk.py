"""Walking a claimed caption's routes: cache, breaker, budget, the call, then retry, fall back or
finish, and the caption's final state.

The decisions themselves (retry or fall back, backoff, timeouts, breaker transitions) are pure
functions in ``routing.policy``; the rows and the money are ``ledger``'s; the request is fitted
to its provider by ``request``. This module is the loop that ties them together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import redis
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from labeling.models import Image
from routing import hooks, policy
from routing.models import Caption, CaptionRun, ModelCall, Route
from routing.providers import (
    CaptionRequest,
    CaptionResult,
    PermanentError,
    Provider,
    ProviderError,
)
from routing.services import breaker, budget, cache, config
from routing.services.execute import ledger
from routing.services.execute.claim import Outcome, Where, caption_claim
from routing.services.execute.request import (
    FittedRequest,
    ImagePayload,
    image_payload_read,
    request_build,
    request_cache_key,
)
from routing.services.routes import route_client, route_cost_estimate

logger = logging.getLogger(__name__)

ERROR_CHARS = ledger.ERROR_CHARS


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
    #: None when the route's client cannot be built: ``request`` is then the error to record.
    client: Provider | None
    request: CaptionRequest | ProviderError
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
        self.position = int(resume.get("position") or 0)
        self.route_attempt = 0
        self.fallback_reason: str | None = resume.get("reason") or None
        #: A vendor request a dead worker left running: picked up, not started again.
        self.resume_call_id: int | None = resume.get("call_id")
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
        self._image: ImagePayload | None = None
        self.settlements = ledger.Settlements(run_id=self.run_id)
        self._notes: tuple[str, ...] = ()
        self._fitted: dict[int, FittedRequest] = {}
        self._breaker_seen: policy.BreakerState | None = None
        self.finished = False

    # --- helpers --------------------------------------------------------------------------

    @property
    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def image_payload(self) -> ImagePayload:
        if self._image is None:
            self._image = image_payload_read(self.caption)
        return self._image

    def _fallback(self, reason: str) -> None:
        self.position += 1
        self.route_attempt = 0
        self.fallback_reason = reason

    def fail(self, error: str) -> None:
        self.outcome = "failed"
        self.error = error[:ERROR_CHARS]

    def _deadline_error(self) -> str:
        seconds = f"{self.deadline_s:g}s " if self.deadline_s else ""
        last = f"; last error: {self.last_error}" if self.last_error else ""
        return f"chain deadline {seconds}passed after {self.calls_made} attempt(s){last}"

    def _trigger(self, route_attempt: int) -> str:
        return policy.trigger_for(route_attempt=route_attempt, fallback_reason=self.fallback_reason)

    # --- one step -------------------------------------------------------------------------

    def prepare_next(self) -> Prepared | None:
        """The next attempt, ready to call; None when the walk ended (``outcome`` is set) or a
        cached answer was used."""
        if self.resume_call_id is not None:
            prepared = self._resume_call()
            if prepared is not None:
                return prepared
        while self.outcome is None:
            if self.position >= len(self.routes):
                if self.calls_made == 0 and self.breaker_skipped and not self.last_error:
                    self.outcome = "deferred"
                elif self.breaker_skipped and not self.last_error:
                    self.fail("every route's circuit breaker is open")
                else:
                    self.fail(self.last_error or "no route could be tried")
                return None
            if self.remaining_s <= policy.RetryPolicy().min_attempt_s:
                self.fail(self._deadline_error())
                return None
            route = self.routes[self.position]
            key = request_cache_key(self.caption, route)
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

    def _resume_call(self) -> Prepared | None:
        """Pick up the vendor request a dead worker left running (its id was stored as soon as
        the vendor answered the create call): poll it to the end instead of paying for another.
        """
        call_id, self.resume_call_id = self.resume_call_id, None
        call = (
            ModelCall.objects.select_related("route")
            .filter(pk=call_id, caption_id=self.caption.pk, status=ModelCall.Status.IN_FLIGHT)
            .first()
        )
        if call is None:
            return None
        index = next((i for i, r in enumerate(self.routes) if r.pk == call.route_id), None)
        if index is None or not call.request_id:
            ledger.calls_abandon(
                caption_id=self.caption.pk,
                error="the worker died during this call; the provider may have billed it",
                status=ModelCall.Status.LOST,
            )
            self.cost = ledger.caption_cost(self.caption.pk)
            return None
        route = self.routes[index]
        self.position = index
        self.route_attempt = call.route_attempt
        self.calls_made += 1
        timeout_s = policy.attempt_timeout(
            route_timeout_s=route.timeout_s, remaining_s=self.remaining_s
        )
        client, request = self._client_and_request(route, timeout_s=timeout_s)
        if not isinstance(request, CaptionRequest):
            self._close_unstartable(call, request)
            return None
        assert client is not None
        request = dataclasses.replace(request, resume_request_id=call.request_id, on_submitted=None)
        return Prepared(
            route=route,
            call=call,
            client=client,
            request=request,
            flight_token=None,
            cache_key=call.cache_key,
            reserved=call.reserved_usd,
            started=time.monotonic(),
        )

    def _use_cached(self, route: Route, key: str) -> bool:
        hit = cache.cache_lookup(key=key)
        if hit is None:
            return False
        self.attempt_no += 1
        ledger.call_cached(
            caption=self.caption,
            route=route,
            attempt=self.attempt_no,
            route_attempt=self.route_attempt + 1,
            trigger=self._trigger(self.route_attempt + 1),
            hit=hit,
            cache_key=key,
        )
        self._succeed(route=route, text=hit.text, served_model=hit.served_model, latency_ms=0)
        return True

    def _client_and_request(
        self, route: Route, *, timeout_s: float
    ) -> tuple[Provider | None, CaptionRequest | ProviderError | ValueError]:
        """The route's client and the request fitted to it, or (None, the error that stops this
        attempt)."""
        try:
            client = route_client(route)
        except (ValueError, KeyError, TypeError) as exc:
            return None, RouteConfigError(f"route {route.name} is misconfigured: {exc}")
        fitted = self._fitted.get(route.pk)
        if fitted is None:
            try:
                fitted = request_build(
                    caption=self.caption,
                    route=route,
                    client=client,
                    payload=self.image_payload(),
                    timeout_s=timeout_s,
                )
            except (OSError, ValueError) as exc:
                return None, ValueError(f"cannot read the image or build the request: {exc}")
            # retries of the route send the same bytes: fitting a large image to a 256 KB cap
            # costs a second or two of CPU
            self._fitted[route.pk] = fitted
        self._notes = fitted.notes
        return client, dataclasses.replace(fitted.request, timeout_s=max(timeout_s, 0.001))

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
        estimate, _ = route_cost_estimate(route)
        reserved = Decimal(0)
        # Reserve before every call of a capped run. An uncapped run's first call needs no
        # reservation (the claim just checked the run is running); later tries of the same
        # caption do, so that a pause or a cancel stops retries and fallbacks too.
        if self.run_id is not None and (self.capped or self.calls_made > 0):
            reserved = max(estimate or Decimal(0), policy.MICRO_USD)
            if not budget.budget_reserve(run_id=self.run_id, amount=reserved):
                if token:
                    cache.flight_release(key=key, token=token)
                self._stop_for_run()
                return None
        self._notes = ()
        client, request = self._client_and_request(route, timeout_s=timeout_s)
        if isinstance(request, ValueError):
            if token:
                cache.flight_release(key=key, token=token)
            if self.run_id is not None and reserved:
                budget.budget_settle(run_id=self.run_id, reserved=reserved, cost=Decimal(0))
            self.fail(str(request))
            return None
        self.route_attempt = route_attempt
        self.attempt_no += 1
        self.calls_made += 1
        call = ledger.call_open(
            caption=self.caption,
            route=route,
            attempt=self.attempt_no,
            route_attempt=route_attempt,
            trigger=self._trigger(route_attempt),
            timeout_s=timeout_s,
            reserved=reserved,
            estimate=estimate,
            cache_key=key,
            notes=self._notes,
        )
        if isinstance(request, CaptionRequest):
            call_id = call.pk
            request = dataclasses.replace(
                request,
                on_submitted=lambda request_id: ledger.call_submitted(
                    call_id=call_id, request_id=request_id
                ),
            )
        return Prepared(
            route=route,
            call=call,
            client=client,
            request=request,
            flight_token=token,
            cache_key=key,
            reserved=reserved,
            started=time.monotonic(),
        )

    def _close_unstartable(self, call: ModelCall, error: Exception) -> None:
        """A picked-up call whose request cannot be rebuilt: closed at its estimate."""
        ledger.calls_abandon(
            caption_id=self.caption.pk, error=str(error), status=ModelCall.Status.LOST
        )
        self.cost = ledger.caption_cost(self.caption.pk)

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
        if prepared.client is None or isinstance(prepared.request, ProviderError):
            assert isinstance(prepared.request, ProviderError)
            return prepared.request
        try:
            return prepared.client.caption(prepared.request)
        except ProviderError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - logged, recorded, and the chain moves on
            logger.exception("caption call on route %s crashed", prepared.route.name)
            return InternalCallError(f"internal error: {type(exc).__name__}: {exc}")

    def complete(self, prepared: Prepared, result: CaptionResult | ProviderError) -> None:
        route, call = prepared.route, prepared.call
        measured_ms = round((time.monotonic() - prepared.started) * 1000)
        if isinstance(result, CaptionResult):
            latency_ms = result.latency_ms or measured_ms
            won, cost = ledger.call_close_success(
                call=call, route=route, result=result, latency_ms=latency_ms
            )
            if not won:
                return self._lost(prepared)
            self._settle(prepared, cost)
            breaker.breaker_record(route_id=route.pk, failure=False, seen=self._breaker_seen)
            self._release(prepared)
            self._succeed(
                route=route,
                text=result.text,
                served_model=result.served_model,
                latency_ms=latency_ms,
            )
            return
        error = result
        won, cost = ledger.call_close_failure(call=call, error=error, latency_ms=measured_ms)
        if not won:
            return self._lost(prepared)
        self._settle(prepared, cost)
        breaker.breaker_record(
            route_id=route.pk,
            failure=error.error_class in policy.BREAKER_ERROR_CLASSES,
            seen=self._breaker_seen,
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
            self.fail(self._deadline_error())
        else:
            self._fallback(decision.reason)

    def _lost(self, prepared: Prepared) -> None:
        """The sweep took this caption back (our lease ran out): whatever we learnt is dropped,
        the caption is someone else's now."""
        self._release(prepared)
        self.outcome = "skipped"

    def _settle(self, prepared: Prepared, cost: Decimal | None) -> None:
        self.cost += cost or Decimal(0)
        self.settlements.add(reserved=prepared.reserved, cost=cost)

    def flush_settlements(self) -> None:
        self.settlements.flush()

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
            self._finish_succeeded(mine, now, common)
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
            transaction.on_commit(lambda: ledger.run_maybe_finish(run_id=run_id))
        return self.outcome

    def _finish_succeeded(
        self, mine: QuerySet[Caption], now: datetime, common: Mapping[str, object]
    ) -> None:
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
            # Whoever reacts to new captions (review: the words are evidence for the risk
            # flags) hears of it after the commit, off this hot path.
            image_ids = [self.caption.image_id]
            transaction.on_commit(lambda: hooks.captions_succeeded(image_ids=image_ids))


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


# --- entry points ---------------------------------------------------------------------------


def caption_execute(*, caption_id: int, where: Where = "api") -> Outcome:
    """Produce one caption (the body of the caption tasks and of the caption command)."""
    claimed = caption_claim(caption_id=caption_id, where=where)
    if isinstance(claimed, str):
        return claimed  # type: ignore[return-value]
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
            outcomes[caption_id] = claimed  # type: ignore[assignment]
        else:
            executions.append(claimed)
    with _guard(executions):
        groups: dict[int, list[tuple[Execution, Prepared]]] = {}
        for execution in executions:
            prepared = execution.prepare_next()
            if prepared is None:
                continue
            if prepared.route.is_local and prepared.client is not None:
                groups.setdefault(prepared.route.pk, []).append((execution, prepared))
            else:
                execution.complete(prepared, execution.call(prepared))
                execution.flush_settlements()
        for items in groups.values():
            _complete_batch(items)
        for execution in executions:
            outcomes[execution.caption.pk] = execution.run()
    return outcomes


#: The database or Redis went away under the worker (a restart, a failover, a terminated
#: connection): not the caption's fault, and nothing can be recorded reliably meanwhile.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    BrokerError,
)


@contextlib.contextmanager
def _guard(executions: list[Execution]) -> Iterator[None]:
    """Never leave a claimed caption "running" because of our own bug: record the error on every
    caption not finished yet, then let the exception propagate to the task's log.

    An infrastructure error is different: the caption is left running under its lease, and the
    sweep takes it back when the lease ends, exactly as after a worker that died (a vendor
    request already made is resumed or logged as lost, never made again unseen). Failing it
    here would turn a database restart into failed captions."""
    try:
        yield
    except INFRASTRUCTURE_ERRORS:
        logger.warning(
            "captioning interrupted by the database or Redis going away; the sweep takes "
            "captions %s back when their leases end",
            [e.caption.pk for e in executions if not e.finished],
            exc_info=True,
        )
        raise
    except Exception as exc:
        logger.exception("captioning crashed")
        message = f"internal error: {type(exc).__name__}: {exc}"
        for execution in executions:
            if execution.finished:
                continue
            ledger.calls_abandon(caption_id=execution.caption.pk, error=message)
            execution.cost = ledger.caption_cost(execution.caption.pk)
            execution.outcome = None
            execution.fail(message)
            execution.finish()
        raise


def _complete_batch(items: list[tuple[Execution, Prepared]]) -> None:
    route = items[0][1].route
    client = items[0][1].client
    assert client is not None
    results: list[CaptionResult | ProviderError]
    try:
        requests = [p.request for _, p in items if isinstance(p.request, CaptionRequest)]
        results = client.caption_batch(requests)
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
