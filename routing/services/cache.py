"""Request identity, the result cache and single-flight locks.

Two requests are identical when they send the same image bytes to the same route (provider,
model, options, base URL) with the same task, prompt, parameters and schema. A succeeded call is
the cache: an identical request reuses its text instead of paying again. While one worker calls
the vendor for a request, others asking the same wait for its result (single flight), so two
concurrent identical requests are paid once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from routing.models import ModelCall, Route
from routing.services.store import get_store

logger = logging.getLogger(__name__)
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def _digest(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def request_key(
    *,
    image_id: int,
    chain_id: int | None,
    route_id: int | None,
    task: str,
    prompt: str,
    params: Mapping[str, Any],
    json_schema: Any = None,
) -> str:
    """Identity of a caption request: at most one live caption per key (unique constraint)."""
    return _digest(
        {
            "image": image_id,
            "chain": chain_id,
            "route": route_id,
            "task": task,
            "prompt": prompt,
            "params": params,
            "schema": json_schema,
        }
    )


def cache_key(
    *,
    image_sha256: str,
    route: Route,
    task: str,
    prompt: str,
    params: Mapping[str, Any],
    json_schema: Any = None,
) -> str:
    return _digest(
        {
            "image": image_sha256,
            "route": route.pk,
            "provider": route.provider,
            "model": route.model,
            "config": route.config,
            "base_url": route.base_url,
            "task": task,
            "prompt": prompt,
            "params": params,
            "schema": json_schema,
        }
    )


def cache_lookup(*, key: str) -> ModelCall | None:
    return (
        ModelCall.objects.filter(cache_key=key, status=ModelCall.Status.SUCCEEDED)
        .order_by("-id")
        .first()
    )


def _flight(key: str) -> str:
    return f"flight:{key}"


def flight_acquire(*, key: str, ttl_s: float) -> str | None:
    """Take the right to call the vendor for ``key``; the token to release it, or None.
    With Redis unreachable the right is granted: two identical requests may both be sent,
    which beats failing them."""
    token = uuid.uuid4().hex
    try:
        return token if get_store().acquire(_flight(key), token, ttl_s=ttl_s) else None
    except _UNREACHABLE as exc:
        logger.warning("single-flight lock unreachable (%s); calling without it", exc)
        return token


def flight_release(*, key: str, token: str) -> None:
    try:
        get_store().release(_flight(key), token)
    except _UNREACHABLE as exc:
        logger.warning("single-flight lock unreachable (%s); it expires by itself", exc)


def flight_wait(*, key: str, timeout_s: float, poll_s: float = 0.05) -> None:
    """Wait until nobody holds ``key`` (the holder finished or its lock expired)."""
    store = get_store()
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end and store.get(_flight(key)) is not None:
            time.sleep(poll_s)
    except _UNREACHABLE as exc:
        logger.warning("single-flight lock unreachable (%s); not waiting for it", exc)
