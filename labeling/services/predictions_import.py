"""Bring in captions that models wrote elsewhere, ready for review.

Accepted files (alone, or inside a zip with the images they name):

- Label Studio tasks, a JSON array or one task per line: ``data.image`` and ``predictions`` whose
  ``textarea`` results hold the text, attributed to ``model_version``;
- plain JSON Lines: ``{"image": ..., "caption": ..., "model": ...}`` per line.

An image reference is a file name inside the uploaded zip, an http(s) URL (fetched with the
SSRF-safe client) or, from the command line only, a path. Every image goes through the one
ingestion service (size, format and pixel checks, duplicates); each caption becomes a
``Caption`` with origin "imported", attributed to one "imported" route per model name so that
comparisons count it. A bad line is recorded as a rejected item with its line number; the rest
go on.
"""

from __future__ import annotations

import json
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from labeling.models import Image, ImportBatch
from labeling.safe_fetch import FetchError, fetch

from .ingest import Candidate, batch_ingest

MAX_TEXT = 10_000
PREDICTION_FILES = (".jsonl", ".json", ".ndjson")


class PredictionsInvalid(ValueError):
    """The upload as a whole cannot be read (not a single line could be)."""


@dataclass(frozen=True)
class Prediction:
    model: str
    text: str
    score: float | None = None


@dataclass
class _Line:
    number: int
    image_ref: str = ""
    predictions: list[Prediction] = field(default_factory=list)
    error: str = ""
    # Our own Label Studio export names each image's file in the bundle by the image id.
    bundle_stem: str = ""


# --- Parsing -------------------------------------------------------------------------------------


def _ls_predictions(task: dict[str, Any]) -> list[Prediction]:
    found = []
    for prediction in task.get("predictions") or []:
        if not isinstance(prediction, dict):
            continue
        model = str(prediction.get("model_version") or "unknown").strip() or "unknown"
        score = prediction.get("score")
        for result in prediction.get("result") or []:
            if not isinstance(result, dict) or result.get("type") != "textarea":
                continue
            texts = (result.get("value") or {}).get("text") or []
            for text in [texts] if isinstance(texts, str) else texts:
                if isinstance(text, str) and text.strip():
                    found.append(
                        Prediction(
                            model=model,
                            text=text.strip(),
                            score=score if isinstance(score, (int, float)) else None,
                        )
                    )
    return found


def _parse_record(number: int, record: Any) -> _Line:
    if not isinstance(record, dict):
        return _Line(number, error="not a JSON object")
    if "data" in record:  # a Label Studio task
        data = record.get("data") or {}
        image = data.get("image") if isinstance(data, dict) else None
        predictions = _ls_predictions(record)
        if not predictions:
            return _Line(number, str(image or ""), error="no textarea predictions with text")
        own_id = data.get("captiondesk_image_id") if isinstance(data, dict) else None
        stem = f"{own_id:08d}" if isinstance(own_id, int) and own_id > 0 else ""
    else:
        image = record.get("image") or record.get("file_name") or record.get("image_url")
        caption = record.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            return _Line(number, str(image or ""), error="no caption")
        model = str(record.get("model") or "unknown").strip() or "unknown"
        predictions = [Prediction(model=model, text=caption.strip())]
        stem = ""
    if not isinstance(image, str) or not image.strip():
        return _Line(number, error="no image reference")
    too_long = [p for p in predictions if len(p.text) > MAX_TEXT]
    if too_long:
        return _Line(number, image, error=f"caption longer than {MAX_TEXT} characters")
    return _Line(number, image.strip(), predictions, bundle_stem=stem)


def parse_predictions(fh: BinaryIO) -> Iterator[_Line]:
    """Lines of a JSON array or of JSON Lines, numbered from 1 (array items count as lines)."""
    head = fh.read(1)
    while head and head.isspace():
        head = fh.read(1)
    if head == b"[":
        try:
            records = json.loads(head + fh.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise PredictionsInvalid(f"not valid JSON: {exc}") from exc
        for number, record in enumerate(records, start=1):
            yield _parse_record(number, record)
        return
    if head == b"{":
        first = head + fh.readline()
        lines: Iterable[bytes] = [first, *fh]
        try:  # one Label Studio task spread over several lines
            whole = json.loads(b"".join(lines))
        except ValueError:
            pass
        else:
            yield _parse_record(1, whole)
            return
    else:
        lines = fh
        if head:
            raise PredictionsInvalid("expected a JSON array or one JSON object per line")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            yield _Line(number, error=f"not valid JSON: {exc}")
            continue
        yield _parse_record(number, record)


# --- Images --------------------------------------------------------------------------------------


class _Images:
    """Resolves an image reference to bytes: zip member, URL, or (CLI) path."""

    def __init__(self, archive: zipfile.ZipFile | None, *, allow_paths: bool, base: Path | None):
        self.archive, self.allow_paths, self.base = archive, allow_paths, base
        self.members: dict[str, zipfile.ZipInfo] = {}
        if archive is not None:
            for info in archive.infolist():
                if not info.is_dir():
                    base = info.filename.rsplit("/", 1)[-1]
                    self.members.setdefault(info.filename, info)
                    self.members.setdefault(base, info)
                    if info.filename.startswith("images/"):  # our bundles: images/<id>.<ext>
                        self.members.setdefault("stem:" + base.rsplit(".", 1)[0], info)

    def candidate(self, line: _Line) -> Candidate:
        ref = line.image_ref
        source = f"line {line.number}: {ref}"[:1000]
        name = ref.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or ref
        info = (
            self.members.get(ref.lstrip("/"))
            or self.members.get(name)
            or (self.members.get("stem:" + line.bundle_stem) if line.bundle_stem else None)
        )
        if info is not None:
            return self._member(info, source)
        if ref.startswith(("http://", "https://")):
            try:
                return Candidate(source=source, name=name, origin=Image.Source.URL, data=fetch(ref))
            except FetchError as exc:
                return Candidate(source=source, name=name, origin=Image.Source.URL, error=str(exc))
        if self.allow_paths:
            path = Path(ref) if Path(ref).is_absolute() or self.base is None else self.base / ref
            if path.is_file():
                size = path.stat().st_size
                if size > settings.INGEST_MAX_BYTES:
                    error = f"file too large: {size:,} bytes"
                    return Candidate(source, path.name, Image.Source.PATH, error=error)
                return Candidate(source, path.name, Image.Source.PATH, data=path.read_bytes())
        where = "not in the zip, " if self.archive is not None else ""
        where += "not a URL" + (", no such file" if self.allow_paths else "")
        return Candidate(
            source=source,
            name=name,
            origin=Image.Source.UPLOAD,
            error=f"image not found ({where})",
        )

    def _member(self, info: zipfile.ZipInfo, source: str) -> Candidate:
        max_bytes = settings.INGEST_MAX_BYTES
        cand = dict(source=source, name=info.filename, origin=Image.Source.ZIP)
        if info.file_size > max_bytes:
            return Candidate(**cand, error=f"file too large: {info.file_size:,} bytes")
        assert self.archive is not None
        try:
            with self.archive.open(info) as member:
                data = member.read(max_bytes + 1)
        except Exception as exc:  # noqa: BLE001 - corrupt members are reported, never raised
            return Candidate(**cand, error=f"unreadable zip member: {exc.__class__.__name__}")
        if len(data) > max_bytes:
            return Candidate(**cand, error="zip bomb refused: member larger than declared")
        return Candidate(**cand, data=data)


def _predictions_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    candidates = sorted(
        (
            i
            for i in archive.infolist()
            if i.filename.lower().endswith(PREDICTION_FILES) and "__MACOSX" not in i.filename
        ),
        key=lambda i: (i.filename.count("/"), i.filename),
    )
    if not candidates:
        raise PredictionsInvalid("the zip holds no .json or .jsonl file of predictions")
    if candidates[0].file_size > settings.ZIP_MAX_TOTAL_BYTES:
        raise PredictionsInvalid("the predictions file is too large")
    return candidates[0]


# --- Routes and captions -------------------------------------------------------------------------


def imported_route(*, model: str):
    """The route imported captions of `model` are attributed to (made once per model name).

    It is disabled, so no run can call it; config {"imported": true} marks it.
    """
    from routing.models import Route

    existing = Route.objects.filter(config__imported=True, model=model).order_by("id").first()
    if existing:
        return existing
    base = slugify(f"imported-{model}")[:90] or "imported"
    name, n = base, 1
    while Route.objects.filter(name=name).exists():
        n += 1
        name = f"{base}-{n}"
    return Route.objects.create(
        name=name,
        provider=Route.Provider.LOCAL,
        model=model,
        config={"imported": True},
        enabled=False,
        max_attempts=1,
    )


def _attach(
    image_id: int, predictions: list[Prediction], routes: dict[str, Any]
) -> tuple[int, int]:
    from review.services.items import review_item_enqueue
    from routing.models import Caption

    added = skipped = 0
    now = timezone.now()
    for prediction in predictions:
        if prediction.model not in routes:
            routes[prediction.model] = imported_route(model=prediction.model)
        route = routes[prediction.model]
        with transaction.atomic():
            if Caption.objects.filter(
                image_id=image_id,
                origin=Caption.Origin.IMPORTED,
                model_name=prediction.model,
                text=prediction.text,
            ).exists():
                skipped += 1
                continue
            caption = Caption.objects.create(
                image_id=image_id,
                route=route,
                origin=Caption.Origin.IMPORTED,
                model_name=prediction.model,
                status=Caption.Status.SUCCEEDED,
                text=prediction.text,
                params={"score": prediction.score} if prediction.score is not None else {},
                finished_at=now,
            )
            review_item_enqueue(caption=caption)
        added += 1
    return added, skipped


def predictions_import(
    *,
    batch: ImportBatch,
    fh: BinaryIO,
    allow_paths: bool = False,
    base: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """Import a predictions file (or a zip with one and its images) into `batch`.

    Yields one dict per line: line, source, status, reason, image_id, captions. Images go through
    batch_ingest (its items and counters are the batch's progress); predictions of a line whose
    image was imported or already there are attached to that image.
    """
    archive = None
    if zipfile.is_zipfile(fh):
        fh.seek(0)
        try:
            archive = zipfile.ZipFile(fh)
            listing = archive.open(_predictions_member(archive))
        except zipfile.BadZipFile as exc:
            raise PredictionsInvalid(f"not a readable zip archive: {exc}") from exc
    else:
        fh.seek(0)
        listing = fh
    images = _Images(archive, allow_paths=allow_paths, base=base)
    known: dict[str, int] = {}  # image reference -> image id, so a URL is fetched once
    routes: dict[str, Any] = {}
    waiting: deque[_Line] = deque()  # the line of each candidate handed to batch_ingest
    ready: deque[dict[str, Any]] = deque()  # lines whose image was known: no candidate needed

    def candidates() -> Iterator[Candidate]:
        for line in parse_predictions(listing):
            if not line.error and line.image_ref in known:
                image_id = known[line.image_ref]
                added, skipped = _attach(image_id, line.predictions, routes)
                ready.append(_result(line, "duplicate", "image of an earlier line", image_id))
                ready[-1].update(captions=added, skipped=skipped)
                continue
            waiting.append(line)
            if line.error:
                yield Candidate(
                    source=_source(line),
                    name=line.image_ref or "?",
                    origin=Image.Source.UPLOAD,
                    error=f"line {line.number}: {line.error}",
                )
            else:
                yield images.candidate(line)

    try:
        for outcome in batch_ingest(batch=batch, candidates=candidates(), thumbnails_inline=True):
            while ready:
                yield ready.popleft()
            line = waiting.popleft()
            result = _result(line, outcome.status, outcome.reason, outcome.image_id)
            if outcome.image_id is not None and not line.error:
                known.setdefault(line.image_ref, outcome.image_id)
                result["captions"], result["skipped"] = _attach(
                    outcome.image_id, line.predictions, routes
                )
            yield result
        while ready:
            yield ready.popleft()
    finally:
        if archive is not None:
            archive.close()


def _source(line: _Line) -> str:
    return f"line {line.number}: {line.image_ref}"[:1000]


def _result(line: _Line, status: str, reason: str, image_id: int | None) -> dict[str, Any]:
    return {
        "line": line.number,
        "source": _source(line),
        "status": status,
        "reason": reason,
        "image_id": image_id,
        "captions": 0,
        "skipped": 0,
    }
