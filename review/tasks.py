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
