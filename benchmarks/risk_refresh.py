"""Risk-flag reads at scale: the stale-flag query behind the beat refresh, and a run's risk filter.

    python benchmarks/risk_refresh.py [--quick] [--images N] [--baseline-timeout S]

Uses the queue benchmark's database and loader (N images, default 1,000,000; 20,000 with
``--quick``), then gives every image three flag rows: one image in ten from an older analyser
version, one in seven flagged as a chart, and 1,000 admin corrections (600 removing a chart
flag, 400 adding a medical one). Measured, best of 5, on the same data:

- ``risk_flags_stale`` (``NOT EXISTS``) for 500 and 5,000 stale images, and with nothing stale
  (the whole table scanned; measured inside a transaction that is rolled back);
- the query it replaced, ``NOT IN`` over every current flag row, once, cut off after
  ``--baseline-timeout`` seconds (at a million images its list does not fit PostgreSQL's default
  ``work_mem`` and is checked row by row);
- a caption run's risk selection (``images_select``, which follows admins' corrections) against
  the ``IN`` filter it replaced, which ignored them.

The last line is JSON: ``value`` is the stale query for 5,000 images in ms, ``baseline`` the old
``NOT IN`` query in ms (or its cut-off when it did not finish).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# benchmarks/queue.py is named like the standard library's queue: import it as a package member
# from the repository root, never with this folder on the import path.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

from benchmarks import queue as queue_bench  # noqa: E402
from benchmarks._common import emit, table  # noqa: E402

CORRECTIONS = 1000
REMOVED = 600  # of the corrections; the rest add a flag
GOAL_MS = 1000.0  # a beat tick is 10 minutes; one query must be a small part of it


def best_ms(fn, reps: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best, result


def load_flags(n_images: int) -> None:
    """Three flag rows per image and the corrections (reused while the counts match)."""
    from django.db import connection

    from review.models import RiskCorrection, RiskFlag
    from review.risk import ANALYSER_VERSION

    if (
        RiskFlag.objects.count() == 3 * n_images
        and RiskFlag.objects.filter(analyser_version=ANALYSER_VERSION).count()
        == 3 * (n_images - n_images // 10)
        and RiskCorrection.objects.count() == CORRECTIONS
        and RiskCorrection.objects.filter(flagged=False).count() == REMOVED
    ):
        print(f"reusing {3 * n_images:,} flag rows")
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE review_riskflag, review_riskcorrection")
        cursor.execute(
            """
            INSERT INTO review_riskflag (image_id, category, score, flagged, reason,
                image_score, image_reason, analyser_version, updated_at)
            SELECT i.id, c, CASE WHEN c = 'chart' AND i.id %% 7 = 0 THEN 0.9 ELSE 0.1 END,
                c = 'chart' AND i.id %% 7 = 0, '', 0.1, '',
                CASE WHEN i.id %% 10 = 0 THEN 'risk-older' ELSE %s END, now()
            FROM labeling_image i CROSS JOIN unnest(ARRAY['chart', 'screenshot', 'medical']) c
            """,
            [ANALYSER_VERSION],
        )
        # admins' corrections: some remove a chart flag, the rest add a medical one
        cursor.execute(
            """
            INSERT INTO review_riskcorrection (image_id, category, flagged, note, created_at)
            (SELECT id, 'chart', false, '', now() FROM labeling_image
             WHERE id %% 7 = 0 ORDER BY id LIMIT %s)
            UNION ALL
            (SELECT id, 'medical', true, '', now() FROM labeling_image
             WHERE id %% 7 = 1 ORDER BY id LIMIT %s)
            """,
            [REMOVED, CORRECTIONS - REMOVED],
        )
        cursor.execute("VACUUM ANALYZE review_riskflag")
        cursor.execute("VACUUM ANALYZE review_riskcorrection")
    print(f"loaded {3 * n_images:,} flag rows in {time.perf_counter() - started:.0f} s")


def old_not_in_ms(timeout_s: float) -> tuple[float, bool]:
    """The replaced stale query, once, cut off after ``timeout_s``; (ms, finished)."""
    from django.db import OperationalError, connection, transaction

    from labeling.models import Image
    from review.models import RiskFlag
    from review.risk import ANALYSER_VERSION

    current = RiskFlag.objects.filter(analyser_version=ANALYSER_VERSION).values("image_id")
    query = Image.objects.exclude(pk__in=current).order_by("pk").values_list("pk", flat=True)
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            list(query[:5000])
    except OperationalError:  # canceled by statement_timeout
        return timeout_s * 1000, False
    return (time.perf_counter() - started) * 1000, True


def nothing_stale_ms() -> float:
    """The stale query when every flag is current: the whole table is scanned (rolled back)."""
    from django.db import connection, transaction

    from review.models import RiskFlag
    from review.risk import ANALYSER_VERSION
    from review.services.risk import risk_flags_stale

    class Rollback(Exception):
        pass

    ms = 0.0
    try:
        with transaction.atomic():
            RiskFlag.objects.exclude(analyser_version=ANALYSER_VERSION).update(
                analyser_version=ANALYSER_VERSION
            )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE review_riskflag")
            ms, ids = best_ms(lambda: risk_flags_stale(limit=5000), reps=3)
            assert ids == [], "nothing should be stale"
            raise Rollback
    except Rollback:
        pass
    return ms


def selection_ms(project) -> list[list[object]]:
    """A run's risk filter (follows corrections) against the IN filter it replaced."""
    from labeling.models import Image
    from review.models import RiskFlag
    from routing.models import CaptionRun
    from routing.services.runs import ImageSelection, images_select

    rows = []
    flagged = RiskFlag.objects.filter(flagged=True)
    old = {
        "flagged": Image.objects.filter(project=project, pk__in=flagged.values("image_id")),
        "unflagged": Image.objects.filter(project=project).exclude(
            pk__in=flagged.values("image_id")
        ),
    }
    for risk in ("flagged", "unflagged"):
        selection = ImageSelection(mode=CaptionRun.Selection.FILTERED, risk=risk)
        new_ms, ids = best_ms(lambda s=selection: images_select(project=project, selection=s), 3)
        old_ms, old_ids = best_ms(
            lambda q=old[risk]: list(q.order_by("id").values_list("id", flat=True)), 3
        )
        rows.append([risk, f"{len(ids):,}", f"{new_ms:.0f}", f"{len(old_ids):,}", f"{old_ms:.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 images")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--baseline-timeout", type=float, default=60.0, metavar="SECONDS")
    args = parser.parse_args()
    n_images = args.images or (20_000 if args.quick else 1_000_000)

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL.")
    url = queue_bench.bench_database_url(base)
    queue_bench.ensure_database(url)
    queue_bench.django_setup(url)
    project, _ = queue_bench.load(n_images, 0)
    load_flags(n_images)

    from review.services.risk import risk_flags_stale

    stale_500, _ = best_ms(lambda: risk_flags_stale(limit=500))
    stale_5000, ids = best_ms(lambda: risk_flags_stale(limit=5000))
    middle, _ = best_ms(lambda: risk_flags_stale(limit=5000, after_id=ids[-1]))
    nothing = nothing_stale_ms()
    baseline, finished = old_not_in_ms(args.baseline_timeout)
    cut = "" if finished else f" (cut off at {args.baseline_timeout:.0f} s)"
    print(f"\n{n_images:,} images, {3 * n_images:,} flag rows, one image in ten stale\n")
    print(
        table(
            ["stale-flag query", "ms"],
            [
                ["NOT EXISTS, first 500", f"{stale_500:.1f}"],
                ["NOT EXISTS, first 5,000", f"{stale_5000:.1f}"],
                ["NOT EXISTS, next 5,000 (after a cursor)", f"{middle:.1f}"],
                ["NOT EXISTS, nothing stale (whole table)", f"{nothing:.0f}"],
                ["NOT IN (replaced), first 5,000" + cut, f"{baseline:.0f}"],
            ],
        )
    )
    print()
    print(
        table(
            ["run selection", "images", "EXISTS ms", "old IN images", "old IN ms"],
            selection_ms(project),
        )
    )
    print("(the old IN filter ignored admins' corrections, so its counts differ)\n")
    emit(
        "risk_refresh",
        value=stale_5000,
        baseline=baseline,
        unit="ms to find 5,000 images with stale risk flags",
        goal=f"< {GOAL_MS:.0f} ms at 1M images (the refresh runs every 10 minutes)",
        images=n_images,
        nothing_stale_ms=round(nothing, 1),
        baseline_finished=finished,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
