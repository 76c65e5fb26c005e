"""Pure routing decisions: which chain an image goes to, whether to retry or fall back, how long to
wait, what a call is likely to cost, and how a route's circuit breaker moves between states.

No ORM, no I/O, no clock: callers pass ``now`` and a random generator. Everything here is small,
deterministic given its inputs, and tested without a database.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

# --- chain selection ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSignal:
    """One risk flag of an image (``review.RiskFlag``) as the rules see it."""

    category: str
    score: float
    flagged: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainRuleSpec:
    """Send an image to ``chain_id`` when it carries a flagged risk of ``category`` (empty: any
    category) scored at least ``min_score``. Rules are tried in the order given."""

    chain_id: int
    category: str = ""
    min_score: float = 0.0


def rule_matches(rule: ChainRuleSpec, flags: Sequence[RiskSignal]) -> bool:
    return any(
        flag.flagged
        and flag.score >= rule.min_score
        and (not rule.category or flag.category == rule.category)
        for flag in flags
    )


def choose_chain(
    *, flags: Sequence[RiskSignal], rules: Sequence[ChainRuleSpec], default_chain_id: int | None
) -> int | None:
    """The chain for one image: the first matching rule's chain, else the default."""
    for rule in rules:
        if rule_matches(rule, flags):
            return rule.chain_id
    return default_chain_id


# --- retries and fallbacks ------------------------------------------------------------------

#: Errors that say "this request is wrong or this route is unusable": never retried on the same
#: route; the chain moves on at once.
PERMANENT_ERROR_CLASSES = frozenset(
    {"permanent", "auth_error", "bad_request", "out_of_credits", "weights_unavailable"}
)
#: Errors that count against a route's health (open its breaker). A refusal or a bad request is
#: about one image, not about the route, so it does not.
BREAKER_ERROR_CLASSES = frozenset(
    {
        "transient",
        "timeout",
        "connection_error",
        "server_error",
        "rate_limited",
        "auth_error",
        "out_of_credits",
        "weights_unavailable",
        "provider_error",
        "internal",
        # a Replicate prediction that never started before its Cancel-After deadline: the
        # vendor's queue is too slow for this route's timeout
        "aborted",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``max_attempts`` counts every try on one route, the first included."""

    max_attempts: int = 3
    base_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 20.0
    #: Share of the exponential delay that is randomised (1.0 = "full jitter").
    jitter: float = 0.5
    #: A Retry-After longer than this is not waited for: the chain falls back instead.
    max_retry_after_s: float = 30.0
    #: No attempt starts with less time than this left before the chain deadline.
    min_attempt_s: float = 0.2


Action = Literal["retry", "fallback", "give_up"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    action: Action
    reason: str
    delay_s: float = 0.0


def backoff_delay(
    *, policy: RetryPolicy, attempt: int, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed try number ``attempt`` (1-based) on a route.

    Exponential with jitter; a Retry-After from the vendor is a floor, and a little jitter on top
    of it keeps many workers from coming back in the same instant.
    """
    exp = min(policy.max_delay_s, policy.base_delay_s * policy.multiplier ** max(0, attempt - 1))
    spread = exp * policy.jitter
    delay = exp - spread + rng.uniform(0.0, spread)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s + rng.uniform(0.0, min(1.0, 0.1 * retry_after_s)))
    return delay


def decide_after_failure(
    *,
    error_class: str,
    retryable: bool,
    attempt: int,
    retry_after_s: float | None,
    remaining_s: float,
    has_next_route: bool,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """What to do after try number ``attempt`` on a route failed with ``error_class``.

    Retry the same route when the error is transient, tries are left, and the wait (backoff, or
    the vendor's Retry-After) fits before the chain deadline; otherwise fall back to the next
    route, or give up when there is none or no time is left. Malformed output is not retried on
    the same route: it moves on like an error does.
    """
    fallback: Action = "fallback" if has_next_route else "give_up"
    if remaining_s <= policy.min_attempt_s:
        return Decision(action="give_up", reason="deadline")
    if not retryable or error_class in PERMANENT_ERROR_CLASSES or error_class == "malformed":
        return Decision(action=fallback, reason=error_class)
    if attempt >= policy.max_attempts:
        return Decision(action=fallback, reason=error_class)
    if retry_after_s is not None and retry_after_s > policy.max_retry_after_s:
        return Decision(action=fallback, reason=error_class)
    delay = backoff_delay(policy=policy, attempt=attempt, retry_after_s=retry_after_s, rng=rng)
    if delay + policy.min_attempt_s >= remaining_s:
        return Decision(action=fallback, reason=error_class)
    return Decision(action="retry", reason=error_class, delay_s=delay)


def trigger_for(*, route_attempt: int, fallback_reason: str | None) -> str:
    """The call log's trigger: ``initial``, ``retry`` or ``fallback:<reason>``."""
    if route_attempt > 1:
        return "retry"
    if fallback_reason:
        return f"fallback:{fallback_reason}"
    return "initial"


def attempt_timeout(*, route_timeout_s: float, remaining_s: float) -> float:
    """A try gets its route's timeout, cut to what is left of the chain's deadline."""
    return max(0.0, min(route_timeout_s, remaining_s))


# --- cost -----------------------------------------------------------------------------------

MICRO_USD = Decimal("0.000001")


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceSpec:
    """A route's configured prices (USD) and what a typical call uses."""

    usd_per_call: Decimal | None = None
    usd_per_second: Decimal | None = None
    gpu_hour_usd: Decimal | None = None
    usd_per_1k_input_tokens: Decimal | None = None
    usd_per_1k_output_tokens: Decimal | None = None
    expected_seconds: float = 2.0
    expected_input_tokens: int = 1000
    expected_output_tokens: int = 60


def estimate_call_cost(prices: PriceSpec) -> Decimal | None:
    """A configured estimate of one call; None when no price is configured at all."""
    parts: list[Decimal] = []
    seconds = Decimal(str(prices.expected_seconds))
    if prices.usd_per_call is not None:
        parts.append(prices.usd_per_call)
    if prices.usd_per_second is not None:
        parts.append(prices.usd_per_second * seconds)
    if prices.gpu_hour_usd is not None:
        parts.append(prices.gpu_hour_usd * seconds / Decimal(3600))
    if prices.usd_per_1k_input_tokens is not None:
        parts.append(prices.usd_per_1k_input_tokens * prices.expected_input_tokens / Decimal(1000))
    if prices.usd_per_1k_output_tokens is not None:
        parts.append(
            prices.usd_per_1k_output_tokens * prices.expected_output_tokens / Decimal(1000)
        )
    if not parts:
        return None
    return sum(parts, Decimal(0)).quantize(MICRO_USD)


def call_cost_estimate(
    *, prices: PriceSpec, recent_costs: Sequence[Decimal], min_history: int = 5
) -> tuple[Decimal | None, str]:
    """Per-call estimate and where it came from: the mean of recent real costs when there are
    enough of them (``history``), else the configured prices (``configured``), else ``unknown``."""
    if len(recent_costs) >= min_history:
        mean = sum(recent_costs, Decimal(0)) / len(recent_costs)
        return mean.quantize(MICRO_USD), "history"
    configured = estimate_call_cost(prices)
    if configured is not None:
        return configured, "configured"
    return None, "unknown"


def budget_allows(
    *, cap: Decimal | None, spent: Decimal, reserved: Decimal, amount: Decimal
) -> bool:
    """May a call reserving ``amount`` start? The same rule the database update enforces."""
    if cap is None:
        return True
    return spent + reserved + max(amount, MICRO_USD) <= cap


# --- circuit breaker ------------------------------------------------------------------------

BreakerStatus = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """Opens after ``failure_threshold`` consecutive failures, or when at least ``min_calls`` of
    the last ``window`` calls failed at a rate of ``failure_rate`` or more. After ``cooldown_s``
    one probe call is let through (half-open); its outcome closes or re-opens the breaker. A probe
    that never reports back frees the slot after ``probe_timeout_s``."""

    failure_threshold: int = 5
    failure_rate: float = 0.5
    window: int = 20
    min_calls: int = 10
    cooldown_s: float = 30.0
    probe_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerState:
    status: BreakerStatus = "closed"
    consecutive_failures: int = 0
    #: Outcomes of the most recent calls, oldest first; True is a failure.
    recent: tuple[bool, ...] = ()
    opened_at: float | None = None
    probe_started_at: float | None = None

    @property
    def failure_rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0


def breaker_allow(
    state: BreakerState, *, now: float, config: BreakerConfig
) -> tuple[bool, BreakerState]:
    """May a call go to the route now, and the state after asking (a probe slot may be taken)."""
    if state.status == "closed":
        return True, state
    if state.status == "open":
        if state.opened_at is not None and now - state.opened_at < config.cooldown_s:
            return False, state
        return True, replace(state, status="half_open", probe_started_at=now)
    probe = state.probe_started_at
    if probe is not None and now - probe < config.probe_timeout_s:
        return False, state
    return True, replace(state, probe_started_at=now)


def breaker_record(
    state: BreakerState,
    *,
    failure: bool,
    now: float,
    config: BreakerConfig,
    probe: float | None = None,
) -> BreakerState:
    """The state after a call on the route finished (``failure`` per ``BREAKER_ERROR_CLASSES``).

    Half-open, only the probe decides: ``probe`` is the ``probe_started_at`` the call was let
    through with. Any other call finishing meanwhile started before the breaker opened (a stale
    success must not close it, a stale failure must not re-open it) and changes nothing."""
    if state.status == "half_open":
        if probe is None or probe != state.probe_started_at:
            return state
        if failure:
            return BreakerState(status="open", opened_at=now, consecutive_failures=1)
        return BreakerState()
    if state.status == "open":
        # A call that started before the breaker opened: it changes nothing.
        return state
    recent = (*state.recent, failure)[-config.window :]
    consecutive = state.consecutive_failures + 1 if failure else 0
    opened = BreakerState(status="open", opened_at=now, consecutive_failures=consecutive)
    if failure and consecutive >= config.failure_threshold:
        return opened
    rate_tripped = (
        len(recent) >= config.min_calls and sum(recent) / len(recent) >= config.failure_rate
    )
    if failure and rate_tripped:
        return opened
    return BreakerState(status="closed", consecutive_failures=consecutive, recent=recent)


def breaker_dumps(state: BreakerState) -> str:
    return json.dumps(
        {
            "status": state.status,
            "consecutive_failures": state.consecutive_failures,
            "recent": "".join("1" if f else "0" for f in state.recent),
            "opened_at": state.opened_at,
            "probe_started_at": state.probe_started_at,
        },
        separators=(",", ":"),
    )


def breaker_loads(raw: str | bytes | None) -> BreakerState:
    """Parse a stored state; anything unreadable counts as a fresh, closed breaker."""
    if not raw:
        return BreakerState()
    try:
        data: Any = json.loads(raw)
    except (TypeError, ValueError):
        return BreakerState()
    if not isinstance(data, Mapping):
        return BreakerState()
    status = data.get("status")
    if status not in ("closed", "open", "half_open"):
        return BreakerState()
    opened_at = data.get("opened_at")
    probe = data.get("probe_started_at")
    return BreakerState(
        status=status,
        consecutive_failures=int(data.get("consecutive_failures") or 0),
        recent=tuple(ch == "1" for ch in str(data.get("recent") or "")),
        opened_at=float(opened_at) if isinstance(opened_at, int | float) else None,
        probe_started_at=float(probe) if isinstance(probe, int | float) else None,
    )
