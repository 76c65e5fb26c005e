"""Routing settings, read in one place with their defaults (the lead documents them in
``.env.example``)."""

from __future__ import annotations

from django.conf import settings

from routing.policy import BreakerConfig, RetryPolicy


def _get(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def retry_policy(*, max_attempts: int) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max(1, max_attempts),
        base_delay_s=_get("ROUTING_BACKOFF_BASE_S", 0.5),
        max_delay_s=_get("ROUTING_BACKOFF_MAX_S", 20.0),
        max_retry_after_s=_get("ROUTING_MAX_RETRY_AFTER_S", 30.0),
    )


def breaker_config() -> BreakerConfig:
    return BreakerConfig(
        failure_threshold=int(_get("ROUTING_BREAKER_FAILURES", 5)),
        failure_rate=_get("ROUTING_BREAKER_FAILURE_RATE", 0.5),
        window=int(_get("ROUTING_BREAKER_WINDOW", 20)),
        min_calls=int(_get("ROUTING_BREAKER_MIN_CALLS", 10)),
        cooldown_s=_get("ROUTING_BREAKER_COOLDOWN_S", 30.0),
        probe_timeout_s=_get("ROUTING_BREAKER_PROBE_TIMEOUT_S", 120.0),
    )


def redis_prefix() -> str:
    return str(getattr(settings, "ROUTING_REDIS_PREFIX", "captiondesk:routing:"))


def lease_margin_s() -> float:
    """How long past its chain deadline a claimed caption may stay "running" before the sweep
    decides its worker died."""
    return _get("ROUTING_LEASE_MARGIN_S", 60.0)


def max_deadline_s() -> float:
    """Upper bound of any chain deadline; task time limits and the broker's visibility timeout
    sit above it."""
    return _get("ROUTING_MAX_DEADLINE_S", 600.0)


def single_route_deadline_s(*, timeout_s: float, max_attempts: int) -> float:
    """Deadline of a caption asked of one route (comparison runs, the caption command)."""
    return min(max_deadline_s(), timeout_s * max(1, max_attempts) + 30.0)


def poison_limit() -> int:
    """Captions whose worker died this many times are failed instead of re-enqueued."""
    return int(_get("ROUTING_POISON_LIMIT", 3))


def requeue_after_s() -> float:
    """Pending captions of a running run enqueued longer ago than this are enqueued again."""
    return _get("ROUTING_REQUEUE_AFTER_S", 3600.0)


def requeue_idle_after_s() -> float:
    """When the captioning queues are empty, pending captions enqueued longer ago than this have
    lost their message (a Redis restart without persistence): enqueued again at once, not after
    ``requeue_after_s``."""
    return _get("ROUTING_REQUEUE_IDLE_AFTER_S", 120.0)


def api_batch_size(count: int) -> int:
    """Captions per api message for ``count`` captions: one while there are few (every worker
    thread gets work at once), up to ``ROUTING_API_BATCH_MAX`` (4) past 64 captions."""
    most = max(1, int(_get("ROUTING_API_BATCH_MAX", 4)))
    return max(1, min(most, count // 64))


def gpu_batch_size() -> int:
    return int(_get("ROUTING_GPU_BATCH_SIZE", 8))
