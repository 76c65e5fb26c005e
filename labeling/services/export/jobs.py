"""Export jobs: created from the page, run by a `default` worker, followed and cancelled there."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from datetime import timedelta

from django.core.files import File
from django.db.models import Q
from django.utils import timezone

from labeling import hooks
from labeling.models import Export, Project

from .spec import ExportSpec
from .write import export_write, total_units

logger = logging.getLogger(__name__)

# A running export whose worker has not reported for this long is taken over by a redelivery.
STALE_AFTER = timedelta(minutes=2)
_REPORT_EVERY_S = 0.5


class ExportCancelled(Exception):
    """Someone cancelled the export while it ran."""


def export_create(*, project: Project, user, spec: ExportSpec) -> Export:
    from labeling import tasks

    export = Export.objects.create(
        project=project,
        format=spec.format,
        options=spec.as_options(),
        created_by=user,
        file_name=spec.download_name(project.slug),
    )
    tasks.export_run.delay_on_commit(export_id=export.pk)
    return export


def export_cancel(*, export: Export) -> bool:
    """Stop a waiting or running export; False when it had already ended."""
    stopped = Export.objects.filter(
        pk=export.pk, status__in=[Export.Status.PENDING, Export.Status.RUNNING]
    ).update(status=Export.Status.CANCELLED, finished_at=timezone.now())
    export.refresh_from_db()
    return bool(stopped)


class _Progress:
    """Counts units; twice a second writes them to the row, which also tells whether to go on."""

    def __init__(self, export_id: int) -> None:
        self.export_id, self.done, self.last = export_id, 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        if self.done & 0xFF == 0 or n > 1:
            now = time.monotonic()
            if now - self.last >= _REPORT_EVERY_S:
                self.last = now
                self.report()

    def report(self) -> None:
        alive = Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(
            done=self.done, heartbeat_at=timezone.now()
        )
        if not alive:
            raise ExportCancelled


def _claim(export: Export) -> bool:
    """Take the job: waiting, or running with a dead worker (the output does not depend on where
    the first try stopped, so starting again is safe)."""
    now = timezone.now()
    return bool(
        Export.objects.filter(
            Q(status=Export.Status.PENDING)
            | Q(status=Export.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER),
            pk=export.pk,
        ).update(status=Export.Status.RUNNING, started_at=now, heartbeat_at=now, done=0, error="")
    )


def export_run(*, export: Export) -> None:
    """Write the export to a temporary file, then store it; safe to run twice."""
    if not _claim(export):
        return
    export.refresh_from_db()
    spec = ExportSpec.from_options(export.options)
    _, _, units = total_units(project=export.project, spec=spec)
    Export.objects.filter(pk=export.pk).update(total=units)
    progress = _Progress(export.pk)
    stored = ""
    try:
        with tempfile.TemporaryFile(prefix="captiondesk-export-") as tmp:
            written = export_write(project=export.project, spec=spec, out=tmp, tick=progress)
            progress.report()
            size, digest = _measure(tmp)
            export.file.save(f"{export.pk}-{export.file_name}", File(tmp), save=False)
            stored = export.file.name
    except ExportCancelled:
        return
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            status=Export.Status.FAILED,
            error=f"{exc.__class__.__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        return
    finished = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
        status=Export.Status.DONE,
        file=stored,
        byte_size=size,
        sha256=digest,
        rows=written.rows,
        done=units,
        finished_at=timezone.now(),
    )
    if not finished:  # cancelled while the file was being stored
        export.file.storage.delete(stored)
        return
    hooks.export_ready(export_id=export.pk)


def _measure(fh) -> tuple[int, str]:
    fh.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := fh.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    fh.seek(0)
    return size, digest.hexdigest()
