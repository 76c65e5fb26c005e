"""The five file formats. Each writer streams rows into a binary file, one chunk of text at a time,
and returns how many caption rows it wrote. Nothing depends on the clock or on dict order, so an
unchanged selection gives the same bytes every time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any, BinaryIO

from django.db.models import F, Value
from django.db.models.functions import Concat

from labeling.models import Project

from . import rows as sql
from .rows import CHUNK, Row, UrlMaker, image_file_name, iter_rows, selected_images
from .spec import ExportSpec

Tick = Callable[[int], None]

# Label Studio's image-captioning template: the names every task and prediction refer to.
LABEL_STUDIO_CONFIG = (
    "<View>\n"
    '  <Image name="image" value="$image"/>\n'
    '  <TextArea name="caption" toName="image" placeholder="Caption" rows="3" '
    'editable="true" maxSubmissions="1"/>\n'
    "</View>\n"
)
LS_FROM_NAME, LS_TO_NAME = "caption", "image"
IMAGES_DIR = "images"


def _dumps(obj: Any) -> str:
    # PostgreSQL's json_build_object separators, so rows read the same whoever built them.
    return json.dumps(obj, ensure_ascii=False, separators=(", ", " : "))


class _Buffer:
    """Collects UTF-8 pieces and writes them in large blocks (one write per chunk of rows)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.parts = out, []

    def add(self, text: str) -> None:
        self.add_bytes(text.encode("utf-8"))

    def add_bytes(self, data: bytes) -> None:
        self.parts.append(data)
        if len(self.parts) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write(b"".join(self.parts))
            self.parts = []


def _bundle_name(spec: ExportSpec, row_or_image_id: int, image_format: str) -> str:
    return f"{IMAGES_DIR}/{image_file_name(spec, row_or_image_id, image_format)}"


# --- JSONL and CSV: one line per reviewed caption -------------------------------------------------


def _flat(row: Row, spec: ExportSpec, url: UrlMaker) -> dict[str, Any]:
    record: dict[str, Any] = {"image_id": row.image_id}
    if spec.bundled:
        record["file_name"] = _bundle_name(spec, row.image_id, row.image_format)
    if url.enabled:
        record["image_url"] = url(row.image_id)
    record.update(
        width=row.width,
        height=row.height,
        caption=row.caption,
        state=row.state,
        edited=row.edited,
        model=row.model,
        route=row.route,
        model_caption=row.model_caption,
        item_id=row.item_id,
        caption_id=row.caption_id,
    )
    return record


def _flat_sql(spec: ExportSpec, url: UrlMaker) -> list[tuple[str, Any]]:
    """_flat's keys and values as SQL expressions over a review item."""
    pairs: list[tuple[str, Any]] = [("image_id", F("image_id"))]
    if spec.bundled:
        name = sql.sql_file_name(spec, "image_id", "image__format")
        pairs.append(("file_name", Concat(Value(f"{IMAGES_DIR}/"), name)))
    if url.enabled:
        pairs.append(("image_url", sql.sql_url(url, "image_id")))
    return pairs + [
        ("width", F("image__width")),
        ("height", F("image__height")),
        ("caption", F("final_text")),
        ("state", F("state")),
        ("edited", F("edited")),
        ("model", F("caption__model_name")),
        ("route", F("caption__route__name")),
        ("model_caption", F("caption__text")),
        ("item_id", F("id")),
        ("caption_id", F("caption_id")),
    ]


def write_jsonl(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    url = UrlMaker(spec.base_url)
    buffer, n = _Buffer(out), 0
    if sql.sql_json_enabled(spec):
        items = sql.ordered_selection(project=project, spec=spec)
        for line in sql.json_rows(items, _flat_sql(spec, url)):
            buffer.add_bytes(line)
            n += 1
            tick(1)
        buffer.flush()
        return n
    for row in iter_rows(project=project, spec=spec):
        record = _flat(row, spec, url)
        if row.provenance is not None:
            record["provenance"] = row.provenance
        buffer.add(_dumps(record) + "\n")
        n += 1
        tick(1)
    buffer.flush()
    return n


_CSV_PROVENANCE = (
    "provider",
    "origin",
    "run_id",
    "prompt",
    "cost_usd",
    "latency_ms",
    "decided_at",
    "char_distance",
    "word_distance",
    "char_effort",
    "word_effort",
    "verdicts",
    "adjudication",
    "risk_flags",
)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _dumps(value)
    return value


def _csv_provenance(p: dict[str, Any]) -> list[Any]:
    flat = {**p, **p["edit"]}
    return [_csv_value(flat[key]) for key in _CSV_PROVENANCE]


def write_csv(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    """RFC 4180: CRLF line ends, fields with quotes, commas or line breaks quoted."""
    url = UrlMaker(spec.base_url)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    header_written, n = False, 0
    for row in iter_rows(project=project, spec=spec):
        record = _flat(row, spec, url)
        if not header_written:
            writer.writerow(list(record) + (list(_CSV_PROVENANCE) if spec.provenance else []))
            header_written = True
        values = [_csv_value(v) for v in record.values()]
        if row.provenance is not None:
            values += _csv_provenance(row.provenance)
        writer.writerow(values)
        n += 1
        tick(1)
        if n % CHUNK == 0:
            out.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
    if not header_written:
        writer.writerow(_csv_header(spec))
    out.write(text.getvalue().encode("utf-8"))
    return n


def _csv_header(spec: ExportSpec) -> list[str]:
    head = ["image_id"]
    if spec.bundled:
        head.append("file_name")
    if spec.base_url:
        head.append("image_url")
    head += ["width", "height", "caption", "state", "edited", "model", "route"]
    head += ["model_caption", "item_id", "caption_id"]
    return head + (list(_CSV_PROVENANCE) if spec.provenance else [])


# --- COCO captions -------------------------------------------------------------------------------


def write_coco(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    """One JSON object, written in two streamed passes: the images, then the annotations."""
    url = UrlMaker(spec.base_url)
    buffer = _Buffer(out)
    info = {
        "description": f"Approved captions of {project.name}",
        "contributor": "captiondesk",
        "version": "1.0",
    }
    buffer.add('{"info":' + _dumps(info) + ',"licenses":[],"images":[\n')
    first = True
    for entry in _coco_images(project, spec, url):
        buffer.add_bytes(entry if first else b",\n" + entry)
        first = False
        tick(1)
    buffer.add('\n],"annotations":[\n')
    n = 0
    if sql.sql_json_enabled(spec):
        pairs = [
            ("id", F("id")),
            ("image_id", F("image_id")),
            ("caption", F("final_text")),
            ("model", F("caption__model_name")),
            ("edited", F("edited")),
        ]
        items = sql.ordered_selection(project=project, spec=spec)
        for line in sql.json_rows(items, pairs):
            buffer.add_bytes(line[:-1] if n == 0 else b",\n" + line[:-1])
            n += 1
            tick(1)
        buffer.add("\n]}\n")
        buffer.flush()
        return n
    for row in iter_rows(project=project, spec=spec):
        annotation: dict[str, Any] = {
            "id": row.item_id,
            "image_id": row.image_id,
            "caption": row.caption,
            "model": row.model,
            "edited": row.edited,
        }
        if row.provenance is not None:
            annotation["provenance"] = row.provenance
        buffer.add(("" if n == 0 else ",\n") + _dumps(annotation))
        n += 1
        tick(1)
    buffer.add("\n]}\n")
    buffer.flush()
    return n


def _coco_images(project: Project, spec: ExportSpec, url: UrlMaker) -> Iterator[bytes]:
    images = selected_images(project=project, spec=spec)
    if sql.sql_json_enabled(spec):
        pairs: list[tuple[str, Any]] = [
            ("id", F("id")),
            ("file_name", sql.sql_file_name(spec, "id", "format")),
            ("width", F("width")),
            ("height", F("height")),
        ]
        if url.enabled:
            pairs.append(("coco_url", sql.sql_url(url, "id")))
        for line in sql.json_rows(images, pairs):
            yield line[:-1]
        return
    values = images.values_list("id", "width", "height", "format")
    for image_id, width, height, image_format in values.iterator(chunk_size=CHUNK):
        entry: dict[str, Any] = {
            "id": image_id,
            "file_name": image_file_name(spec, image_id, image_format),
            "width": width,
            "height": height,
        }
        if url.enabled:
            entry["coco_url"] = url(image_id)
        yield _dumps(entry).encode("utf-8")


# --- Hugging Face imagefolder: one metadata row per image ----------------------------------------


def _by_image(rows: Iterator[Row]) -> Iterator[list[Row]]:
    for _, group in groupby(rows, key=lambda r: r.image_id):
        yield list(group)


def _hf_record(group: list[Row], spec: ExportSpec) -> dict[str, Any]:
    head = group[0]
    record: dict[str, Any] = {
        "file_name": _bundle_name(spec, head.image_id, head.image_format),
        "image_id": head.image_id,
        "width": head.width,
        "height": head.height,
        "caption": head.caption,
        "captions": [r.caption for r in group],
        "models": [r.model for r in group],
        "edited": [bool(r.edited) for r in group],
        "item_ids": [r.item_id for r in group],
    }
    if spec.provenance:
        # A JSON string, so the Parquet schema stays the same whatever the provenance holds.
        record["provenance"] = _dumps([r.provenance for r in group])
    return record


def write_hf(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    """metadata.jsonl (or metadata.parquet), next to images/ in the bundle."""
    if spec.parquet:
        return _write_hf_parquet(project, spec, out, tick)
    buffer, n = _Buffer(out), 0
    for group in _by_image(iter_rows(project=project, spec=spec)):
        buffer.add(_dumps(_hf_record(group, spec)) + "\n")
        n += len(group)
        tick(len(group))
    buffer.flush()
    return n


def _hf_schema(spec: ExportSpec):
    import pyarrow as pa

    columns = [
        ("file_name", pa.string()),
        ("image_id", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("caption", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("models", pa.list_(pa.string())),
        ("edited", pa.list_(pa.bool_())),
        ("item_ids", pa.list_(pa.int64())),
    ]
    if spec.provenance:
        columns.append(("provenance", pa.string()))
    return pa.schema(columns)


def _write_hf_parquet(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _hf_schema(spec)
    n, batch = 0, []
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for group in _by_image(iter_rows(project=project, spec=spec)):
            batch.append(_hf_record(group, spec))
            n += len(group)
            tick(len(group))
            if len(batch) == CHUNK:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return n


# --- Label Studio: one task per image ------------------------------------------------------------


def _ls_task(group: list[Row], spec: ExportSpec, url: UrlMaker) -> dict[str, Any]:
    head = group[0]
    if url.enabled:
        image_ref = url(head.image_id)
    else:  # the file's name in the bundle (Label Studio then needs the images served itself)
        image_ref = _bundle_name(spec, head.image_id, head.image_format)
    predictions = [
        {
            "model_version": r.model or r.route or "unknown",
            "result": [_ls_result(f"p{r.caption_id}", r.model_caption)],
        }
        for r in group
    ]
    annotations = [
        {
            "result": [_ls_result(f"a{r.item_id}", r.caption)],
            "was_cancelled": False,
            "ground_truth": False,
        }
        for r in group
        if r.approved
    ]
    task: dict[str, Any] = {
        "id": head.image_id,
        "data": {"image": image_ref, "captiondesk_image_id": head.image_id},
        "annotations": annotations,
        "predictions": predictions,
    }
    if spec.provenance:
        task["meta"] = {"captiondesk": [r.provenance for r in group]}
    return task


def _ls_result(region_id: str, text: str) -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": LS_FROM_NAME,
        "to_name": LS_TO_NAME,
        "type": "textarea",
        "value": {"text": [text]},
    }


def write_labelstudio(project: Project, spec: ExportSpec, out: BinaryIO, tick: Tick) -> int:
    """A JSON array of tasks for the image-captioning template (LABEL_STUDIO_CONFIG)."""
    url = UrlMaker(spec.base_url)
    buffer, n = _Buffer(out), 0
    buffer.add("[\n")
    for group in _by_image(iter_rows(project=project, spec=spec)):
        buffer.add(("" if n == 0 else ",\n") + _dumps(_ls_task(group, spec, url)))
        n += len(group)
        tick(len(group))
    buffer.add("\n]\n")
    buffer.flush()
    return n


WRITERS: dict[str, Callable[[Project, ExportSpec, BinaryIO, Tick], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "coco": write_coco,
    "hf": write_hf,
    "labelstudio": write_labelstudio,
}


def label_file_name(spec: ExportSpec) -> str:
    """The label file's name inside a bundle."""
    if spec.format == "hf":
        return "metadata.parquet" if spec.parquet else "metadata.jsonl"
    return {
        "jsonl": "captions.jsonl",
        "csv": "captions.csv",
        "coco": "annotations/captions.json",
        "labelstudio": "tasks.json",
    }[spec.format]
