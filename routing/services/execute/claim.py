"""Claiming a caption: load what producing it reads, take it with one conditional UPDATE
(pending -> running), and work out the routes to walk and the deadline.

A twice-delivered task finds the caption no longer pending and does nothing; a caption whose
run is not running is left alone with the reason.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import connection
from django.utils import timezone

from labeling.models import Image
from routing.models import Caption, CaptionRun, Chain, ChainStep, Route
from routing.services import config

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


def caption_claim(*, caption_id: int, where: Where) -> Any:
    """Take a pending caption for this worker: an ``Execution`` ready to walk its routes, or the
    outcome that says why not."""
    from routing.services.execute.walk import Execution

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
    # A hand-over to a GPU worker keeps its deadline; a caption recovered by the sweep (whose
    # ``resume`` may name a vendor request to pick up again) starts a fresh one.
    resumed = caption.resume.get("position") is not None and caption.deadline_at is not None
    deadline_at: datetime = caption.deadline_at if resumed else now + timedelta(seconds=deadline_s)  # type: ignore[assignment]
    lease = deadline_at + timedelta(seconds=config.lease_margin_s())
    if not _claim_update(caption_id, now=now, deadline_at=deadline_at, lease=lease):
        return "skipped"
    fresh = caption.claimed_at is None
    caption.status = Caption.Status.RUNNING
    caption.claimed_at = now
    caption.deadline_at = deadline_at
    if not resumed:
        caption.resume = {**caption.resume, "deadline_s": deadline_s}
    execution = Execution(caption, routes, where=where, fresh=fresh)
    if not routes:
        execution.fail("no enabled route to ask: the chain is empty or its routes are disabled")
    return execution
