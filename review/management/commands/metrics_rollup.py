"""Rebuild the metric rollups of big projects now (the beat does it every
METRICS_ROLLUP_INTERVAL_S): ``manage.py metrics_rollup [--project SLUG]``. Prints one JSON
object per project: slug, captions, duration_ms."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from review import rollups


class Command(BaseCommand):
    help = "Rebuild metric rollups (a given project, or every project big enough for them)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", help="Slug of one project (any size).")

    def handle(self, *args, **options) -> None:
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
            projects = [project]
        else:
            projects = rollups.projects_to_roll_up()
        for project in projects:
            state = rollups.metric_rollup_refresh(project=project)
            self.stdout.write(
                json.dumps(
                    {
                        "project": project.slug,
                        "captions": state.captions,
                        "duration_ms": state.duration_ms,
                    }
                )
            )
