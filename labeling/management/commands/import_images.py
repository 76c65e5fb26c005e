"""python manage.py import_images SOURCE... --project SLUG [--create] [--urls FILE] [--json]"""

from __future__ import annotations

import json
import sys
from itertools import chain

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import ImportBatch, Project
from labeling.services.ingest import batch_create, batch_ingest
from labeling.services.projects import project_create
from labeling.services.sources import parse_url_list, path_candidates, url_candidates


class Command(BaseCommand):
    help = "Import image files, folders, zip archives and URL lists into a project."

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="*", help="Files, folders or zip archives.")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--create", action="store_true", help="Create the project if missing.")
        parser.add_argument("--urls", help="A file with one image URL per line ('-' for stdin).")
        parser.add_argument("--json", action="store_true", help="One JSON object per input file.")

    def handle(self, *args, sources, project, create, urls, json: bool, **options):
        if not sources and not urls:
            raise CommandError("Give at least one SOURCE or --urls FILE.")
        target = Project.objects.filter(slug=project).first()
        if target is None:
            if not create:
                raise CommandError(f"No project {project!r}; add --create to make it.")
            target = project_create(name=project, slug=project)
        url_list: list[str] = []
        if urls:
            try:
                if urls == "-":
                    text = sys.stdin.read()
                else:
                    with open(urls, encoding="utf-8") as fh:
                        text = fh.read()
            except OSError as exc:
                raise CommandError(f"Cannot read URL list {urls}: {exc.strerror}") from exc
            url_list = parse_url_list(text)
        kind = ImportBatch.Kind.URL if url_list and not sources else ImportBatch.Kind.PATH
        label = ", ".join(sources)[:300] if sources else f"{len(url_list)} URLs"
        batch = batch_create(project=target, kind=kind, label=label)
        candidates = chain(path_candidates(sources), url_candidates(url_list))
        counts = {"imported": 0, "duplicate": 0, "rejected": 0}
        bar = tqdm(unit="file", desc="Importing", file=sys.stderr, disable=None, dynamic_ncols=True)
        try:
            for outcome in batch_ingest(batch=batch, candidates=candidates, thumbnails_inline=True):
                counts[outcome.status] += 1
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
                if json:
                    self.stdout.write(_dumps(outcome.as_json()))
        finally:
            bar.close()
        if not json:
            self.stdout.write(
                f"Batch #{batch.pk}: {counts['imported']} imported, "
                f"{counts['duplicate']} duplicates, "
                f"{counts['rejected']} rejected."
            )


def _dumps(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False)
