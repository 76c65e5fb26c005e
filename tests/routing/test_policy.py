"""The pure decisions: chain choice, backoff, retry-or-fallback, cost estimates, breaker states."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from routing import policy
from routing.policy import (
    BreakerConfig,
    BreakerState,
    ChainRuleSpec,
    PriceSpec,
    RetryPolicy,
    RiskSignal,
)


def test_risky_images_go_to_the_first_matching_rules_chain():
    rules = [
        ChainRuleSpec(chain_id=7, category="chart", min_score=0.6),
        ChainRuleSpec(chain_id=8, category="", min_score=0.0),
    ]
    chart = [RiskSignal(category="chart", score=0.9, flagged=True)]
    weak_chart = [RiskSignal(category="chart", score=0.5, flagged=True)]
    unflagged = [RiskSignal(category="medical", score=0.95, flagged=False)]
    assert policy.choose_chain(flags=chart, rules=rules, default_chain_id=1) == 7
    assert policy.choose_chain(flags=weak_chart, rules=rules, default_chain_id=1) == 8
    assert policy.choose_chain(flags=unflagged, rules=rules, default_chain_id=1) == 1
    assert policy.choose_chain(flags=[], rules=[], default_chain_id=None) is None


def test_backoff_grows_exponentially_with_bounded_jitter():
    p = RetryPolicy(base_delay_s=1.0, multiplier=2.0, max_delay_s=10.0, jitter=0.5)
    rng = random.Random(1)
    for attempt, exp in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [
            policy.backoff_delay(policy=p, attempt=attempt, retry_after_s=None, rng=rng)
            for _ in range(200)
        ]
        assert min(delays) >= exp * 0.5 and max(delays) <= exp
        assert max(delays) - min(delays) > exp * 0.3  # really jittered


def test_retry_after_is_a_floor():
    p = RetryPolicy(base_delay_s=0.1)
    rng = random.Random(2)
    delays = [
        policy.backoff_delay(policy=p, attempt=1, retry_after_s=5.0, rng=rng) for _ in range(100)
    ]
    assert min(delays) >= 5.0 and max(delays) <= 5.5


def decide(**kwargs):
    defaults = dict(
        error_class="server_error",
        retryable=True,
        attempt=1,
        retry_after_s=None,
        remaining_s=60.0,
        has_next_route=True,
        policy=RetryPolicy(max_attempts=3, base_delay_s=0.5),
        rng=random.Random(0),
    )
    defaults.update(kwargs)
    return policy.decide_after_failure(**defaults)


def test_transient_errors_retry_until_attempts_run_out():
    assert decide(attempt=1).action == "retry"
    assert decide(attempt=2).action == "retry"
    assert decide(attempt=3) == policy.Decision(action="fallback", reason="server_error")
    assert decide(attempt=3, has_next_route=False).action == "give_up"


@pytest.mark.parametrize(
    "error_class", ["out_of_credits", "auth_error", "bad_request", "weights_unavailable"]
)
def test_permanent_errors_fall_back_at_once(error_class):
    d = decide(error_class=error_class, retryable=False)
    assert (d.action, d.reason) == ("fallback", error_class)


def test_malformed_output_falls_back_instead_of_retrying():
    assert decide(error_class="malformed", retryable=False).action == "fallback"


def test_a_long_retry_after_or_a_near_deadline_means_fallback():
    assert decide(error_class="rate_limited", retry_after_s=120.0).action == "fallback"
    d = decide(error_class="rate_limited", retry_after_s=2.0)
    assert d.action == "retry" and d.delay_s >= 2.0
    assert decide(error_class="rate_limited", retry_after_s=2.0, remaining_s=1.5).action == (
        "fallback"
    )
    assert decide(remaining_s=0.1) == policy.Decision(action="give_up", reason="deadline")


def test_triggers():
    assert policy.trigger_for(route_attempt=1, fallback_reason=None) == "initial"
    assert policy.trigger_for(route_attempt=2, fallback_reason="timeout") == "retry"
    assert policy.trigger_for(route_attempt=1, fallback_reason="timeout") == "fallback:timeout"
    assert policy.attempt_timeout(route_timeout_s=30, remaining_s=4.5) == 4.5


def test_cost_estimates():
    replicate = PriceSpec(usd_per_second=Decimal("0.001"), expected_seconds=2.0)
    assert policy.estimate_call_cost(replicate) == Decimal("0.002")
    gpu = PriceSpec(gpu_hour_usd=Decimal("3.6"), expected_seconds=0.5)
    assert policy.estimate_call_cost(gpu) == Decimal("0.0005")
    tokens = PriceSpec(
        usd_per_1k_input_tokens=Decimal("0.0025"),
        usd_per_1k_output_tokens=Decimal("0.01"),
        expected_input_tokens=1000,
        expected_output_tokens=100,
    )
    assert policy.estimate_call_cost(tokens) == Decimal("0.0035")
    assert policy.estimate_call_cost(PriceSpec()) is None
    history = [Decimal("0.001")] * 4 + [Decimal("0.003")]
    assert policy.call_cost_estimate(prices=replicate, recent_costs=history) == (
        Decimal("0.0014"),
        "history",
    )
    assert policy.call_cost_estimate(prices=replicate, recent_costs=history[:2]) == (
        Decimal("0.002"),
        "configured",
    )
    assert policy.call_cost_estimate(prices=PriceSpec(), recent_costs=[]) == (None, "unknown")


def test_budget_rule():
    d = Decimal
    assert policy.budget_allows(cap=None, spent=d(100), reserved=d(0), amount=d(1))
    assert policy.budget_allows(cap=d("1.0"), spent=d("0.5"), reserved=d("0.3"), amount=d("0.2"))
    assert not policy.budget_allows(
        cap=d("1.0"), spent=d("0.5"), reserved=d("0.3"), amount=d("0.21")
    )
    assert not policy.budget_allows(cap=d("1.0"), spent=d("1.0"), reserved=d(0), amount=d(0))


CFG = BreakerConfig(failure_threshold=3, failure_rate=0.5, window=10, min_calls=6, cooldown_s=30)


def record(state, outcomes, now=0.0):
    for failure in outcomes:
        state = policy.breaker_record(state, failure=failure, now=now, config=CFG)
    return state


def test_breaker_opens_after_consecutive_failures():
    state = record(BreakerState(), [True, True])
    assert state.status == "closed" and state.consecutive_failures == 2
    assert record(state, [False]).consecutive_failures == 0
    opened = record(state, [True], now=100.0)
    assert opened.status == "open" and opened.opened_at == 100.0


def test_breaker_opens_on_failure_rate_in_the_window():
    # Alternating failures never make 3 in a row, but half of the last calls failed.
    state = record(BreakerState(), [True, False, True, False, True])
    assert state.status == "closed"
    assert record(state, [True]).status == "open"


def test_breaker_half_opens_after_cooldown_with_a_single_probe():
    opened = record(BreakerState(), [True, True, True], now=100.0)
    allowed, same = policy.breaker_allow(opened, now=110.0, config=CFG)
    assert not allowed and same == opened
    allowed, probing = policy.breaker_allow(opened, now=131.0, config=CFG)
    assert allowed and probing.status == "half_open"
    # A second caller while the probe is out is turned away.
    assert policy.breaker_allow(probing, now=132.0, config=CFG)[0] is False
    # The probe succeeding closes it; failing re-opens it with a fresh cool-down.
    probe = probing.probe_started_at
    closed = policy.breaker_record(probing, failure=False, now=133.0, config=CFG, probe=probe)
    assert closed == BreakerState()
    reopened = policy.breaker_record(probing, failure=True, now=133.0, config=CFG, probe=probe)
    assert reopened.status == "open" and reopened.opened_at == 133.0
    # A probe that never reports back frees the slot after probe_timeout_s.
    assert policy.breaker_allow(probing, now=131.0 + CFG.probe_timeout_s, config=CFG)[0]


def test_only_the_probe_decides_a_half_open_breaker():
    opened = record(BreakerState(), [True, True, True], now=100.0)
    _, probing = policy.breaker_allow(opened, now=131.0, config=CFG)
    # Calls that started before the breaker opened finish while the probe is out: a stale
    # success must not close it, a stale failure must not re-open it (or restart the cool-down).
    for failure in (False, True):
        stale = policy.breaker_record(probing, failure=failure, now=132.0, config=CFG)
        assert stale == probing
        older_probe = policy.breaker_record(
            probing, failure=failure, now=132.0, config=CFG, probe=50.0
        )
        assert older_probe == probing
    assert (
        policy.breaker_record(
            probing, failure=False, now=133.0, config=CFG, probe=probing.probe_started_at
        ).status
        == "closed"
    )


def test_breaker_state_round_trips_and_bad_data_is_closed():
    state = record(BreakerState(), [True, False, True], now=5.0)
    assert policy.breaker_loads(policy.breaker_dumps(state)) == state
    assert policy.breaker_loads(b"not json") == BreakerState()
    assert policy.breaker_loads('{"status": "weird"}') == BreakerState()
    assert policy.breaker_loads(None) == BreakerState()
