"""python manage.py export --project SLUG --format {jsonl,csv,coco,hf,labelstudio} --out PATH
[filters]"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import Project
from labeling.services.export import ExportInvalid, ExportSpec, export_write, total_units
from labeling.services.export.spec import DECISIONS, FORMATS, IMAGE_MODES, VARIANTS


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = "Export a project's approved (or all reviewed) captions to a file."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, help="File to write (replaced when done).")
        parser.add_argument(
            "--include",
            choices=("approved", "reviewed"),
            default="approved",
            help="approved captions (default) or every reviewed one, rejected included.",
        )
        parser.add_argument(
            "--images",
            choices=IMAGE_MODES,
            default="url",
            help="url: reference images by URL (needs --base-url); bundle: a zip with images/.",
        )
        parser.add_argument(
            "--variant",
            choices=VARIANTS,
            default="display",
            help="Bundled bytes: the served copy without EXIF/GPS (default) or the original.",
        )
        parser.add_argument("--base-url", default="", help="e.g. https://captions.example.org")
        parser.add_argument("--provenance", action="store_true", help="Route, cost, verdicts...")
        parser.add_argument("--parquet", action="store_true", help="hf: metadata.parquet.")
        parser.add_argument("--run", type=int, help="Only captions of this caption run.")
        parser.add_argument("--route", default="", help="Only captions served by this route.")
        parser.add_argument("--model", default="", help="Only captions of this model name.")
        parser.add_argument("--from", dest="decided_from", type=_day, help="Decided on or after.")
        parser.add_argument("--to", dest="decided_to", type=_day, help="Decided on or before.")
        parser.add_argument("--risk", default="", help="chart, screenshot, medical or any.")
        parser.add_argument("--decision", choices=[d for d in DECISIONS if d], default="")
        parser.add_argument("--batch", type=int, help="Only images of this import batch.")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project {opts['project']!r}.")
        try:
            spec = ExportSpec(
                format=opts["format"],
                scope=opts["include"],
                images=opts["images"],
                variant=opts["variant"],
                provenance=opts["provenance"],
                parquet=opts["parquet"],
                base_url=opts["base_url"],
                run_id=opts["run"],
                route=opts["route"],
                model=opts["model"],
                decided_from=opts["decided_from"],
                decided_to=opts["decided_to"],
                risk=opts["risk"],
                decision=opts["decision"],
                batch_id=opts["batch"],
            )
        except ExportInvalid as exc:
            raise CommandError(str(exc)) from exc
        out = Path(opts["out"])
        if out.is_dir():
            raise CommandError(f"{out} is a folder; give a file name.")
        n_rows, n_images, units = total_units(project=project, spec=spec)
        bar = tqdm(
            total=units, unit="row", desc="Exporting", file=sys.stderr, disable=None, smoothing=0.1
        )
        # Written next to the target, then renamed: a failed export never leaves half a file.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or ".")
        try:
            with os.fdopen(fd, "w+b") as tmp:
                written = export_write(project=project, spec=spec, out=tmp, tick=bar.update)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp's 0600 would hide it from the team
            os.replace(tmp_name, out)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        finally:
            bar.close()
        self.stdout.write(
            f"Wrote {written.rows} captions"
            + (f" and {written.images} images" if spec.bundled else "")
            + f" to {out}."
        )
