"""Exports of reviewed captions: JSONL, CSV, COCO captions, Hugging Face imagefolder, Label Studio.

`export_write` streams one export into a file (the command line uses it directly); `jobs` runs the
same as a background job with progress and cancellation.
"""

from .jobs import ExportCancelled, export_cancel, export_create, export_run
from .spec import ExportInvalid, ExportSpec
from .write import Written, export_write, total_units

__all__ = [
    "ExportCancelled",
    "ExportInvalid",
    "ExportSpec",
    "Written",
    "export_cancel",
    "export_create",
    "export_run",
    "export_write",
    "total_units",
]
