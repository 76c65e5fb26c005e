"""The one Celery app. Workers: `celery -A captiondesk worker -Q default,api` (CPU) and `-Q gpu`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")

app = Celery("captiondesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
