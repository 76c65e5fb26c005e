"""Reads of the routing app: route usability, run progress, call logs, permissions."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from redis.exceptions import RedisError

from labeling.models import Membership, Project
from labeling.selectors import project_role, user_is_admin
from routing.models import Caption, CaptionRun, Chain, ChainRule, ModelCall, Route
from routing.services.breaker import breaker_state
from routing.services.counters import counters_kept, run_counters
from routing.services.routes import local_models_installed

# --- permissions ----------------------------------------------------------------------------


def can_manage_project(*, user: Any, project: Project) -> bool:
    """Project admins and site admins manage chains and runs; annotators do not."""
    return project_role(project=project, user=user) == Membership.Role.ADMIN


def can_view_routes(*, user: Any) -> bool:
    """Admins of some project see the routes (to build their chains); site admins too."""
    if not user.is_authenticated:
        return False
    if user_is_admin(user):
        return True
    return Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()


def can_manage_routes(*, user: Any) -> bool:
    """Routes are shared by every project: a change to one reaches every chain that uses it, and
    every project's estimates and spend. So only site admins create, edit them or reset their
    breakers; a project's admin cannot change what another project pays."""
    return user_is_admin(user)


# --- which routes can be used ---------------------------------------------------------------


@dataclass(slots=True)
class RouteStatus:
    route: Route
    usable: bool
    detail: str
    breaker: str = "closed"
    last_call: ModelCall | None = None


@dataclass(slots=True)
class RouteOverview:
    routes: list[RouteStatus] = field(default_factory=list)
    #: What to configure for providers that have no usable route yet.
    hints: list[str] = field(default_factory=list)

    @property
    def usable_count(self) -> int:
        return sum(1 for r in self.routes if r.usable)

    def __bool__(self) -> bool:
        return True


def _local_weights_detail(model: str) -> tuple[bool, str]:
    if not local_models_installed():
        return False, "torch and transformers are not installed: install the gpu extra."
    if os.path.isdir(model):
        return True, "Weights from a local folder; runs on the gpu queue."
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings it
        return False, "huggingface_hub is missing."
    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str):
        return True, "Weights are in the local Hugging Face cache; runs on the gpu queue."
    return (
        False,
        f"Weights of {model} are not in this machine's Hugging Face cache: run "
        f"`huggingface-cli download {model}` where the gpu worker runs.",
    )


def _route_usability(route: Route) -> tuple[bool, str]:
    if not route.enabled:
        return False, "Disabled."
    if route.provider in (Route.Provider.EDENAI, Route.Provider.EDENAI_V2):
        if settings.EDENAI_API_KEY:
            return True, "Eden AI key set."
        if route.base_url:
            return True, f"No key; calls go to {route.base_url}."
        return False, "Set EDENAI_API_KEY in the environment (.env) and restart."
    if route.provider == Route.Provider.REPLICATE:
        if settings.REPLICATE_API_TOKEN:
            return True, "Replicate token set."
        if route.base_url:
            return True, f"No token; calls go to {route.base_url}."
        return False, "Set REPLICATE_API_TOKEN in the environment (.env) and restart."
    if route.provider == Route.Provider.OLLAMA:
        url = route.base_url or settings.OLLAMA_BASE_URL
        return True, f"Needs an Ollama server at {url} with `ollama pull {route.model}` done."
    if route.provider == Route.Provider.LOCAL:
        return _local_weights_detail(route.model)
    return False, "Unknown provider."


def route_usability(route: Route) -> tuple[bool, str]:
    """Whether the route can be used now, and what to configure if not (the routes page's
    column), without the database."""
    return _route_usability(route)


def routes_usable() -> RouteOverview:
    """Every route with whether it can be used now and what to configure if not, plus hints for
    providers that have no route yet."""
    overview = RouteOverview()
    routes = list(Route.objects.order_by("name"))
    last_calls = {
        route.pk: ModelCall.objects.filter(route=route)
        .exclude(status=ModelCall.Status.CACHED)
        .order_by("-started_at")
        .first()
        for route in routes
    }
    store_down = False
    for route in routes:
        usable, detail = _route_usability(route)
        status = "unknown"
        if not store_down:
            try:
                status = breaker_state(route_id=route.pk).status
            except RedisError:
                # Redis is down: the page still shows, the breakers as unknown, and later routes
                # do not wait for the same timeout again
                store_down = True
        overview.routes.append(
            RouteStatus(
                route=route,
                usable=usable,
                detail=detail,
                breaker=status,
                last_call=last_calls.get(route.pk),
            )
        )
    providers = {r.provider for r in routes}
    if not providers & {Route.Provider.EDENAI, Route.Provider.EDENAI_V2}:
        if settings.EDENAI_API_KEY:
            overview.hints.append("Eden AI: the key is set; restart `make run` to add its route.")
        else:
            overview.hints.append(
                "Eden AI (GPT-4o, Gemini and other vision models): set EDENAI_API_KEY in .env, "
                "then restart `make run`."
            )
    if Route.Provider.REPLICATE not in providers:
        if settings.REPLICATE_API_TOKEN:
            overview.hints.append("Replicate: the token is set; restart `make run` to add BLIP-2.")
        else:
            overview.hints.append(
                "Replicate BLIP-2: set REPLICATE_API_TOKEN in .env, then restart `make run`."
            )
    if Route.Provider.LOCAL not in providers:
        if local_models_installed():
            overview.hints.append("Local models: restart `make run` to add the local BLIP-2 route.")
        else:
            overview.hints.append(
                "Local BLIP-2 / Florence-2 / Kosmos-2 / LLaVA on your GPU: install the gpu extra "
                "(`pip install -e '.[gpu]'`) and run a worker on the gpu queue."
            )
    if Route.Provider.OLLAMA not in providers:
        overview.hints.append(
            "Ollama (LLaVA on your machine): run `ollama serve` and `ollama pull llava`, then add "
            "a route with provider Ollama."
        )
    return overview


# --- runs -----------------------------------------------------------------------------------


@dataclass(slots=True)
class RunProgress:
    run: CaptionRun
    total: int
    pending: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    calls_in_flight: int
    spent_usd: Decimal
    reserved_usd: Decimal
    cached: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def is_live(self) -> bool:
        return self.run.status == CaptionRun.Status.RUNNING or self.running > 0


FINAL_RUN_STATUSES = (CaptionRun.Status.FINISHED, CaptionRun.Status.CANCELLED)
_PROGRESS_FIELDS = ("total", "pending", "running", "succeeded", "failed", "cancelled")


def _run_settled(run: CaptionRun, progress: dict[str, int]) -> bool:
    """Nothing in the run can change: it is over and no caption or call is still open."""
    return (
        run.status in FINAL_RUN_STATUSES
        and progress["pending"] == progress["running"] == progress["calls_in_flight"] == 0
    )


def _run_figures(run: CaptionRun) -> dict[str, Any]:
    """The run page's figures: from the run's snapshot once it is settled, else from the run's
    counters (PostgreSQL) or aggregated now (and kept as the snapshot when that shows the run
    settled)."""
    if run.status in FINAL_RUN_STATUSES and run.summary.get("progress"):
        return run.summary
    figures = run_figures_counted(run) if counters_kept() else run_figures_aggregated(run)
    if _run_settled(run, figures["progress"]):
        CaptionRun.objects.filter(pk=run.pk, status=run.status).update(summary=figures)
    return figures


def _mean_latency(total: int | None, n: int | None) -> int | None:
    return round(total / n) if n else None


def run_figures_counted(run: CaptionRun) -> dict[str, Any]:
    """The figures from the run's counters (``routing.services.counters``): one query."""
    totals = run_counters(run_id=run.pk)
    captions = totals.get(None, {})
    routes = [row for key, row in totals.items() if key is not None and row["calls"]]
    progress = {
        "total": captions.get("captions") or 0,
        **{name: captions.get(name) or 0 for name in _PROGRESS_FIELDS[1:]},
        "calls_in_flight": sum(row["calls_in_flight"] for row in routes),
        "cached": sum(row["calls_cached"] for row in routes),
    }
    breakdown = [
        {
            "route__name": row["route__name"],
            "attempts": row["calls"],
            "succeeded": row["calls_succeeded"],
            "failed": row["calls_failed"],
            "cached": row["calls_cached"],
            "fallbacks": row["fallbacks"],
            "retries": row["retries"],
            "timeouts": row["timeouts"],
            "spent": str(row["spent_usd"]),
            "mean_latency_ms": _mean_latency(row["latency_ms_sum"], row["latency_n"]),
        }
        for row in sorted(routes, key=lambda row: row["route__name"] or "")
    ]
    return {"progress": progress, "breakdown": breakdown}


def run_figures_aggregated(run: CaptionRun) -> dict[str, Any]:
    """The same figures aggregated from the run's captions and calls (databases without the
    counters' triggers; the tests and the benchmark compare both)."""
    counts = {
        row["status"]: row["n"]
        for row in Caption.objects.filter(run=run).values("status").annotate(n=Count("id"))
    }
    calls = ModelCall.objects.filter(run=run).aggregate(
        in_flight=Count("id", filter=Q(status=ModelCall.Status.IN_FLIGHT)),
        cached=Count("id", filter=Q(status=ModelCall.Status.CACHED)),
    )
    progress = {
        "total": sum(counts.values()),
        **{name: counts.get(name, 0) for name in _PROGRESS_FIELDS[1:]},
        "calls_in_flight": calls["in_flight"],
        "cached": calls["cached"],
    }
    answered = Q(
        status__in=[ModelCall.Status.SUCCEEDED, ModelCall.Status.FAILED],
        latency_ms__isnull=False,
    )
    rows = (
        ModelCall.objects.filter(run=run)
        .values("route__name")
        .annotate(
            attempts=Count("id"),
            succeeded=Count("id", filter=Q(status=ModelCall.Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=ModelCall.Status.FAILED)),
            cached=Count("id", filter=Q(status=ModelCall.Status.CACHED)),
            fallbacks=Count("id", filter=Q(trigger__startswith="fallback:")),
            retries=Count("id", filter=Q(trigger="retry")),
            timeouts=Count("id", filter=Q(error_class="timeout")),
            spent=Sum("cost_usd"),
            latency_ms_sum=Sum("latency_ms", filter=answered),
            latency_n=Count("id", filter=answered),
        )
        .order_by("route__name")
    )
    breakdown = []
    for row in rows:
        total, n = row.pop("latency_ms_sum"), row.pop("latency_n")
        row["spent"] = str(row["spent"] or Decimal(0))
        row["mean_latency_ms"] = _mean_latency(total, n)
        breakdown.append(row)
    return {"progress": progress, "breakdown": breakdown}


def run_progress(*, run: CaptionRun) -> RunProgress:
    run.refresh_from_db()
    return _progress(run, _run_figures(run)["progress"])


def _progress(run: CaptionRun, progress: dict[str, Any]) -> RunProgress:
    return RunProgress(
        run=run,
        **{name: progress[name] for name in _PROGRESS_FIELDS},
        calls_in_flight=progress["calls_in_flight"],
        cached=progress["cached"],
        spent_usd=run.spent_usd,
        reserved_usd=run.reserved_usd,
    )


def run_route_breakdown(*, run: CaptionRun) -> list[dict[str, Any]]:
    """Per route: attempts, successes, failures, retries, fallbacks to it, cache hits, timeouts,
    spend and the mean latency of its answered calls."""
    return _breakdown(_run_figures(run)["breakdown"])


def _breakdown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        # (snapshots taken before the timeouts and latency were counted lack them)
        {
            "timeouts": None,
            "mean_latency_ms": None,
            **row,
            "spent": Decimal(row["spent"]) if row["spent"] is not None else None,
        }
        for row in rows
    ]


def run_live_figures(*, run: CaptionRun) -> tuple[RunProgress, list[dict[str, Any]]]:
    """``run_progress`` and ``run_route_breakdown`` from one read of the run's figures (the run
    page and its poll show both: reading them twice counted or aggregated the run twice)."""
    run.refresh_from_db()
    figures = _run_figures(run)
    return _progress(run, figures["progress"]), _breakdown(figures["breakdown"])


def runs_for_project(*, project: Project) -> QuerySet[CaptionRun]:
    return CaptionRun.objects.filter(project=project).select_related("chain", "created_by")


def run_captions(*, run: CaptionRun, status: str = "") -> QuerySet[Caption]:
    """A run's captions, an image's captions side by side (index ``caption_run_image``)."""
    qs = Caption.objects.filter(run=run).select_related("image", "route", "target_route", "chain")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("image_id", "id")


def caption_calls(*, caption: Caption) -> QuerySet[ModelCall]:
    return caption.calls.select_related("route").order_by("attempt")


def chains_for_project(*, project: Project) -> QuerySet[Chain]:
    return Chain.objects.filter(project=project).prefetch_related("steps__route")


def rules_for_project(*, project: Project) -> QuerySet[ChainRule]:
    return ChainRule.objects.filter(project=project).select_related("chain")
