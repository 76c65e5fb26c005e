"""python manage.py import_predictions FILE --project SLUG [--json]

FILE: Label Studio tasks with predictions (JSON array or JSONL), or JSON Lines with image, caption
and model; or a zip holding such a file and the images it names. Image references may also be
URLs or paths (relative to FILE's folder).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import ImportBatch, Project
from labeling.services.ingest import batch_create
from labeling.services.predictions_import import PredictionsInvalid, predictions_import


class Command(BaseCommand):
    help = "Import captions made elsewhere (Label Studio predictions or JSON Lines) for review."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .json, .jsonl or .zip file.")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")

    def handle(self, *args, file: str, project: str, json: bool, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        batch = batch_create(
            project=target, kind=ImportBatch.Kind.PREDICTIONS, label=str(path)[:300]
        )
        counts = {"lines": 0, "captions": 0, "skipped": 0, "rejected": 0}
        bar = tqdm(unit="line", desc="Importing", file=sys.stderr, disable=None)
        try:
            with path.open("rb") as fh:
                for result in predictions_import(
                    batch=batch, fh=fh, allow_paths=True, base=path.parent
                ):
                    counts["lines"] += 1
                    counts["captions"] += result["captions"]
                    counts["skipped"] += result["skipped"]
                    counts["rejected"] += result["status"] == "rejected"
                    bar.update(1)
                    if json:
                        self.stdout.write(_dumps(result))
        except PredictionsInvalid as exc:
            raise CommandError(f"{path}: {exc}") from exc
        finally:
            bar.close()
        if not json:
            self.stdout.write(
                f"Batch #{batch.pk}: {counts['lines']} lines, {counts['captions']} captions "
                f"imported, {counts['skipped']} already there, {counts['rejected']} lines rejected."
            )


def _dumps(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False)
