"""Circuit breaker per route, its state shared by every worker through the store (Redis).

The state machine is ``routing.policy``'s; this module only loads, applies and saves it
atomically.

While Redis is unreachable a worker's checks and records degrade instead of failing the caption:
the breaker is taken as closed and what it would have counted is dropped (logged). The routes
page reads ``breaker_state`` itself and shows the state as unknown.
"""

from __future__ import annotations

import logging
import time

import redis

from routing import policy
from routing.services.config import breaker_config
from routing.services.store import get_store

STATE_TTL_S = 24 * 3600
logger = logging.getLogger(__name__)
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def _key(route_id: int) -> str:
    return f"breaker:{route_id}"


def breaker_state(*, route_id: int) -> policy.BreakerState:
    return policy.breaker_loads(get_store().get(_key(route_id)))


def breaker_allow(*, route_id: int, now: float | None = None) -> bool:
    """May a call go to the route now? Takes the half-open probe slot when it is free."""
    return breaker_check(route_id=route_id, now=now)[0]


def breaker_check(*, route_id: int, now: float | None = None) -> tuple[bool, policy.BreakerState]:
    """``breaker_allow`` plus the state to hand to ``breaker_record`` as ``seen``: the state read,
    or, when this call took the half-open probe slot, the state with its probe mark (only the
    probe's outcome may close or re-open the breaker). Redis unreachable: allowed, as closed."""
    try:
        return _breaker_check(route_id=route_id, now=now)
    except _UNREACHABLE as exc:
        logger.warning(
            "route %s: breaker state unreachable (%s); calling as if closed", route_id, exc
        )
        return True, policy.BreakerState()


def _breaker_check(*, route_id: int, now: float | None) -> tuple[bool, policy.BreakerState]:
    now = time.time() if now is None else now
    config = breaker_config()
    state = breaker_state(route_id=route_id)
    if state.status == "closed":
        return True, state
    if not policy.breaker_allow(state, now=now, config=config)[0]:
        return False, state
    allowed = False
    after = state

    def apply(raw: bytes | None) -> str:
        nonlocal allowed, after
        allowed, after = policy.breaker_allow(policy.breaker_loads(raw), now=now, config=config)
        return policy.breaker_dumps(after)

    get_store().update(_key(route_id), apply, ttl_s=STATE_TTL_S)
    return allowed, after


def breaker_record(
    *,
    route_id: int,
    failure: bool,
    now: float | None = None,
    seen: policy.BreakerState | None = None,
) -> policy.BreakerState:
    """Count a finished call. ``seen``: what ``breaker_check`` returned before the call; a
    success that would not change it (a healthy route) then costs no round trip at all, and
    only the call that took the half-open probe slot decides the probe. Redis unreachable: the
    call is not counted (the answer the vendor gave is kept all the same)."""
    try:
        return _breaker_record(route_id=route_id, failure=failure, now=now, seen=seen)
    except _UNREACHABLE as exc:
        logger.warning("route %s: breaker state unreachable (%s); call not counted", route_id, exc)
        return seen if seen is not None else policy.BreakerState()


def _breaker_record(
    *,
    route_id: int,
    failure: bool,
    now: float | None,
    seen: policy.BreakerState | None,
) -> policy.BreakerState:
    now = time.time() if now is None else now
    probe = seen.probe_started_at if seen is not None and seen.status == "half_open" else None
    config = breaker_config()
    unchanged = (
        seen is not None
        and not failure
        and seen.status == "closed"
        and policy.breaker_record(seen, failure=False, now=now, config=config) == seen
    )
    if unchanged and seen is not None:
        return seen
    current = breaker_state(route_id=route_id)
    new = policy.breaker_record(current, failure=failure, now=now, config=config, probe=probe)
    if new == current:
        return new  # e.g. one more success on a healthy route: nothing to write
    result = policy.BreakerState()

    def apply(raw: bytes | None) -> str:
        nonlocal result
        result = policy.breaker_record(
            policy.breaker_loads(raw), failure=failure, now=now, config=config, probe=probe
        )
        return policy.breaker_dumps(result)

    get_store().update(_key(route_id), apply, ttl_s=STATE_TTL_S)
    return result


def breaker_reset(*, route_id: int) -> None:
    """Close the breaker by hand (an admin knows the vendor is back)."""
    get_store().delete(_key(route_id))
