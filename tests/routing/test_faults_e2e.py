"""Faults under a running caption run, with real processes: a Celery worker and beat on a Redis
of the test's own, PostgreSQL, and a fake vendor that takes its time.

- Redis killed with SIGKILL mid-run and started again, once with its append-only file (the
  queued messages survive) and once without persistence (they are lost): the run still
  finishes, every caption exactly once, its spend equal to the sum of its calls and nothing left
  reserved. Lost messages are sent again by the sweep once the queues are empty
  (``ROUTING_REQUEUE_IDLE_AFTER_S``, low here). While Redis is down, pages still answer.
- The worker's PostgreSQL connections terminated mid-run (``pg_terminate_backend``): the worker
  reconnects and the run finishes, every caption exactly once.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client

from routing.fakes import Reply
from routing.models import Caption, CaptionRun, ModelCall
from routing.services.runs import ImageSelection, run_launch
from tests.conftest import switch_broker, wait_until
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = [pytest.mark.worker, pytest.mark.slow]

IMAGES = 24
# The sweep every second; a pending caption whose message is gone is sent again 2 s after it
# was queued once the queues are empty; leases short enough that a caption a worker lost is
# taken back within seconds.
FAST = {
    "ROUTING_SWEEP_INTERVAL_S": "1",
    "ROUTING_REQUEUE_IDLE_AFTER_S": "2",
    "ROUTING_MAX_DEADLINE_S": "8",
    "ROUTING_LEASE_MARGIN_S": "1",
    # A message delivered but unacknowledged when Redis died comes back after this.
    "CELERY_VISIBILITY_TIMEOUT": "10",
}


class PrivateRedis:
    """A redis-server on a free port of its own, killed and restarted at will."""

    def __init__(self, directory, *, appendonly: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if appendonly
            else ["--save", "", "--appendonly", "no"]
        )
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                *self.persistence,
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_until(lambda: _pings(client), timeout=20, interval=0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(request, settings, tmp_path):
    """A Redis of this test's own (``request.param``: with the append-only file or not), used
    by this process, its cache and broker, and the workers started after it (list this fixture
    before ``celery_worker_process``)."""
    live, live_caches = settings.REDIS_URL, settings.CACHES
    server = PrivateRedis(tmp_path, appendonly=request.param)
    server.start()
    settings.REDIS_URL = server.url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
        }
    }
    yield server
    # The other fixtures' clean-up talks to the shared Redis again.
    settings.REDIS_URL, settings.CACHES = live, live_caches
    switch_broker(live)
    server.stop()


def _launch(project, admin, fake):
    fake.set_default(Reply.success("a red kite over a beach", latency_ms=400, cost="0.0005"))
    route = edenai_route(fake, timeout_s=5.0)
    for _ in range(IMAGES):
        ImageFactory(project=project)
    return run_launch(
        project=project,
        user=admin,
        kind=CaptionRun.Kind.COMPARISON,
        selection=ImageSelection(),
        routes=[route],
    )


def _succeeded(run) -> int:
    return Caption.objects.filter(run=run, status=Caption.Status.SUCCEEDED).count()


def _assert_finished_exactly_once(run, fake) -> None:
    deadline = time.monotonic() + 90
    while not CaptionRun.objects.filter(pk=run.pk, status=CaptionRun.Status.FINISHED).exists():
        if time.monotonic() > deadline:
            pytest.fail(
                f"run {CaptionRun.objects.get(pk=run.pk).status}; captions: "
                + repr(
                    list(
                        Caption.objects.filter(run=run)
                        .exclude(status="succeeded")
                        .values_list("status", "enqueued_at", "lost_count", "error")
                    )
                )
            )
        time.sleep(0.2)
    captions = Caption.objects.filter(run=run)
    assert captions.count() == IMAGES
    assert Counter(captions.values_list("status", flat=True)) == {"succeeded": IMAGES}
    # one caption per image, each from one successful call
    assert captions.values("image").distinct().count() == IMAGES
    succeeded_calls = ModelCall.objects.filter(caption__run=run, status="succeeded")
    assert succeeded_calls.count() == IMAGES
    assert Counter(succeeded_calls.values_list("caption", flat=True)).most_common(1)[0][1] == 1
    # every call the vendor answered is in the log (none was made and forgotten)
    assert ModelCall.objects.filter(caption__run=run).count() == len(fake.requests)
    spent = ModelCall.objects.filter(caption__run=run).aggregate(s=Sum("cost_usd"))["s"]
    run.refresh_from_db()
    assert run.spent_usd == spent > Decimal(0)
    assert run.reserved_usd == 0
    assert captions.aggregate(s=Sum("cost_usd"))["s"] == spent


@pytest.mark.parametrize(
    "private_redis", [True, False], ids=["aof", "no-persistence"], indirect=True
)
def test_redis_killed_and_restarted_mid_run_the_run_finishes_exactly_once(
    project, admin, fake_edenai, private_redis, celery_worker_process
):
    server = private_redis
    celery_worker_process(queues="default,api", concurrency=2, extra_env=FAST, beat=True)
    run = _launch(project, admin, fake_edenai)
    wait_until(lambda: _succeeded(run) >= 3, timeout=60)

    server.kill()
    assert _succeeded(run) < IMAGES, "the run finished before Redis went down: slow the fake"
    # Pages degrade instead of failing while Redis is down; health says what is down.
    client = Client()
    client.force_login(admin)
    image = Caption.objects.filter(run=run).first().image
    for path in (
        f"/projects/{project.slug}/",
        f"/routing/runs/{run.pk}/",
        f"/routing/runs/{run.pk}/progress/",
        "/routing/routes/",
        f"/review/projects/{project.slug}/",
        f"/images/{image.pk}/",
        f"/images/{image.pk}/display/",  # would queue the full-size copy: serves the thumbnail
    ):
        assert client.get(path).status_code == 200, path
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["database"] == "ok"
    time.sleep(3)  # the worker notices and keeps trying

    server.start()
    _assert_finished_exactly_once(run, fake_edenai)


def test_worker_database_connections_terminated_mid_run_it_reconnects_and_finishes(
    project, admin, fake_edenai, celery_worker_process
):
    celery_worker_process(queues="default,api", concurrency=2, extra_env=FAST, beat=True)
    run = _launch(project, admin, fake_edenai)
    wait_until(lambda: _succeeded(run) >= 3, timeout=60)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        terminated = sum(1 for (ok,) in cursor.fetchall() if ok)
    assert terminated >= 1  # the worker's (and beat's) connections
    assert _succeeded(run) < IMAGES, "the run finished before the connections went: slow it"

    _assert_finished_exactly_once(run, fake_edenai)
