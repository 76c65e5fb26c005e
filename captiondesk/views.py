from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

CHECK_TIMEOUT_S = 2.0


def home(request: HttpRequest) -> HttpResponse:
    return redirect("labeling:project-list")


def livez(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Restart it when this fails, not when a dependency is down."""
    return JsonResponse({"ok": True})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _broker() -> str:
    """The Celery broker (also the store of breakers, budgets and the result cache on Redis)."""
    url = str(settings.CELERY_BROKER_URL)
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(
                url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S
            )
            client.ping()
        except redis.RedisError as exc:
            return f"error: {type(exc).__name__}: {exc}"[:300]
        return "ok"
    folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return f"error: the broker folder {folder} is missing or not writable"
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the broker, each reported on its own; 503 when either is
    down, so a load balancer stops sending work to an instance that cannot do it."""
    checks = {"database": _database(), "broker": _broker()}
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"ok": ok, **checks}, status=200 if ok else 503)
