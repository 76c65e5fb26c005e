"""The rows an export is made of, read in chunks from a server-side cursor.

Memory stays flat however large the project: nothing here holds more than one chunk of rows (and,
with provenance, that chunk's verdicts, adjudications and risk flags). Rows come ordered by image,
then caption, so an unchanged selection always reads back in the same order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, Exists, F, Func, OuterRef, QuerySet, TextField, Value, When
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone

from labeling import imaging
from labeling.models import Image, Project

from .spec import ExportSpec

CHUNK = 2000

_BASE_COLUMNS = (
    "id",
    "image_id",
    "caption_id",
    "state",
    "final_text",
    "edited",
    "caption__text",
    "caption__model_name",
    "caption__route__name",
    "image__width",
    "image__height",
    "image__format",
)
_PROVENANCE_COLUMNS = (
    "caption__origin",
    "caption__route__provider",
    "caption__run_id",
    "caption__prompt",
    "caption__cost_usd",
    "caption__latency_ms",
    "char_distance",
    "word_distance",
    "char_effort",
    "word_effort",
    "decided_at",
)


@dataclass(slots=True)
class Row:
    """One reviewed caption."""

    item_id: int
    image_id: int
    caption_id: int
    state: str
    caption: str  # the approved text ("" when rejected)
    edited: bool | None
    model_caption: str
    model: str
    route: str
    width: int
    height: int
    image_format: str
    provenance: dict[str, Any] | None = None

    @property
    def approved(self) -> bool:
        return self.state == "approved"


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def selection(*, project: Project, spec: ExportSpec) -> QuerySet:
    """The review items the spec selects (unordered)."""
    from review.models import ReviewItem
    from review.selectors import image_flagged_q

    states = [ReviewItem.State.APPROVED]
    if spec.scope == "reviewed":
        states.append(ReviewItem.State.REJECTED)
    qs = ReviewItem.objects.filter(project=project, state__in=states)
    if spec.run_id:
        qs = qs.filter(caption__run_id=spec.run_id)
    if spec.route:
        qs = qs.filter(caption__route__name=spec.route)
    if spec.model:
        qs = qs.filter(caption__model_name=spec.model)
    if spec.decided_from:
        qs = qs.filter(decided_at__gte=_day_start(spec.decided_from))
    if spec.decided_to:
        qs = qs.filter(decided_at__lt=_day_start(spec.decided_to + timedelta(days=1)))
    if spec.risk:
        flagged = image_flagged_q(category="" if spec.risk == "any" else spec.risk)
        qs = qs.filter(Exists(Image.objects.filter(flagged, pk=OuterRef("image_id"))))
    if spec.decision == "accepted":
        qs = qs.filter(state=ReviewItem.State.APPROVED, edited=False)
    elif spec.decision == "edited":
        qs = qs.filter(state=ReviewItem.State.APPROVED, edited=True)
    elif spec.decision == "rejected":
        qs = qs.filter(state=ReviewItem.State.REJECTED)
    if spec.batch_id:
        qs = qs.filter(image__batch_id=spec.batch_id)
    return qs


def selected_images(*, project: Project, spec: ExportSpec) -> QuerySet[Image]:
    """Images with at least one selected row, oldest first."""
    items = selection(project=project, spec=spec).filter(image_id=OuterRef("pk"))
    return Image.objects.filter(Exists(items), project=project).order_by("id")


def count(*, project: Project, spec: ExportSpec) -> tuple[int, int]:
    """(rows, images) the spec selects: two aggregates in SQL."""
    rows = selection(project=project, spec=spec).count()
    images = selected_images(project=project, spec=spec).count() if rows else 0
    return rows, images


def iter_rows(*, project: Project, spec: ExportSpec) -> Iterator[Row]:
    columns = _BASE_COLUMNS + (_PROVENANCE_COLUMNS if spec.provenance else ())
    qs = ordered_selection(project=project, spec=spec).values_list(*columns)
    chunk: list[tuple] = []
    for values in qs.iterator(chunk_size=CHUNK):
        chunk.append(values)
        if len(chunk) == CHUNK:
            yield from _rows(chunk, spec)
            chunk = []
    if chunk:
        yield from _rows(chunk, spec)


def _rows(chunk: list[tuple], spec: ExportSpec) -> Iterator[Row]:
    extra = _provenance(chunk) if spec.provenance else None
    for values in chunk:
        row = Row(*values[: len(_BASE_COLUMNS)])
        if extra is not None:
            row.provenance = extra(values)
        yield row


# --- Provenance ----------------------------------------------------------------------------------


def reviewer_hash(user_id: int | None) -> str | None:
    """A stable pseudonym: the same reviewer reads the same in every export of this install."""
    if user_id is None:
        return None
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"reviewer:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _provenance(chunk: list[tuple]):
    """Fetch the chunk's verdicts, adjudications and flags at once; returns row -> provenance."""
    from review.models import Adjudication, RiskFlag, Verdict
    from review.selectors import risk_corrections_latest

    item_ids = [v[0] for v in chunk]
    image_ids = sorted({v[1] for v in chunk})
    verdicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in (
        Verdict.objects.filter(item_id__in=item_ids)
        .order_by("created_at", "id")
        .values_list(
            "item_id",
            "reviewer_id",
            "decision",
            "final_text",
            "reasons",
            "note",
            "time_spent_ms",
            "created_at",
        )
    ):
        verdicts[v[0]].append(
            {
                "reviewer": reviewer_hash(v[1]),
                "decision": v[2],
                "text": v[3],
                "reasons": v[4],
                "note": v[5],
                "time_spent_ms": v[6],
                "at": _iso(v[7]),
            }
        )
    adjudications = {
        a[0]: {
            "admin": reviewer_hash(a[1]),
            "decision": a[2],
            "text": a[3],
            "note": a[4],
            "at": _iso(a[5]),
        }
        for a in Adjudication.objects.filter(item_id__in=item_ids).values_list(
            "item_id", "admin_id", "decision", "final_text", "note", "created_at"
        )
    }
    corrections = risk_corrections_latest(image_ids=image_ids)
    flags: dict[int, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    for image_id, category, score, flagged, version in (
        RiskFlag.objects.filter(image_id__in=image_ids)
        .order_by("image_id", "category")
        .values_list("image_id", "category", "score", "flagged", "analyser_version")
    ):
        seen.add((image_id, category))
        corrected = corrections.get((image_id, category))
        flags[image_id].append(
            {
                "category": category,
                "score": round(score, 4),
                "analyser_flagged": flagged,
                "flagged": flagged if corrected is None else corrected,
                "corrected_by_admin": corrected is not None and corrected != flagged,
                "analyser_version": version,
            }
        )
    for (image_id, category), corrected in sorted(corrections.items()):
        if (image_id, category) not in seen:  # an admin's flag on an unanalysed image
            flags[image_id].append(
                {
                    "category": category,
                    "score": None,
                    "analyser_flagged": None,
                    "flagged": corrected,
                    "corrected_by_admin": True,
                    "analyser_version": None,
                }
            )

    def provenance(values: tuple) -> dict[str, Any]:
        item_id, image_id = values[0], values[1]
        (origin, provider, run_id, prompt, cost, latency, cd, wd, ce, we, decided_at) = values[
            len(_BASE_COLUMNS) :
        ]
        return {
            "route": values[8],
            "provider": provider,
            "model": values[7],
            "origin": origin,
            "run_id": run_id,
            "prompt": prompt,
            "cost_usd": str(cost) if cost is not None else None,
            "latency_ms": latency,
            "decided_at": _iso(decided_at),
            "edit": {
                "char_distance": cd,
                "word_distance": wd,
                "char_effort": ce,
                "word_effort": we,
            },
            "verdicts": verdicts.get(item_id, []),
            "adjudication": adjudications.get(item_id),
            "risk_flags": flags.get(image_id, []),
        }

    return provenance


# --- Names and URLs ------------------------------------------------------------------------------


def image_extension(spec: ExportSpec, image_format: str) -> str:
    if spec.variant == "display":
        return "webp"  # the served copy is always WebP
    return imaging.EXTENSIONS.get(image_format, "bin")


def image_file_name(spec: ExportSpec, image_id: int, image_format: str) -> str:
    """The image's stable name inside a bundle, relative to the bundle's images/ folder."""
    return f"{image_id:08d}.{image_extension(spec, image_format)}"


class UrlMaker:
    """Absolute URLs of the permission-checked image view, without a reverse() per row."""

    def __init__(self, base_url: str) -> None:
        marker = 987654321
        path = reverse("labeling:image-display", kwargs={"pk": marker})
        self.enabled = bool(base_url)
        self.head, self.tail = (base_url + path).split(str(marker))

    def __call__(self, image_id: int) -> str | None:
        return f"{self.head}{image_id}{self.tail}" if self.enabled else None


# --- JSON built by PostgreSQL --------------------------------------------------------------------
# Rows without provenance are turned into JSON text by the database (json_build_object), which is
# several times faster than building dicts in Python. Python writes the same bytes when it does
# the work (SQLite, provenance): formats._dumps uses PostgreSQL's separators.


def sql_json_enabled(spec: ExportSpec) -> bool:
    return (
        connection.vendor == "postgresql"
        and not spec.provenance
        and getattr(settings, "EXPORT_SQL_JSON", True)
    )


class _JsonObject(Func):
    function = "json_build_object"
    output_field = TextField()


class _ZeroPadded(Func):
    """f"{n:08d}" in SQL: at least eight digits, never truncated."""

    template = "lpad(%(expressions)s::text, greatest(8, length(%(expressions)s::text)), '0')"
    output_field = TextField()


def _text(expr) -> Cast:
    return Cast(expr, TextField())


def sql_file_name(spec: ExportSpec, image_id: str, image_format: str):
    """The expression for image_file_name(spec, image_id, format)."""
    if spec.variant == "display":
        ext = Value("webp")
    else:
        ext = Case(
            *[When(**{image_format: fmt}, then=Value(e)) for fmt, e in imaging.EXTENSIONS.items()],
            default=Value("bin"),
        )
    return Concat(_ZeroPadded(F(image_id)), Value("."), ext, output_field=TextField())


def sql_url(url: UrlMaker, image_id: str):
    return Concat(Value(url.head), _text(F(image_id)), Value(url.tail), output_field=TextField())


def json_rows(qs: QuerySet, pairs: list[tuple[str, object]]) -> Iterator[bytes]:
    """One JSON object per row of `qs` (already ordered), keys in the order given, as UTF-8
    bytes ending in a line feed.

    Outside a transaction the rows stream through COPY on a second connection: no Python object
    per column, no cursor materialised, and this connection stays free for progress reports.
    Inside one (a caller's atomic block, tests) another connection could not see uncommitted
    rows, so they come through a server-side cursor here: the same bytes, more slowly.
    """
    args: list[object] = []
    for key, expr in pairs:
        args += [Value(key), expr]
    lines = qs.annotate(_json=_text(_JsonObject(*args))).values_list("_json", flat=True)
    if connection.in_atomic_block:
        for line in lines.iterator(chunk_size=CHUNK):
            yield (line + "\n").encode("utf-8")
        return
    query, params = lines.query.sql_with_params()
    # CSV quoting with two control characters JSON text never contains: each row comes out
    # exactly as PostgreSQL wrote it (text format would double every backslash).
    copy_sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    with _side_connection() as side, side.cursor() as cursor, cursor.copy(copy_sql, params) as rows:
        for data in rows:
            yield bytes(data)


def _side_connection():
    import psycopg

    params = connection.get_connection_params()
    keep = ("dbname", "user", "password", "host", "port", "options", "sslmode", "client_encoding")
    return psycopg.connect(**{k: v for k, v in params.items() if k in keep and v})


def ordered_selection(*, project: Project, spec: ExportSpec) -> QuerySet:
    return selection(project=project, spec=spec).order_by("image_id", "caption_id", "id")
