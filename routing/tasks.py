"""Celery tasks of the routing app: thin wrappers around ``routing.services``.

Every caption task is safe to deliver twice: the service claims the caption with a conditional
UPDATE and returns at once when someone else holds it. ``acks_late`` + ``reject_on_worker_lost``
keep a message when its worker dies; the sweep (``caption_sweep``, on Celery beat) recovers the
caption once its lease runs out and fails it after ``ROUTING_POISON_LIMIT`` deaths. Time limits
stay below the broker's visibility timeout so a slow task is never delivered twice while it runs.
"""

from __future__ import annotations

from celery import shared_task

from routing import hooks
from routing.services import config, execute, route_tests, runs

# A chain's deadline bounds the walk; the margin covers database writes and the last timeout.
SOFT_TIME_LIMIT_S = int(config.max_deadline_s() + 60)
TIME_LIMIT_S = SOFT_TIME_LIMIT_S + 30
CAPTION_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "soft_time_limit": SOFT_TIME_LIMIT_S,
    "time_limit": TIME_LIMIT_S,
}


@shared_task(name="routing.tasks.caption_image", **CAPTION_TASK_OPTIONS)
def caption_image(*, caption_id: int) -> str:
    """Remote routes (queue ``api``); a local route on the way hands over to the gpu queue."""
    return execute.caption_execute(caption_id=caption_id, where="api")


@shared_task(
    name="routing.tasks.caption_images",
    **{
        **CAPTION_TASK_OPTIONS,
        "soft_time_limit": SOFT_TIME_LIMIT_S * config.api_batch_size(10**9),
        "time_limit": TIME_LIMIT_S * config.api_batch_size(10**9),
    },
)
def caption_images(*, caption_ids: list[int]) -> dict[int, str]:
    """A few captions of a large run, one after the other (fewer broker round trips)."""
    with hooks.captions_succeeded_batched():
        return {
            caption_id: execute.caption_execute(caption_id=caption_id, where="api")
            for caption_id in caption_ids
        }


@shared_task(name="routing.tasks.caption_image_gpu", **CAPTION_TASK_OPTIONS)
def caption_image_gpu(*, caption_id: int) -> str:
    return execute.caption_execute(caption_id=caption_id, where="gpu")


@shared_task(name="routing.tasks.caption_batch_gpu", **CAPTION_TASK_OPTIONS)
def caption_batch_gpu(*, caption_ids: list[int]) -> dict[int, str]:
    """Several captions whose first route is a local model: one batched ``generate()``."""
    with hooks.captions_succeeded_batched():
        return dict(execute.caption_execute_batch(caption_ids=caption_ids, where="gpu"))


# Periodic tasks set both limits: a task that sets only ``time_limit`` inherits the global soft
# limit (CELERY_TASK_SOFT_TIME_LIMIT, far above it) and Celery refuses to send it at all
# ("soft_time_limit must be less than or equal to time_limit"), so beat never ran the sweep.
@shared_task(
    name="routing.tasks.caption_sweep",
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def caption_sweep() -> dict[str, int]:
    report = runs.caption_sweep()
    expired_tests = route_tests.route_tests_expire()
    return {
        "expired_route_tests": expired_tests,
        "recovered": len(report.recovered),
        "poisoned": len(report.poisoned),
        "requeued": len(report.requeued),
        "finished_runs": len(report.finished_runs),
    }


# A route test runs where the route's captions run: ``caption_route_test`` on ``api``, and the
# ``_gpu`` one on ``gpu`` for local models (CELERY_TASK_ROUTES matches ``caption_*_gpu``).
@shared_task(name="routing.tasks.caption_route_test", **CAPTION_TASK_OPTIONS)
def caption_route_test(*, test_id: int) -> str:
    return route_tests.route_test_execute(test_id=test_id)


@shared_task(name="routing.tasks.caption_route_test_gpu", **CAPTION_TASK_OPTIONS)
def caption_route_test_gpu(*, test_id: int) -> str:
    return route_tests.route_test_execute(test_id=test_id)
