"""What `make run` does to a fresh database: an admin account, sample images, usable routes."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.models import ImportBatch, Project
from labeling.services.ingest import batch_create, batch_ingest
from labeling.services.projects import project_create
from labeling.services.sources import path_candidates

SAMPLES_DIR = Path(settings.BASE_DIR) / "samples"
SAMPLE_PROJECT = "samples"


@dataclass(frozen=True)
class AdminAccount:
    username: str
    password: str | None  # None when the account existed already (the password is not ours to show)
    created: bool


@transaction.atomic
def admin_ensure() -> AdminAccount:
    """Create the first admin unless one exists. The password comes from the environment or is
    generated here and shown once; there is no default password."""
    users = get_user_model()
    existing = users.objects.filter(is_superuser=True).order_by("id").first()
    if existing is not None:
        return AdminAccount(existing.get_username(), None, created=False)
    username = os.environ.get("CAPTIONDESK_ADMIN_USERNAME", "admin")
    password = os.environ.get("CAPTIONDESK_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email="", password=password)
    return AdminAccount(username, password, created=True)


def samples_import(*, owner=None) -> ImportBatch | None:
    """Import the bundled sample images into the `samples` project once."""
    project = Project.objects.filter(slug=SAMPLE_PROJECT).first()
    if project is not None and project.images.exists():
        return None
    if project is None:
        project = project_create(name="Samples", slug=SAMPLE_PROJECT, created_by=owner)
    batch = batch_create(
        project=project, kind=ImportBatch.Kind.PATH, user=owner, label="bundled samples"
    )
    files = sorted(str(p) for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    for _ in batch_ingest(batch=batch, candidates=path_candidates(files), thumbnails_inline=True):
        pass
    return batch


def routes_ensure() -> list[str]:
    """Create the model routes this machine can use (keys set, gpu extra installed)."""
    try:
        from routing.services import routes_ensure_defaults
    except ImportError:
        return []
    return [str(r) for r in routes_ensure_defaults()]
