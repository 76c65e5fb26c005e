"""Import batches from the browser: uploads now, zip archives and URL lists in a worker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from labeling.models import Image, ImportBatch, Project

from .ingest import Candidate, Outcome, batch_create, batch_finish, batch_ingest
from .predictions_import import predictions_import
from .sources import parse_url_list, url_candidates, zip_candidates


def _upload_candidates(files: Iterable[UploadedFile]) -> Iterator[Candidate]:
    for f in files:
        name = f.name or "unnamed"
        if f.size is not None and f.size > settings.INGEST_MAX_BYTES:
            yield Candidate(
                source=name,
                name=name,
                origin=Image.Source.UPLOAD,
                error=f"file too large: {f.size:,} bytes (limit {settings.INGEST_MAX_BYTES:,})",
            )
            continue
        yield Candidate(source=name, name=name, origin=Image.Source.UPLOAD, data=f.read())


def batch_add_uploads(*, batch: ImportBatch, files: Iterable[UploadedFile]) -> list[Outcome]:
    """Files posted to an open upload batch (one request per file from the page's script)."""
    return list(batch_ingest(batch=batch, candidates=_upload_candidates(files), finish=False))


def batch_close(*, batch: ImportBatch) -> None:
    if batch.status != ImportBatch.Status.DONE:
        batch_finish(batch=batch)


def batch_upload_files(*, project: Project, user, files: list[UploadedFile]) -> ImportBatch:
    """The no-JavaScript path: one form post with all files, processed in the request."""
    batch = batch_create(
        project=project, kind=ImportBatch.Kind.UPLOAD, user=user, expected=len(files)
    )
    for _ in batch_ingest(batch=batch, candidates=_upload_candidates(files)):
        pass
    return batch


def batch_create_from_zip(*, project: Project, user, archive: UploadedFile) -> ImportBatch:
    batch = batch_create(
        project=project, kind=ImportBatch.Kind.ZIP, user=user, label=archive.name or ""
    )
    batch.payload.save(f"batch-{batch.pk}.zip", archive, save=True)
    _enqueue(batch)
    return batch


def batch_create_from_urls(*, project: Project, user, text: str) -> ImportBatch:
    urls = parse_url_list(text)
    batch = batch_create(
        project=project,
        kind=ImportBatch.Kind.URL,
        user=user,
        label=f"{len(urls)} URLs",
        expected=len(urls),
    )
    batch.payload.save(f"batch-{batch.pk}.txt", ContentFile("\n".join(urls).encode()), save=True)
    _enqueue(batch)
    return batch


def batch_create_from_predictions(*, project: Project, user, upload: UploadedFile) -> ImportBatch:
    """A predictions file (or a zip with one and its images), imported by a worker."""
    name = upload.name or "predictions"
    suffix = ".zip" if name.lower().endswith(".zip") else ".jsonl"
    batch = batch_create(project=project, kind=ImportBatch.Kind.PREDICTIONS, user=user, label=name)
    batch.payload.save(f"batch-{batch.pk}{suffix}", upload, save=True)
    _enqueue(batch)
    return batch


def _enqueue(batch: ImportBatch) -> None:
    from labeling import tasks

    transaction.on_commit(lambda: tasks.batch_process.delay(batch_id=batch.pk))


def batch_process_payload(*, batch: ImportBatch) -> None:
    """Run a zip or URL batch. A redelivered task resumes: files already recorded are skipped."""
    done = set(batch.items.values_list("source", flat=True))
    try:
        if batch.kind == ImportBatch.Kind.ZIP:
            with batch.payload.open("rb") as fh:
                candidates = zip_candidates(fh, label=batch.label or "archive.zip")
                _run(batch, candidates, done)
        elif batch.kind == ImportBatch.Kind.PREDICTIONS:
            # Safe to run again: images are deduplicated, captions already imported skipped.
            with batch.payload.open("rb") as fh:
                for _ in predictions_import(batch=batch, fh=fh):
                    pass
        elif batch.kind == ImportBatch.Kind.URL:
            with batch.payload.open("rb") as fh:
                urls = parse_url_list(fh.read().decode("utf-8", errors="replace"))
            _run(batch, url_candidates([u for u in urls if u not in done]), done)
        else:
            raise ValueError(f"batch kind {batch.kind} has no payload to process")
    except Exception as exc:
        batch_finish(batch=batch, error=f"{exc.__class__.__name__}: {exc}")
        raise
    batch.payload.delete(save=True)


def _run(batch: ImportBatch, candidates: Iterable[Candidate], done: set[str]) -> None:
    fresh = (c for c in candidates if c.source not in done)
    for _ in batch_ingest(batch=batch, candidates=fresh, thumbnails_inline=True):
        pass
