"""Captioning runs: plan and estimate, launch, pause / resume / cancel, retry failures, enqueue, and
the periodic sweep that recovers work left behind by dead workers."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from labeling.models import Image, Project
from routing import hooks, policy
from routing.models import Caption, CaptionRun, Chain, ChainRule, ChainStep, ModelCall, Route
from routing.services import config
from routing.services.cache import request_key
from routing.services.counters import run_counters_fold
from routing.services.execute import calls_abandon, run_maybe_finish
from routing.services.routes import route_cost_estimate

logger = logging.getLogger(__name__)


class RunError(Exception):
    """A run cannot be planned, launched or changed as asked; the message is for the user."""


# --- image selection ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSelection:
    """``all``, ``filtered`` (image status and/or risk flag) or ``sample`` (``size`` random images
    drawn with ``seed``, from the filtered set when filters are given)."""

    mode: str = CaptionRun.Selection.ALL
    status: str = ""
    risk: str = ""  # "", "flagged", "unflagged" or a category name
    size: int | None = None
    seed: int | None = None
    #: Exactly these images (of the project), e.g. chosen by the caption command.
    ids: tuple[int, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "status": self.status,
            "risk": self.risk,
            "size": self.size,
            "seed": self.seed,
        }
        if self.ids is not None:
            detail["ids"] = len(self.ids)
        return detail


def images_select(*, project: Project, selection: ImageSelection) -> list[int]:
    """Ids of the selected images, in id order (a sample is reproducible from its seed)."""
    qs = Image.objects.filter(project=project)
    if selection.ids is not None:
        qs = qs.filter(pk__in=selection.ids)
    if selection.mode in (CaptionRun.Selection.FILTERED, CaptionRun.Selection.SAMPLE):
        if selection.status:
            qs = qs.filter(status=selection.status)
        # an admin's correction counts over the analyser, as in the review queue; EXISTS, not
        # IN: a list of every flagged image does not belong in a query plan
        if selection.risk:
            source = hooks.risk_source()
            if source is None:
                raise RunError("Risk flags are not available, so images cannot be chosen by them.")
            if selection.risk == "flagged":
                qs = qs.filter(source.flagged_q())
            elif selection.risk == "unflagged":
                qs = qs.exclude(source.flagged_q())
            else:
                qs = qs.filter(source.flagged_q(category=selection.risk))
    ids = list(qs.order_by("id").values_list("id", flat=True))
    if selection.mode == CaptionRun.Selection.SAMPLE:
        size = max(0, selection.size or 0)
        if size < len(ids):
            ids = sorted(random.Random(selection.seed).sample(ids, size))
    return ids


# --- planning and estimates -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    image_id: int
    chain_id: int | None
    route_id: int | None
    key: str


@dataclass(slots=True)
class EstimateLine:
    route: Route
    calls: int
    per_call: Decimal | None
    source: str  # history | configured | unknown

    @property
    def total(self) -> Decimal | None:
        return None if self.per_call is None else self.per_call * self.calls


@dataclass(slots=True)
class RunPlan:
    image_count: int
    requests: list[PlannedRequest]
    skipped: int
    lines: list[EstimateLine] = field(default_factory=list)
    #: Every selected request served by its first route (fallbacks cost extra).
    total: Decimal | None = None
    #: Every request falling back through every route of its chain.
    worst_case: Decimal | None = None
    chains_used: dict[int, int] = field(default_factory=dict)

    @property
    def new_requests(self) -> int:
        return len(self.requests) - self.skipped

    @property
    def unknown_price_routes(self) -> list[str]:
        return [line.route.name for line in self.lines if line.per_call is None]


def chain_routes(chain: Chain) -> list[Route]:
    steps = ChainStep.objects.filter(chain=chain, route__enabled=True).select_related("route")
    return [step.route for step in steps.order_by("position")]


def image_chains(
    *, project: Project, image_ids: Sequence[int], base_chain: Chain, apply_rules: bool
) -> dict[int, int]:
    """Which chain each image goes to: the project's risk rules, else ``base_chain``."""
    if not apply_rules:
        return {image_id: base_chain.pk for image_id in image_ids}
    rules = [
        policy.ChainRuleSpec(chain_id=r.chain_id, category=r.category, min_score=r.min_score)
        for r in ChainRule.objects.filter(project=project, enabled=True).order_by("position", "id")
    ]
    if not rules:
        return {image_id: base_chain.pk for image_id in image_ids}
    source = hooks.risk_source()
    flags = source.signals(list(image_ids)) if source is not None else {}
    return {
        image_id: policy.choose_chain(
            flags=flags.get(image_id, []), rules=rules, default_chain_id=base_chain.pk
        )
        or base_chain.pk
        for image_id in image_ids
    }


def _params_clean(params: Any) -> dict[str, Any]:
    if params in (None, ""):
        return {}
    if not isinstance(params, dict):
        raise RunError("Parameters must be a JSON object.")
    return params


def run_plan(
    *,
    project: Project,
    kind: str,
    image_ids: Sequence[int],
    chain: Chain | None = None,
    routes: Sequence[Route] = (),
    apply_rules: bool = True,
    task: str = "caption",
    prompt: str = "",
    params: dict[str, Any] | None = None,
    json_schema: Any = None,
) -> RunPlan:
    """The requests a run would make, how many already have a live caption, and the cost."""
    params = _params_clean(params)
    requests: list[PlannedRequest] = []
    chains_used: dict[int, int] = {}
    first_route_calls: dict[int, int] = {}
    all_route_calls: dict[int, int] = {}
    route_objs: dict[int, Route] = {}

    def key(image_id: int, chain_id: int | None, route_id: int | None) -> str:
        return request_key(
            image_id=image_id,
            chain_id=chain_id,
            route_id=route_id,
            task=task,
            prompt=prompt,
            params=params,
            json_schema=json_schema,
        )

    if kind == CaptionRun.Kind.CHAIN:
        if chain is None or chain.project_id != project.pk:
            raise RunError("Choose one of this project's chains.")
        per_image = image_chains(
            project=project, image_ids=image_ids, base_chain=chain, apply_rules=apply_rules
        )
        chain_route_lists = {
            c.pk: chain_routes(c) for c in Chain.objects.filter(pk__in=set(per_image.values()))
        }
        for image_id in image_ids:
            chain_id = per_image[image_id]
            requests.append(PlannedRequest(image_id, chain_id, None, key(image_id, chain_id, None)))
            chains_used[chain_id] = chains_used.get(chain_id, 0) + 1
        for chain_id, count in chains_used.items():
            chain_route_list = chain_route_lists.get(chain_id, [])
            if not chain_route_list:
                raise RunError("A chain this run would use has no enabled route.")
            for i, route in enumerate(chain_route_list):
                route_objs[route.pk] = route
                all_route_calls[route.pk] = all_route_calls.get(route.pk, 0) + count
                if i == 0:
                    first_route_calls[route.pk] = first_route_calls.get(route.pk, 0) + count
    elif kind == CaptionRun.Kind.COMPARISON:
        if not routes:
            raise RunError("Choose at least one route to compare.")
        for route in routes:
            route_objs[route.pk] = route
            first_route_calls[route.pk] = len(image_ids)
            all_route_calls[route.pk] = len(image_ids)
            for image_id in image_ids:
                requests.append(
                    PlannedRequest(image_id, None, route.pk, key(image_id, None, route.pk))
                )
    else:
        raise RunError(f"Unknown run kind {kind!r}.")

    live = (Caption.Status.PENDING, Caption.Status.RUNNING, Caption.Status.SUCCEEDED)
    existing: set[str | None] = set()
    keys = [r.key for r in requests]
    for start in range(0, len(keys), 5000):
        existing.update(
            Caption.objects.filter(
                request_key__in=keys[start : start + 5000], status__in=live
            ).values_list("request_key", flat=True)
        )
    skipped = sum(1 for r in requests if r.key in existing)
    plan = RunPlan(
        image_count=len(image_ids), requests=requests, skipped=skipped, chains_used=chains_used
    )
    share = (len(requests) - skipped) / len(requests) if requests else 0.0
    total: Decimal | None = Decimal(0)
    worst: Decimal | None = Decimal(0)
    for route_id, route in route_objs.items():
        per_call, source = route_cost_estimate(route, fresh=True)
        calls = round(first_route_calls.get(route_id, 0) * share)
        plan.lines.append(EstimateLine(route=route, calls=calls, per_call=per_call, source=source))
        if per_call is None:
            total = worst = None
        else:
            if total is not None:
                total += per_call * calls
            if worst is not None:
                attempts = route.max_attempts
                worst += per_call * round(all_route_calls.get(route_id, 0) * share) * attempts
    plan.total = total.quantize(policy.MICRO_USD) if total is not None else None
    plan.worst_case = worst.quantize(policy.MICRO_USD) if worst is not None else None
    return plan


# --- launch and control ---------------------------------------------------------------------


def run_launch(
    *,
    project: Project,
    user: Any,
    kind: str,
    selection: ImageSelection,
    chain: Chain | None = None,
    routes: Sequence[Route] = (),
    apply_rules: bool = True,
    task: str | None = None,
    prompt: str | None = None,
    params: dict[str, Any] | None = None,
    json_schema: Any = None,
    budget_usd: Decimal | None = None,
    use_cache: bool = True,
    enqueue: bool = True,
) -> CaptionRun:
    """Create the run and its pending captions (requests that already have a live caption are
    skipped), then enqueue them once the transaction commits (``enqueue=False``: the caller
    executes them itself, like the caption command)."""
    task = task or project.task_type
    prompt = project.caption_prompt if prompt is None else prompt
    params = _params_clean(params)
    if task == "json" and not isinstance(json_schema, dict):
        raise RunError("A structured JSON run needs a JSON schema object.")
    if budget_usd is not None and budget_usd <= 0:
        raise RunError("The budget cap must be positive (or empty for no cap).")
    image_ids = images_select(project=project, selection=selection)
    with transaction.atomic():
        plan = run_plan(
            project=project,
            kind=kind,
            image_ids=image_ids,
            chain=chain,
            routes=routes,
            apply_rules=apply_rules,
            task=task,
            prompt=prompt,
            params=params,
            json_schema=json_schema,
        )
        run = CaptionRun.objects.create(
            project=project,
            kind=kind,
            chain=chain if kind == CaptionRun.Kind.CHAIN else None,
            apply_rules=apply_rules,
            task=task,
            prompt=prompt,
            params=params,
            json_schema=json_schema,
            use_cache=use_cache,
            selection=selection.mode,
            selection_detail=selection.as_json(),
            image_count=plan.image_count,
            budget_usd=budget_usd,
            estimated_usd=plan.total,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        if kind == CaptionRun.Kind.COMPARISON:
            run.routes.set(routes)
        Caption.objects.bulk_create(
            [
                Caption(
                    image_id=req.image_id,
                    chain_id=req.chain_id,
                    target_route_id=req.route_id,
                    run=run,
                    origin=Caption.Origin.MODEL,
                    task=task,
                    prompt=prompt,
                    params=params,
                    json_schema=json_schema,
                    request_key=req.key,
                    status=Caption.Status.PENDING,
                )
                for req in plan.requests
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        caption_ids = list(run.captions.order_by("id").values_list("id", flat=True))
        run.caption_count = len(caption_ids)
        run.skipped = len(plan.requests) - len(caption_ids)
        if not caption_ids:
            run.status = CaptionRun.Status.FINISHED
            run.finished_at = timezone.now()
            hooks.run_event(run_id=run.pk, event="run.finished")
        run.save(update_fields=["caption_count", "skipped", "status", "finished_at"])
        if enqueue:
            transaction.on_commit(lambda: caption_enqueue(caption_ids=caption_ids))
    return run


def images_needing_caption(
    *, project: Project, route: Route, task: str, prompt: str, params: dict[str, Any]
) -> list[int]:
    """Images of the project with no live caption from ``route`` for this request, in id order."""
    ids = list(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    keys = {
        request_key(
            image_id=i, chain_id=None, route_id=route.pk, task=task, prompt=prompt, params=params
        ): i
        for i in ids
    }
    live = (Caption.Status.PENDING, Caption.Status.RUNNING, Caption.Status.SUCCEEDED)
    taken: set[int] = set()
    key_list = list(keys)
    for start in range(0, len(key_list), 5000):
        for key in Caption.objects.filter(
            request_key__in=key_list[start : start + 5000], status__in=live
        ).values_list("request_key", flat=True):
            if key is not None:
                taken.add(keys[key])
    return [i for i in ids if i not in taken]


def run_execute_inline(
    *,
    run: CaptionRun,
    concurrency: int = 4,
    on_done: Callable[[int, str], None] | None = None,
) -> dict[str, int]:
    """Produce a run's pending captions in this process (threads for remote routes, batches for
    local models); ``on_done(caption_id, outcome)`` after each. Returns outcome counts."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from routing.services.execute import Outcome, caption_execute, caption_execute_batch

    pending = list(
        run.captions.filter(status=Caption.Status.PENDING)
        .select_related("target_route")
        .order_by("id")
    )
    local_cache: dict[tuple[Any, ...], bool] = {}
    local = [c.pk for c in pending if _first_route_is_local(c, local_cache)]
    remote = [c.pk for c in pending if c.pk not in set(local)]
    counts: dict[str, int] = {}

    def done(caption_id: int, outcome: str) -> None:
        counts[outcome] = counts.get(outcome, 0) + 1
        if on_done is not None:
            on_done(caption_id, outcome)

    def one(caption_id: int) -> tuple[int, Outcome]:
        try:
            return caption_id, caption_execute(caption_id=caption_id, where="inline")
        finally:
            connection.close()

    size = config.gpu_batch_size()
    for start in range(0, len(local), size):
        batch = caption_execute_batch(caption_ids=local[start : start + size], where="inline")
        for caption_id, outcome in batch.items():
            done(caption_id, outcome)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for caption_id, outcome in pool.map(one, remote):
            done(caption_id, outcome)
    return counts


def run_pause(*, run: CaptionRun) -> bool:
    """Stop starting new calls; calls in flight finish. Pending captions wait for a resume."""
    return (
        CaptionRun.objects.filter(pk=run.pk, status=CaptionRun.Status.RUNNING).update(
            status=CaptionRun.Status.PAUSED
        )
        == 1
    )


def run_resume(*, run: CaptionRun) -> int:
    """Resume a paused run, or one stopped at its cap once the cap leaves room; returns how many
    pending captions were enqueued again."""
    run.refresh_from_db()
    if run.status == CaptionRun.Status.BUDGET and not policy.budget_allows(
        cap=run.budget_usd, spent=run.spent_usd, reserved=run.reserved_usd, amount=Decimal(0)
    ):
        raise RunError("The run has spent its budget: raise the cap before resuming.")
    updated = CaptionRun.objects.filter(
        pk=run.pk, status__in=[CaptionRun.Status.PAUSED, CaptionRun.Status.BUDGET]
    ).update(status=CaptionRun.Status.RUNNING)
    if not updated:
        raise RunError("Only a paused run or one stopped at its budget cap can be resumed.")
    pending = list(
        Caption.objects.filter(run=run, status=Caption.Status.PENDING).values_list("id", flat=True)
    )
    if not pending:
        run_maybe_finish(run_id=run.pk)
    transaction.on_commit(lambda: caption_enqueue(caption_ids=pending))
    return len(pending)


def run_cancel(*, run: CaptionRun) -> int:
    """Cancel: pending captions are cancelled at once, calls in flight finish (their workers stop
    before any further try, because every later try reserves on a running run); returns how many
    captions were cancelled. A vendor request kept for a dead worker's successor is nobody's now:
    it is closed at its estimate, so nothing stays reserved."""
    active = [CaptionRun.Status.RUNNING, CaptionRun.Status.PAUSED, CaptionRun.Status.BUDGET]
    now = timezone.now()
    with transaction.atomic():
        updated = CaptionRun.objects.filter(pk=run.pk, status__in=active).update(
            status=CaptionRun.Status.CANCELLED, finished_at=now
        )
        if not updated:
            raise RunError("This run is already over.")
        pending = Caption.objects.filter(run=run, status=Caption.Status.PENDING)
        orphaned = list(
            pending.filter(calls__status=ModelCall.Status.IN_FLIGHT)
            .values_list("id", flat=True)
            .distinct()
        )
        cancelled = pending.update(
            status=Caption.Status.CANCELLED, finished_at=now, lease_until=None, resume={}
        )
        for caption_id in orphaned:
            calls_abandon(
                caption_id=caption_id,
                error="its run was cancelled before anyone picked this call up again",
                status=ModelCall.Status.LOST,
            )
    return cancelled


def run_cancel_preview(*, run: CaptionRun) -> dict[str, int]:
    """What a cancel would do, for the confirmation page."""
    counts = dict(
        run.captions.filter(status__in=[Caption.Status.PENDING, Caption.Status.RUNNING])
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "pending": counts.get(Caption.Status.PENDING, 0),
        "running": counts.get(Caption.Status.RUNNING, 0),
    }


def caption_stop(*, caption: Caption, by: Any = None) -> None:
    """Fail a caption that is pending or stuck running, now (an admin's way out when a worker
    is gone and the sweep has not caught it, or a vendor hangs). Its calls in flight are closed
    at their estimate: the vendor may have billed them. A worker still holding it loses its
    claim: everything it writes later is conditional on the claim. It can then be retried."""
    who = getattr(by, "get_username", lambda: "")()
    message = f"stopped by {who}" if who else "stopped by an admin"
    with transaction.atomic():
        updated = Caption.objects.filter(
            pk=caption.pk, status__in=[Caption.Status.PENDING, Caption.Status.RUNNING]
        ).update(
            status=Caption.Status.FAILED,
            error=message,
            lease_until=None,
            finished_at=timezone.now(),
            resume={},
        )
        if not updated:
            raise RunError("Only a pending or running caption can be stopped.")
        calls_abandon(
            caption_id=caption.pk,
            error=f"{message} while in flight; the provider may have billed it",
            status=ModelCall.Status.LOST,
        )
        if caption.run_id is not None:
            run_id = caption.run_id
            transaction.on_commit(lambda: run_maybe_finish(run_id=run_id))


def run_set_budget(*, run: CaptionRun, budget_usd: Decimal | None) -> None:
    if budget_usd is not None and budget_usd <= 0:
        raise RunError("The budget cap must be positive (or empty for no cap).")
    CaptionRun.objects.filter(pk=run.pk).update(budget_usd=budget_usd)
    run.budget_usd = budget_usd


def caption_retry(*, caption: Caption) -> None:
    """Try a failed (or cancelled) caption again, keeping its call log."""
    if caption.origin != Caption.Origin.MODEL or (
        caption.chain_id is None and caption.target_route_id is None
    ):
        raise RunError("Only model captions can be retried.")
    run = caption.run
    if run is not None and run.status == CaptionRun.Status.CANCELLED:
        raise RunError("Its run was cancelled; start a new run for these images.")
    try:
        with transaction.atomic():
            updated = Caption.objects.filter(
                pk=caption.pk, status__in=[Caption.Status.FAILED, Caption.Status.CANCELLED]
            ).update(
                status=Caption.Status.PENDING,
                deadline_at=None,
                resume={},
                finished_at=None,
                enqueued_at=timezone.now(),
            )
            if not updated:
                raise RunError("Only failed or cancelled captions can be retried.")
            if run is not None and run.status == CaptionRun.Status.FINISHED:
                CaptionRun.objects.filter(pk=run.pk).update(
                    status=CaptionRun.Status.RUNNING, finished_at=None, summary={}
                )
            transaction.on_commit(lambda: caption_enqueue(caption_ids=[caption.pk]))
    except IntegrityError as exc:
        raise RunError("The same request already has a caption pending or done.") from exc


def run_retry_failed(*, run: CaptionRun) -> int:
    """Retry every failed caption of a run; returns how many were re-queued."""
    retried = 0
    for caption in run.captions.filter(status=Caption.Status.FAILED).select_related("run"):
        try:
            caption_retry(caption=caption)
        except RunError:
            continue
        retried += 1
    return retried


# --- enqueueing -----------------------------------------------------------------------------


def _first_route_is_local(caption: Caption, cache: dict[tuple[Any, ...], bool]) -> bool:
    position = int((caption.resume or {}).get("position", 0))
    target = (caption.chain_id, caption.target_route_id, position)
    if target not in cache:
        if caption.chain_id is not None:
            steps = list(
                ChainStep.objects.filter(chain_id=caption.chain_id, route__enabled=True)
                .select_related("route")
                .order_by("position")
            )
            cache[target] = position < len(steps) and steps[position].route.is_local
        else:
            route = caption.target_route
            cache[target] = route is not None and route.is_local
    return cache[target]


def caption_enqueue(*, caption_ids: Iterable[int], countdown: float | None = None) -> int:
    """Send captions to the right queue: ``gpu`` (in batches) when their next route is a local
    model, ``api`` otherwise. Large runs go to ``api`` a few captions per message, which a worker
    thread produces one after the other: the broker round trips of a message cost about as much
    worker CPU as producing a caption."""
    from routing import tasks

    ids = list(caption_ids)
    if not ids:
        return 0
    local_cache: dict[tuple[Any, ...], bool] = {}
    gpu: list[int] = []
    api: list[int] = []
    captions = Caption.objects.filter(pk__in=ids).select_related("target_route").order_by("id")
    for caption in captions.only("id", "chain_id", "target_route", "resume"):
        (gpu if _first_route_is_local(caption, local_cache) else api).append(caption.pk)
    Caption.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())
    options: dict[str, Any] = {"countdown": countdown} if countdown else {}
    size = config.api_batch_size(len(api))
    for start in range(0, len(api), size):
        chunk = api[start : start + size]
        if len(chunk) == 1:
            tasks.caption_image.apply_async(kwargs={"caption_id": chunk[0]}, **options)
        else:
            tasks.caption_images.apply_async(kwargs={"caption_ids": chunk}, **options)
    size = config.gpu_batch_size()
    for start in range(0, len(gpu), size):
        batch = gpu[start : start + size]
        if len(batch) == 1:
            tasks.caption_image_gpu.apply_async(kwargs={"caption_id": batch[0]}, **options)
        else:
            tasks.caption_batch_gpu.apply_async(kwargs={"caption_ids": batch}, **options)
    return len(ids)


# --- the sweep ------------------------------------------------------------------------------


@dataclass(slots=True)
class SweepReport:
    recovered: list[int] = field(default_factory=list)
    poisoned: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    finished_runs: list[int] = field(default_factory=list)


def caption_sweep(*, now: datetime | None = None) -> SweepReport:
    """Recover work a crash left behind.

    Captions still "running" past their lease lost their worker. A vendor request that worker
    had started and whose id was stored (a Replicate prediction) is kept in flight for the next
    worker to pick up, so it is neither paid twice nor left running; other open calls are
    logged as lost at their estimate. The caption goes back to pending, unless workers died on
    it too often (the poison-message limit: it fails) or its run was cancelled meanwhile (it is
    cancelled). Pending captions of running runs whose message seems lost are enqueued again,
    and runs with nothing left open are finished."""
    now = now or timezone.now()
    report = SweepReport()
    stale = Caption.objects.filter(status=Caption.Status.RUNNING, lease_until__lt=now)
    for caption_id, lost_count, run_status in stale.values_list("id", "lost_count", "run__status"):
        _sweep_one(
            caption_id=caption_id,
            lost_count=lost_count,
            run_status=run_status,
            now=now,
            report=report,
        )
    cutoff = now - timedelta(seconds=config.requeue_after_s())
    if _caption_queues_empty():
        # No message waits in the queues, yet these captions wait for one: it was lost.
        cutoff = max(cutoff, now - timedelta(seconds=config.requeue_idle_after_s()))
    forgotten = (
        Caption.objects.filter(status=Caption.Status.PENDING, origin=Caption.Origin.MODEL)
        .filter(Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff))
        .filter(Q(run__isnull=True) | Q(run__status=CaptionRun.Status.RUNNING))
    )
    report.requeued = list(forgotten.values_list("id", flat=True)[:10000])
    caption_enqueue(caption_ids=[*report.recovered, *report.requeued])
    for run_id in CaptionRun.objects.filter(status=CaptionRun.Status.RUNNING).values_list(
        "id", flat=True
    ):
        if run_maybe_finish(run_id=run_id):
            report.finished_runs.append(run_id)
    # Runs' counters back to one row per key, so no run page sums a long tail of differences.
    run_counters_fold()
    return report


CAPTION_QUEUES = ("api", "gpu")


def _caption_queues_empty() -> bool:
    """True when the broker says no captioning message is waiting; False when it holds some or
    cannot tell (then only the long ``requeue_after_s`` applies)."""
    from captiondesk.celery import app

    conn = app.connection_for_read()
    try:
        # kombu's virtual transports (Redis, the embedded file system) count a queue's
        # messages with _size; a passive declare would fail on a queue no worker declared yet
        channel = conn.default_channel
        if any(channel._size(queue) for queue in CAPTION_QUEUES):
            return False
    except conn.connection_errors as exc:
        logger.warning("the sweep cannot read the broker's queue sizes: %s", exc)
        return False
    finally:
        conn.release()
    return True


#: Vendors whose requests run on without us and can be polled by id (Replicate predictions).
RESUMABLE_PROVIDERS = (Route.Provider.REPLICATE,)
LOST_CALL_ERROR = "the worker died during this call; the provider may have billed it"


def _sweep_one(
    *, caption_id: int, lost_count: int, run_status: str | None, now: datetime, report: SweepReport
) -> None:
    mine = Caption.objects.filter(pk=caption_id, status=Caption.Status.RUNNING, lease_until__lt=now)
    keep: tuple[int, ...] = ()
    target: list[int]
    with transaction.atomic():
        if run_status == CaptionRun.Status.CANCELLED:
            updated = mine.update(
                status=Caption.Status.CANCELLED,
                error="its run was cancelled while a worker that died held it",
                lease_until=None,
                finished_at=now,
                resume={},
            )
            target = report.cancelled
        elif lost_count + 1 >= config.poison_limit():
            updated = mine.update(
                status=Caption.Status.FAILED,
                error=(
                    f"a worker died while producing this caption {lost_count + 1} times; "
                    "not retried automatically again (poison-message limit)"
                ),
                lost_count=F("lost_count") + 1,
                lease_until=None,
                finished_at=now,
                resume={},
            )
            target = report.poisoned
        else:
            resumable = _resumable_call(caption_id) if run_status in (None, "running") else None
            keep = (resumable,) if resumable is not None else ()
            updated = mine.update(
                status=Caption.Status.PENDING,
                lost_count=F("lost_count") + 1,
                lease_until=None,
                deadline_at=None,
                resume={"call_id": resumable} if resumable is not None else {},
            )
            target = report.recovered
        if updated:
            calls_abandon(caption_id=caption_id, error=LOST_CALL_ERROR, status="lost", keep=keep)
            target.append(caption_id)


def _resumable_call(caption_id: int) -> int | None:
    """The caption's newest in-flight call whose vendor request can be picked up again (its id
    was stored as soon as the vendor answered, and the vendor lets us poll it)."""
    return (
        ModelCall.objects.filter(
            caption_id=caption_id,
            status=ModelCall.Status.IN_FLIGHT,
            route__provider__in=RESUMABLE_PROVIDERS,
        )
        .exclude(request_id="")
        .order_by("-attempt")
        .values_list("id", flat=True)
        .first()
    )


def routes_by_ids(ids: Iterable[int]) -> list[Route]:
    wanted = list(ids)
    found = {r.pk: r for r in Route.objects.filter(pk__in=wanted)}
    return [found[i] for i in wanted if i in found]
