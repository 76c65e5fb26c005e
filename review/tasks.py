"""Celery tasks of the review app. Thin: each calls one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from labeling.models import Project
from review.services import items, queue


@shared_task(name="review.tasks.leases_expire")
def leases_expire() -> int:
    return queue.leases_expire()


@shared_task(name="review.tasks.review_items_sync")
def review_items_sync(project_id: int | None = None) -> int:
    project = None
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return 0
    return items.review_items_sync(project=project)


@shared_task(name="review.tasks.review_policy_apply")
def review_policy_apply(project_id: int) -> int:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return items.review_policy_apply(project=project)


# --- Risk flags (review/services/risk.py) ------------------------------------------------------


@shared_task(
    name="review.tasks.risk_flags_compute",
    acks_late=True,
    task_reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def risk_flags_compute(image_id: int, reanalyse: bool = True) -> int:
    """After import and again after captioning (``reanalyse=False``: only the new caption
    evidence is added to the stored image scores); safe to run twice (rows are overwritten)."""
    from labeling.models import Image
    from review.services import risk

    image = Image.objects.filter(pk=image_id).select_related("project").first()
    if image is None:
        return 0
    return sum(f.flagged for f in risk.risk_flags_compute(image=image, reanalyse=reanalyse))


@shared_task(
    name="review.tasks.risk_flags_compute_many",
    acks_late=True,
    task_reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=330,
)
def risk_flags_compute_many(image_ids: list[int], reanalyse: bool = True) -> int:
    """The images captioned by one batch of captions; safe to run twice."""
    from labeling.models import Image
    from review.services import risk

    flagged = 0
    thresholds: dict[int, dict[str, float]] = {}  # one policy read per project, not per image
    for image in Image.objects.filter(pk__in=image_ids).select_related("project"):
        if image.project_id not in thresholds:
            thresholds[image.project_id] = risk.risk_thresholds_for(project=image.project)
        flags = risk.risk_flags_compute(
            image=image, thresholds=thresholds[image.project_id], reanalyse=reanalyse
        )
        flagged += sum(f.flagged for f in flags)
    return flagged


@shared_task(name="review.tasks.risk_flags_refresh_stale")
def risk_flags_refresh_stale(limit: int | None = None) -> int:
    """Periodic: recompute flags written by an older analyser version (or never written)."""
    from review.services import risk

    return risk.risk_flags_refresh_stale(limit=limit)


@shared_task(
    name="review.tasks.risk_flags_apply_thresholds",
    acks_late=True,
    task_reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=330,
)
def risk_flags_apply_thresholds(project_id: int, after_id: int = 0) -> int:
    """After an admin changes the project's thresholds: one chunk, which enqueues the next."""
    from review.services import risk

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return risk.risk_flags_apply_thresholds(project=project, after_id=after_id)


@shared_task(name="review.tasks.metric_rollups_refresh")
def metric_rollups_refresh() -> int:
    """Periodic: one rebuild message per project big enough for metric rollups."""
    from review import rollups

    projects = rollups.projects_to_roll_up()
    for project in projects:
        metric_rollup_refresh.delay(project_id=project.pk)
    return len(projects)


@shared_task(name="review.tasks.metric_rollup_refresh")
def metric_rollup_refresh(project_id: int) -> int:
    from review import rollups

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    state = rollups.metric_rollup_refresh(project=project, wait=False)
    return state.captions if state is not None else 0  # another rebuild is under way
