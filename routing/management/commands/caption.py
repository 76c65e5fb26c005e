"""python manage.py caption --project SLUG --route NAME [--limit N]

Captions the project's images that have no caption from this route yet (for this prompt and
parameters), in this process, with a progress bar. The work is a normal captioning run: every
attempt is in the call log, the budget cap and the result cache apply, and the run shows in the
web UI.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.models import Project
from routing.models import CaptionRun, Route
from routing.services.runs import (
    ImageSelection,
    RunError,
    images_needing_caption,
    run_execute_inline,
    run_launch,
    run_pause,
)


class Command(BaseCommand):
    help = "Caption a project's images with one route, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--route", required=True, help="Route name.")
        parser.add_argument("--limit", type=int, default=None, help="At most N images.")
        parser.add_argument("--prompt", default=None, help="Default: the project's prompt.")
        parser.add_argument("--params", default="{}", help="Decoding parameters as JSON.")
        parser.add_argument("--budget-usd", default=None, help="Stop before spending more.")
        parser.add_argument("--concurrency", type=int, default=4, help="Calls in flight.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        route = Route.objects.filter(name=options["route"]).first()
        if route is None:
            names = ", ".join(Route.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No route named {options['route']!r} (routes: {names}).")
        if not route.enabled:
            raise CommandError(f"Route {route.name} is disabled.")
        try:
            params = json.loads(options["params"])
            budget = Decimal(options["budget_usd"]) if options["budget_usd"] else None
        except (ValueError, InvalidOperation) as exc:
            raise CommandError(f"Bad --params or --budget-usd: {exc}") from exc
        prompt = project.caption_prompt if options["prompt"] is None else options["prompt"]
        ids = images_needing_caption(
            project=project, route=route, task=project.task_type, prompt=prompt, params=params
        )
        if options["limit"] is not None:
            ids = ids[: max(0, options["limit"])]
        if not ids:
            self.stdout.write("Nothing to caption: every image has a caption from this route.")
            return
        try:
            run = run_launch(
                project=project,
                user=None,
                kind=CaptionRun.Kind.COMPARISON,
                routes=[route],
                selection=ImageSelection(ids=tuple(ids)),
                prompt=prompt,
                params=params,
                budget_usd=budget,
                enqueue=False,
            )
        except RunError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Run #{run.pk}: {run.caption_count} images with route {route.name}.")
        bar = tqdm(
            total=run.caption_count,
            unit="img",
            disable=options["no_progress"],
            file=getattr(self.stderr, "_out", sys.stderr),  # the raw stream, no added newlines
        )

        def on_done(caption_id: int, outcome: str) -> None:
            bar.update(1)
            bar.set_postfix_str(outcome, refresh=False)

        try:
            counts = run_execute_inline(
                run=run, concurrency=options["concurrency"], on_done=on_done
            )
        except KeyboardInterrupt:
            run_pause(run=run)
            bar.close()
            raise CommandError(
                f"Interrupted: run #{run.pk} paused; resume it in the web UI."
            ) from None
        bar.close()
        run.refresh_from_db()
        self.stdout.write(
            f"Run #{run.pk} {run.get_status_display().lower()}: "
            f"{counts.get('succeeded', 0)} captioned, {counts.get('failed', 0)} failed, "
            f"{counts.get('budget', 0)} stopped by the budget cap; spent ${run.spent_usd:.6f}."
        )
