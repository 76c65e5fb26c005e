"""One ingestion path behind every entry point (upload, zip, folder, URL list, CLI)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from labeling import imaging
from labeling.models import Image, ImportBatch, ImportItem, Project
from labeling.services import derivatives

logger = logging.getLogger(__name__)

MAX_NAME = 500


@dataclass(frozen=True)
class Candidate:
    """One file offered for import. `data` is None when it could not even be read."""

    source: str  # what the user recognises: file name, path, URL, "archive.zip:dir/a.jpg"
    name: str
    origin: str  # Image.Source
    data: bytes | None = None
    error: str = ""  # why it could not be read (then data is None)


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str  # ImportItem.Status
    reason: str = ""
    image_id: int | None = None
    near_duplicate_of: int | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "status": self.status,
            "reason": self.reason,
            "image_id": self.image_id,
            "near_duplicate_of": self.near_duplicate_of,
        }


@dataclass
class NearDuplicateIndex:
    """All perceptual hashes of a project in one NumPy array (a Hamming scan of 1M is ~10 ms)."""

    ids: list[int] = field(default_factory=list)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    _pending_ids: list[int] = field(default_factory=list)
    _pending: list[int] = field(default_factory=list)

    @classmethod
    def for_project(cls, project: Project) -> NearDuplicateIndex:
        rows = list(Image.objects.filter(project=project).order_by("id").values_list("id", "phash"))
        index = cls()
        index.ids = [r[0] for r in rows]
        index.hashes = np.array([r[1] for r in rows], dtype=np.int64).view(np.uint64)
        return index

    def add(self, image_id: int, phash: int) -> None:
        self._pending_ids.append(image_id)
        self._pending.append(phash)

    def nearest(self, phash: int) -> tuple[int, int] | None:
        if self._pending:
            self.ids.extend(self._pending_ids)
            added = np.array(self._pending, dtype=np.int64).view(np.uint64)
            self.hashes = np.concatenate([self.hashes, added])
            self._pending_ids, self._pending = [], []
        if not self.ids:
            return None
        target = np.array([phash], dtype=np.int64).view(np.uint64)[0]
        distances = np.bitwise_count(self.hashes ^ target)
        best = int(np.argmin(distances))
        return self.ids[best], int(distances[best])


def _clean_name(name: str) -> str:
    # The last path component only; control characters dropped. Escaping happens at display time.
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip() or "unnamed"
    return base[:MAX_NAME]


def image_ingest_one(
    *,
    project: Project,
    candidate: Candidate,
    batch: ImportBatch | None = None,
    near_index: NearDuplicateIndex | None = None,
    thumbnails_inline: bool = False,
) -> Outcome:
    """Validate, dedupe and store one file. Never raises for bad input: the outcome says why.

    ``thumbnails_inline``: make the thumbnails here, from the pixels just decoded, instead of in
    a task after commit that decodes the file again. Bulk imports (zip, URL lists, folders, the
    CLI) already run in the background and take it: one decode per image instead of two. A
    browser upload leaves it off so the request returns as soon as the file is safe."""
    if candidate.data is None:
        return Outcome(
            candidate.source, ImportItem.Status.REJECTED, candidate.error or "unreadable"
        )
    try:
        decoded = imaging.decode(
            candidate.data,
            max_bytes=settings.INGEST_MAX_BYTES,
            max_pixels=settings.INGEST_MAX_PIXELS,
            max_decoded_bytes=settings.INGEST_MAX_DECODED_BYTES,
            keep_side=settings.THUMBNAIL_SIZES["large"] if thumbnails_inline else 0,
        )
    except imaging.ImageRejected as exc:
        return Outcome(candidate.source, ImportItem.Status.REJECTED, exc.reason)

    existing = (
        Image.objects.filter(project=project, sha256=decoded.sha256)
        .values_list("id", flat=True)
        .first()
    )
    if existing:
        return Outcome(
            candidate.source,
            ImportItem.Status.DUPLICATE,
            f"same file as image #{existing}",
            existing,
        )

    near = None
    threshold = settings.INGEST_NEAR_DUPLICATE_DISTANCE
    if near_index is not None:
        found = near_index.nearest(decoded.phash)
        if found and found[1] <= threshold:
            near = found

    image = Image(
        project=project,
        batch=batch,
        sha256=decoded.sha256,
        phash=decoded.phash,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        mode=decoded.mode,
        byte_size=len(candidate.data),
        original_name=_clean_name(candidate.name),
        source=candidate.origin,
        source_detail=candidate.source[:1000],
        near_duplicate_of_id=near[0] if near else None,
        near_duplicate_distance=near[1] if near else None,
    )
    # Storage names come from the content hash, never from the user's file name.
    ext = imaging.EXTENSIONS.get(decoded.format, "bin")
    storage_name = f"{decoded.sha256[:2]}/{decoded.sha256}.{ext}"
    image.file.save(storage_name, ContentFile(candidate.data), save=False)
    made = False
    if thumbnails_inline:
        # Before the INSERT, so that the row carries their names: one commit per image, not an
        # INSERT and then an UPDATE (each its own commit outside a transaction).
        try:
            derivatives.image_thumbnails_store(
                image=image, thumbnails=derivatives.thumbnails_encode(decoded.image)
            )
            made = True
        except Exception:  # noqa: BLE001 - the task after commit tries again and reports
            logger.exception("inline thumbnails failed for %s", candidate.source)
            _files_delete(image, ("thumb_large", "thumb_small"))
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint: a duplicate must not break the caller's
                image.save()
        else:
            image.save()  # autocommit: the INSERT is its own transaction, one round trip
    except IntegrityError:
        # Someone imported the same bytes at the same moment: theirs is the first. The files
        # saved here have names of their own (storage never overwrites), so deleting them
        # leaves theirs alone.
        _files_delete(image, ("file", "thumb_large", "thumb_small"))
        first = Image.objects.filter(project=project, sha256=decoded.sha256).values_list(
            "id", flat=True
        )
        first_id = first.first()
        return Outcome(
            candidate.source,
            ImportItem.Status.DUPLICATE,
            f"same file as image #{first_id}",
            first_id,
        )
    if near_index is not None:
        near_index.add(image.pk, decoded.phash)
    _after_import(image.pk, thumbnails=not made)
    reason = f"looks like image #{near[0]} (distance {near[1]})" if near else ""
    return Outcome(
        candidate.source,
        ImportItem.Status.IMPORTED,
        reason,
        image.pk,
        near_duplicate_of=near[0] if near else None,
    )


def _files_delete(image: Image, fields: tuple[str, ...]) -> None:
    for name in fields:
        file = getattr(image, name)
        if file:
            file.delete(save=False)


def _after_import(image_id: int, *, thumbnails: bool = True) -> None:
    from labeling import tasks

    if thumbnails:
        tasks.image_make_derivatives.delay_on_commit(image_id=image_id)
    try:
        from review import tasks as review_tasks
    except ImportError:  # the review app is optional for ingestion
        return
    compute = getattr(review_tasks, "risk_flags_compute", None)
    if compute is not None:
        compute.delay_on_commit(image_id=image_id)


class _Counters:
    """Batch counters flushed at most every `interval` seconds: progress, not a write per file."""

    # Once a second: what the batch page polls at. Each flush is two statements and a commit.
    def __init__(self, batch: ImportBatch, interval: float = 1.0) -> None:
        self.batch = batch
        self.interval = interval
        self.pending = {"imported": 0, "duplicates": 0, "rejected": 0}
        self.items: list[ImportItem] = []
        self.last = time.monotonic()

    def add(self, outcome: Outcome) -> None:
        key = {"imported": "imported", "duplicate": "duplicates", "rejected": "rejected"}[
            outcome.status
        ]
        self.pending[key] += 1
        self.items.append(
            ImportItem(
                batch=self.batch,
                source=outcome.source[:1000],
                status=outcome.status,
                reason=outcome.reason,
                image_id=outcome.image_id,
            )
        )
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        ImportItem.objects.bulk_create(self.items)
        n = len(self.items)
        ImportBatch.objects.filter(pk=self.batch.pk).update(
            total=F("total") + n,
            imported=F("imported") + self.pending["imported"],
            duplicates=F("duplicates") + self.pending["duplicates"],
            rejected=F("rejected") + self.pending["rejected"],
        )
        self.pending = dict.fromkeys(self.pending, 0)
        self.items = []
        self.last = time.monotonic()


def batch_start(*, batch: ImportBatch) -> None:
    ImportBatch.objects.filter(pk=batch.pk, started_at__isnull=True).update(
        status=ImportBatch.Status.RUNNING, started_at=timezone.now()
    )


def batch_finish(*, batch: ImportBatch, error: str = "") -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.FAILED if error else ImportBatch.Status.DONE,
        error=error,
        finished_at=timezone.now(),
    )
    batch.refresh_from_db()


def batch_ingest(
    *,
    batch: ImportBatch,
    candidates: Iterable[Candidate],
    finish: bool = True,
    thumbnails_inline: bool = False,
) -> Iterator[Outcome]:
    """Ingest candidates into `batch`, yielding each outcome as it is decided (for progress bars).

    Each file commits on its own: a crash half-way keeps what was imported and its item rows.
    """
    batch_start(batch=batch)
    counters = _Counters(batch)
    near_index = NearDuplicateIndex.for_project(batch.project)
    try:
        for candidate in candidates:
            try:
                outcome = image_ingest_one(
                    project=batch.project,
                    candidate=candidate,
                    batch=batch,
                    near_index=near_index,
                    thumbnails_inline=thumbnails_inline,
                )
            except Exception as exc:  # noqa: BLE001 - one file must never sink the batch
                logger.exception("ingest failed for %s", candidate.source)
                outcome = Outcome(
                    candidate.source,
                    ImportItem.Status.REJECTED,
                    f"internal error: {exc.__class__.__name__}",
                )
            counters.add(outcome)
            yield outcome
    except Exception as exc:
        counters.flush()
        batch_finish(batch=batch, error=f"{exc.__class__.__name__}: {exc}")
        raise
    counters.flush()
    if finish:
        batch_finish(batch=batch)


def batch_create(
    *, project: Project, kind: str, user=None, label: str = "", expected: int | None = None
) -> ImportBatch:
    return ImportBatch.objects.create(
        project=project, kind=kind, created_by=user, label=label[:300], expected=expected
    )
