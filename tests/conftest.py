"""Shared fixtures: named roles, a project, real image bytes; checks the real services are up."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable

import pytest


def _service_problem() -> str | None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "sqlite" in engine and os.environ.get("CAPTIONDESK_TEST_SQLITE") == "1":
        # Asked for by name: the first-run backend's tests (tests/review/test_metrics_sqlite.py).
        return None if settings.REDIS_URL else "REDIS_URL is not set: tests need a real Redis."
    if "postgresql" not in engine:
        return f"DATABASE_URL must point at PostgreSQL for tests (got {engine})."
    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        return f"PostgreSQL is not reachable at DATABASE_URL: {exc}"
    if not settings.REDIS_URL:
        return "REDIS_URL is not set: tests need a real Redis."
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis is not reachable at REDIS_URL ({settings.REDIS_URL}): {exc}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _service_problem()
    if problem:
        # A missing service is a failure everywhere (CI included), never a silent skip.
        pytest.exit(f"captiondesk tests need PostgreSQL and Redis. {problem}", returncode=3)


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """One test database per pytest process, so two runs on one machine never drop each other's."""
    from django.conf import settings

    sqlite = "sqlite" in settings.DATABASES["default"]["ENGINE"]  # in memory, per process
    if not os.environ.get("CI") and not sqlite:
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
            f"test_{settings.DATABASES['default']['NAME']}_{os.getpid()}"
        )


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """Every test writes its files into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(
        username="ada-admin", email="ada@example.com", password="admin-pass-123"
    )


@pytest.fixture
def project(db):
    from labeling.models import Project

    return Project.objects.create(name="Street photos", slug="street-photos")


@pytest.fixture
def annotator(django_user_model, project):
    from labeling.models import Membership

    user = django_user_model.objects.create_user(username="ann", password="annotator-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
    return user


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user(username="otto", password="outsider-pass-123")


@pytest.fixture
def make_image_bytes() -> Callable[..., bytes]:
    """Real encoded images of any size/format/mode, e.g. make_image_bytes("PNG", size=(64, 48))."""
    from PIL import Image as PILImage

    def make(
        fmt: str = "PNG",
        *,
        size: tuple[int, int] = (64, 48),
        mode: str = "RGB",
        seed: int = 0,
        **save_kwargs,
    ) -> bytes:
        import numpy as np

        rng = np.random.default_rng(seed)
        # A smooth gradient plus a seeded block pattern: distinct seeds give distinct hashes.
        w, h = size
        x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
        y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
        blocks = rng.integers(0, 255, size=(4, 4, 3)).astype(np.float32)
        bh, bw = max(1, h // 4 + 1), max(1, w // 4 + 1)
        tiled = np.kron(blocks, np.ones((bh, bw, 1), dtype=np.float32))[:h, :w]
        rgb = np.stack([x, y, 255 - x], axis=-1) * 0.4 + tiled * 0.6
        img = PILImage.fromarray(rgb.clip(0, 255).astype("uint8"), "RGB")
        if mode != "RGB":
            img = img.convert(mode)
        buf = io.BytesIO()
        img.save(buf, fmt, **save_kwargs)
        return buf.getvalue()

    return make


#: This pytest process's namespace in Redis. Broker keys are prefixed with it (kombu's
#: ``global_keyprefix``), so two test runs on one machine never read or flush each other's queues.
RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def switch_broker(url: str, prefix: str = "") -> None:
    """Point this process's Celery producer at another broker URL and key prefix. kombu keeps
    connection and producer pools in process-wide registries keyed by URL, so those are reset too
    (closing a pool without dropping it from the registry leaves a closed pool for the next user
    of that URL)."""
    from kombu import pools

    from captiondesk.celery import app

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()
    options = dict(app.conf.broker_transport_options or {})
    if prefix:
        options["global_keyprefix"] = prefix
    else:
        options.pop("global_keyprefix", None)
    app.conf.broker_transport_options = options
    app.conf.broker_url = url


class BrokerSpace:
    """A private corner of the test Redis for one test's Celery messages: publish there with
    ``switch_broker(space.url, space.prefix)``, read what was enqueued with
    ``space.messages("api")`` -> [(task name, kwargs)], oldest first."""

    def __init__(self, url: str, name: str) -> None:
        import redis

        self.url = url
        self.prefix = f"test:{RUN_ID}:{name}:{uuid.uuid4().hex[:6]}:"
        self.client = redis.Redis.from_url(url)

    def messages(self, queue: str) -> list[tuple[str, dict]]:
        import base64
        import json

        out = []
        for raw in self.client.lrange(self.prefix + queue, 0, -1):
            message = json.loads(raw)
            body = json.loads(base64.b64decode(message["body"]))
            out.append((message["headers"]["task"], body[1]))
        # Redis lists are consumed from the right: oldest message last.
        return out[::-1]

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.client.delete(*keys)


@pytest.fixture
def broker_space(settings):
    """Publish this test's Celery messages into its own key prefix (see ``BrokerSpace``)."""
    space = BrokerSpace(settings.REDIS_URL, "broker")
    switch_broker(space.url, space.prefix)
    yield space
    space.clear()
    switch_broker(settings.REDIS_URL)


@pytest.fixture
def celery_worker_process(transactional_db, settings, _media_root):
    """Start real Celery workers (separate processes) on Redis against the test database.

    Usage: `celery_worker_process(queues="default")`; returns the Popen. Each test gets a key
    prefix of its own in Redis, so leftover messages from other tests (or other test runs on the
    same machine) cannot leak in.
    """
    import signal
    import subprocess
    import sys
    from pathlib import Path

    db = settings.DATABASES["default"]
    space = BrokerSpace(settings.REDIS_URL, "workers")
    broker = space.url
    settings.CELERY_BROKER_URL = broker
    switch_broker(broker, space.prefix)
    # Breakers, budgets and single-flight locks live in Redis under ROUTING_REDIS_PREFIX; the
    # workers and this test share one inside this test's space (cleared below). Under the
    # default prefix, a breaker that an earlier test (or run) opened for a route with the same
    # primary key would still be open here.
    settings.ROUTING_REDIS_PREFIX = f"{space.prefix}routing:"
    procs: list[subprocess.Popen] = []

    def start(
        *,
        queues: str = "default",
        pool: str = "threads",
        concurrency: int = 4,
        extra_env=None,
        beat: bool = False,
    ):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            REDIS_URL=broker,
            CELERY_BROKER_KEY_PREFIX=space.prefix,
            ROUTING_REDIS_PREFIX=settings.ROUTING_REDIS_PREFIX,
            MEDIA_ROOT=str(_media_root),
            SECRET_KEY=settings.SECRET_KEY,
            **(extra_env or {}),
        )
        root = Path(__file__).resolve().parent.parent
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "captiondesk",
                "worker",
                "-Q",
                queues,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "warning",
                *(["-B", "-s", str(_media_root.parent / "celerybeat-schedule")] if beat else []),
            ],
            cwd=root,
            env=env,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    space.clear()
    switch_broker(settings.REDIS_URL)


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy; returns its value or fails with a clear message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
