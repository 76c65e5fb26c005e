"""python manage.py run_counters_rebuild [--run ID ...]

Recomputes the run page's counters (``RunCounter``) from the captions and calls: after rows were
bulk-loaded with the triggers off, or to check them. Captioning waits while it runs (the caption
and call tables are locked in SHARE mode for the count).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from routing.services.counters import counters_kept, run_counters_rebuild


class Command(BaseCommand):
    help = "Recompute the runs' counters from their captions and calls."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--run", type=int, action="append", dest="runs", help="only this run (repeatable)"
        )

    def handle(self, *args: object, **options: object) -> None:
        if not counters_kept():
            self.stdout.write("This database has no counters (PostgreSQL only); nothing to do.")
            return
        runs = options.get("runs")
        written = run_counters_rebuild(run_ids=list(runs) if runs else None)  # type: ignore[call-overload]
        self.stdout.write(f"{written} counter rows written.")
