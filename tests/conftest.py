"""Shared fixtures: named roles, a project, real image bytes; checks that the real services are up."""

from __future__ import annotations

import io
import os
from collections.abc import Callable


import pytest


def _service_problem() -> str | None:
    from django.conf import settings
    engine = settings.DATABASES["default"]["ENGINE"]
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
