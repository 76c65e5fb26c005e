"""What an export contains and how it is written: one frozen value shared by the page, the command
and the worker (stored on the Export row as plain JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

FORMATS = ("jsonl", "csv", "coco", "hf", "labelstudio")
SCOPES = ("approved", "reviewed")
IMAGE_MODES = ("url", "bundle")
VARIANTS = ("display", "original")
DECISIONS = ("", "accepted", "edited", "rejected")
# Formats whose files only make sense with approved captions.
APPROVED_ONLY = ("coco", "hf")


class ExportInvalid(ValueError):
    """The export as asked for cannot be made; the message says why."""


@dataclass(frozen=True)
class ExportSpec:
    format: str
    # approved: approved captions (the default); reviewed: approved and rejected ones.
    scope: str = "approved"
    # url: the label file references each image by URL; bundle: one zip with images/ inside.
    images: str = "url"
    # display: the served copy (orientation applied, EXIF/GPS stripped); original: the bytes
    # that were imported. Only bundles carry image bytes.
    variant: str = "display"
    provenance: bool = False
    parquet: bool = False  # hf only: metadata.parquet instead of metadata.jsonl
    base_url: str = ""  # prefix of image URLs (https://host); none: file names only
    # filters
    run_id: int | None = None
    route: str = ""
    model: str = ""
    decided_from: date | None = None
    decided_to: date | None = None
    risk: str = ""  # a RiskCategory value, "any", or "" for no filter
    decision: str = ""  # "", accepted (as-is), edited, rejected
    batch_id: int | None = None

    def __post_init__(self) -> None:
        from review.models import RiskCategory

        if self.format not in FORMATS:
            raise ExportInvalid(f"Unknown format {self.format!r}; one of {', '.join(FORMATS)}.")
        for name, allowed in (
            ("scope", SCOPES),
            ("images", IMAGE_MODES),
            ("variant", VARIANTS),
            ("decision", DECISIONS),
        ):
            if getattr(self, name) not in allowed:
                choices = ", ".join(a or "(none)" for a in allowed)
                raise ExportInvalid(f"{name} must be one of {choices}.")
        if self.risk and self.risk != "any" and self.risk not in RiskCategory.values:
            raise ExportInvalid(f"Unknown risk category {self.risk!r}.")
        if self.format == "hf" and self.images != "bundle":
            # imagefolder is a folder of images next to its metadata file.
            object.__setattr__(self, "images", "bundle")
        if self.parquet and self.format != "hf":
            raise ExportInvalid("Parquet is an option of the Hugging Face export only.")
        if self.decision == "rejected" and self.scope == "approved":
            object.__setattr__(self, "scope", "reviewed")
        if self.scope == "reviewed" and self.format in APPROVED_ONLY:
            raise ExportInvalid(
                "COCO and Hugging Face exports carry approved captions only; "
                "use JSONL, CSV or Label Studio for rejected ones."
            )
        if self.decided_from and self.decided_to and self.decided_from > self.decided_to:
            raise ExportInvalid("The date range ends before it starts.")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ExportInvalid("The base URL must start with http:// or https://.")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def bundled(self) -> bool:
        return self.images == "bundle"

    def as_options(self) -> dict[str, Any]:
        options = asdict(self)
        for key in ("decided_from", "decided_to"):
            if options[key] is not None:
                options[key] = options[key].isoformat()
        return options

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ExportSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in options.items() if k in known}
        for key in ("decided_from", "decided_to"):
            if values.get(key):
                values[key] = date.fromisoformat(values[key])
        return cls(**values)

    def download_name(self, slug: str) -> str:
        if self.bundled:
            return f"{slug}-{self.format}.zip"
        ext = {"jsonl": "jsonl", "csv": "csv", "coco": "json", "labelstudio": "json"}[self.format]
        return f"{slug}-{self.format}.{ext}"
