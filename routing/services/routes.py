"""Routes: provider clients built from a route and the environment, cost estimates, and the
first-run defaults."""

from __future__ import annotations

import importlib.util
import threading
import time
from decimal import Decimal
from typing import Any

from django.conf import settings

from routing import policy
from routing.models import ModelCall, Route
from routing.providers import Provider, get_provider

REPLICATE_BLIP2_VERSION = "f677695e5e89f8b236e52ecd1d3f01beb44c34606419bcc19345e046d8f786f9"
# Replicate bills predict time by hardware; BLIP-2 runs on an A100 (40GB) at $0.00115/s on the
# public price list. A figure to edit, not a contract.
REPLICATE_A100_USD_PER_S = Decimal("0.00115")
DEFAULT_GPU_HOUR_USD = Decimal("2.00")


def _base_url(route: Route) -> str:
    if route.base_url:
        return route.base_url
    if route.provider in (Route.Provider.EDENAI, Route.Provider.EDENAI_V2):
        return str(settings.EDENAI_BASE_URL)
    if route.provider == Route.Provider.REPLICATE:
        return str(settings.REPLICATE_BASE_URL)
    if route.provider == Route.Provider.OLLAMA:
        return str(settings.OLLAMA_BASE_URL)
    return ""


def _api_key(route: Route) -> str:
    if route.provider in (Route.Provider.EDENAI, Route.Provider.EDENAI_V2):
        return str(settings.EDENAI_API_KEY)
    if route.provider == Route.Provider.REPLICATE:
        return str(settings.REPLICATE_API_TOKEN)
    return ""


def route_provider_config(route: Route) -> dict[str, Any]:
    """The plain config dict the provider client is built from (secrets from the environment,
    never stored on the route)."""
    config: dict[str, Any] = dict(route.config or {})
    config.update({"model": route.model, "base_url": _base_url(route), "api_key": _api_key(route)})
    if route.usd_per_second is not None:
        config.setdefault("usd_per_second", str(route.usd_per_second))
    if route.gpu_hour_usd is not None:
        config.setdefault("gpu_hour_usd", str(route.gpu_hour_usd))
    if route.usd_per_1k_input_tokens is not None:
        config.setdefault("input_usd_per_mtok", str(route.usd_per_1k_input_tokens * 1000))
    if route.usd_per_1k_output_tokens is not None:
        config.setdefault("output_usd_per_mtok", str(route.usd_per_1k_output_tokens * 1000))
    return config


_clients: dict[tuple[Any, ...], Provider] = {}
_clients_lock = threading.Lock()


def route_client(route: Route) -> Provider:
    """One client per route version per process: connection pools and loaded models are reused by
    every caption the process handles."""
    config = route_provider_config(route)
    key = (route.pk, route.updated_at, config["base_url"], config["api_key"], route.provider)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            stale = [k for k in _clients if k[0] == route.pk]
            for old in stale:
                _clients.pop(old).close()
            client = get_provider(route.provider, config)
            _clients[key] = client
        return client


def route_prices(route: Route) -> policy.PriceSpec:
    return policy.PriceSpec(
        usd_per_call=route.usd_per_call,
        usd_per_second=route.usd_per_second,
        gpu_hour_usd=route.gpu_hour_usd,
        usd_per_1k_input_tokens=route.usd_per_1k_input_tokens,
        usd_per_1k_output_tokens=route.usd_per_1k_output_tokens,
        expected_seconds=route.expected_seconds,
    )


_estimates: dict[tuple[int, Any], tuple[float, Decimal | None, str]] = {}
_estimates_lock = threading.Lock()
ESTIMATE_TTL_S = 30.0


def route_cost_estimate(route: Route, *, fresh: bool = False) -> tuple[Decimal | None, str]:
    """Expected cost of one call: the mean of the route's recent real costs, else its prices."""
    key = (route.pk, route.updated_at)
    now = time.monotonic()
    if not fresh:
        with _estimates_lock:
            hit = _estimates.get(key)
        if hit is not None and now - hit[0] < ESTIMATE_TTL_S:
            return hit[1], hit[2]
    recent = [
        cost
        for cost in ModelCall.objects.filter(
            route=route, status=ModelCall.Status.SUCCEEDED, cost_usd__isnull=False
        )
        .order_by("-id")
        .values_list("cost_usd", flat=True)[:50]
        if cost is not None
    ]
    estimate, source = policy.call_cost_estimate(prices=route_prices(route), recent_costs=recent)
    with _estimates_lock:
        _estimates[key] = (now, estimate, source)
    return estimate, source


# --- first run ------------------------------------------------------------------------------


def local_models_installed() -> bool:
    """torch and transformers are importable (the ``gpu`` extra), without importing them."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


DEFAULT_ROUTES: dict[str, dict[str, Any]] = {
    "edenai-gpt-4o": {
        "provider": Route.Provider.EDENAI,
        "model": "openai/gpt-4o",
        "params": {"max_new_tokens": 120},
        "timeout_s": 60.0,
        "expected_seconds": 4.0,
        # Used only when a response carries no cost (Eden AI normally reports it).
        "usd_per_1k_input_tokens": Decimal("0.0025"),
        "usd_per_1k_output_tokens": Decimal("0.01"),
    },
    "replicate-blip2": {
        "provider": Route.Provider.REPLICATE,
        "model": "andreasjansson/blip-2",
        "config": {"version": REPLICATE_BLIP2_VERSION},
        "timeout_s": 120.0,
        "expected_seconds": 2.0,
        "usd_per_second": REPLICATE_A100_USD_PER_S,
    },
    "local-blip2": {
        "provider": Route.Provider.LOCAL,
        "model": "Salesforce/blip2-opt-2.7b",
        "params": {"max_new_tokens": 40},
        "timeout_s": 300.0,
        "expected_seconds": 0.5,
        "gpu_hour_usd": DEFAULT_GPU_HOUR_USD,
    },
}


def routes_ensure_defaults() -> list[Route]:
    """Create the routes this installation can use now (never edits or deletes existing ones):
    Eden AI when ``EDENAI_API_KEY`` is set, Replicate BLIP-2 when ``REPLICATE_API_TOKEN`` is set,
    local BLIP-2 when torch and transformers are installed. Returns the routes it created."""
    wanted = []
    if settings.EDENAI_API_KEY:
        wanted.append("edenai-gpt-4o")
    if settings.REPLICATE_API_TOKEN:
        wanted.append("replicate-blip2")
    if local_models_installed():
        wanted.append("local-blip2")
    created = []
    for name in wanted:
        route, was_created = Route.objects.get_or_create(name=name, defaults=DEFAULT_ROUTES[name])
        if was_created:
            created.append(route)
    return created


# --- changes by site admins -----------------------------------------------------------------


class RouteInUse(Exception):
    """The route has history or chains that need it; the message is for the user."""


def route_set_enabled(*, route: Route, enabled: bool) -> None:
    """A disabled route is skipped by every chain (its fallbacks answer) and offered to no run."""
    Route.objects.filter(pk=route.pk).update(enabled=enabled)
    route.enabled = enabled


def route_delete(*, route: Route) -> None:
    """Delete a route nobody used: its captions and call log are the history every cost and
    comparison figure is computed from, so a used route can only be disabled."""
    from routing.models import Caption, ChainStep, RouteTest

    chains = ChainStep.objects.filter(route=route).count()
    used = (
        ModelCall.objects.filter(route=route, caption__isnull=False).exists()
        or Caption.objects.filter(route=route).exists()
        or Caption.objects.filter(target_route=route).exists()
    )
    if chains or used:
        where = []
        if chains:
            where.append(f"{chains} chain(s) use it")
        if used:
            where.append("its captions and call log are part of the project history")
        raise RouteInUse(f"Route {route.name} cannot be deleted: {'; '.join(where)}. Disable it.")
    # Its tests are no history anyone computes from: they go with it (their calls too).
    for test in RouteTest.objects.filter(route=route).exclude(image=""):
        test.image.delete(save=False)
    RouteTest.objects.filter(route=route).delete()
    route.delete()
