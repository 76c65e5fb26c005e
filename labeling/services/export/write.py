"""Write one export into a binary file: the label file alone, or a zip bundle with the images."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from labeling.models import Image, Project
from labeling.services import derivatives

from . import rows
from .formats import IMAGES_DIR, LABEL_STUDIO_CONFIG, WRITERS, label_file_name
from .spec import ExportSpec

# Zip entries carry no clock: the same selection gives the same archive, byte for byte.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_COPY_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class Written:
    rows: int
    images: int


class _Zip:
    """A zip archive whose entries have fixed dates and permissions, written in a fixed order."""

    def __init__(self, out: BinaryIO) -> None:
        self.zip = zipfile.ZipFile(out, "w", allowZip64=True)

    def open(self, name: str, *, compress: bool = True):
        info = zipfile.ZipInfo(name, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        info.create_system = 3
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        # force_zip64: a label file may pass 4 GiB, and its size is not known in advance.
        return self.zip.open(info, "w", force_zip64=True)

    def close(self) -> None:
        self.zip.close()


def total_units(*, project: Project, spec: ExportSpec) -> tuple[int, int, int]:
    """(rows, images, progress units): rows, plus one unit per image listed (COCO) or copied."""
    n_rows, n_images = rows.count(project=project, spec=spec)
    units = n_rows
    if spec.format == "coco":
        units += n_images
    if spec.bundled:
        units += n_images
    return n_rows, n_images, units


def export_write(
    *,
    project: Project,
    spec: ExportSpec,
    out: BinaryIO,
    tick: Callable[[int], None] | None = None,
) -> Written:
    """Stream the export into `out` (a seekable binary file). `tick(n)` reports progress units
    (see total_units) and may raise to stop the export."""
    tick = tick or (lambda n: None)
    writer = WRITERS[spec.format]
    if not spec.bundled:
        return Written(rows=writer(project, spec, out, tick), images=0)
    bundle = _Zip(out)
    with bundle.open(label_file_name(spec)) as fh:
        n_rows = writer(project, spec, fh, tick)
    if spec.format == "labelstudio":
        with bundle.open("label_config.xml") as fh:
            fh.write(LABEL_STUDIO_CONFIG.encode())
    n_images = _write_images(bundle, project, spec, tick)
    bundle.close()
    return Written(rows=n_rows, images=n_images)


def _write_images(bundle: _Zip, project: Project, spec: ExportSpec, tick) -> int:
    images = (
        rows.selected_images(project=project, spec=spec)
        .only("id", "project_id", "sha256", "format", "file", "display")
        .order_by("id")
    )
    n = 0
    for image in images.iterator(chunk_size=500):
        name = f"{IMAGES_DIR}/{rows.image_file_name(spec, image.pk, image.format)}"
        with _image_source(image, spec) as src, bundle.open(name, compress=False) as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)
        n += 1
        tick(1)
    return n


def _image_source(image: Image, spec: ExportSpec):
    if spec.variant == "original":
        return image.file.open("rb")
    # The served copy (orientation applied, EXIF and GPS stripped), made now if never opened.
    derivatives.image_display_file(image=image)
    return image.display.open("rb")
