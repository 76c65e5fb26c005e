"""The one Celery app. Workers: `celery -A captiondesk worker -Q default,api` (CPU) and `-Q gpu`."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")

app = Celery("captiondesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_tidy(task: object = None, **_kwargs: object) -> None:
    """What Django does around each request: drop this thread's connection if it is broken or
    older than CONN_MAX_AGE, keep it otherwise (settings.CELERY_DB_REUSE_MAX explains why).
    A task run eagerly (inside the caller's transaction) leaves the connection alone."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
