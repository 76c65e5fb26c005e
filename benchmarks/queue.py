"""Review queue under load: claim latency and verdicts/s, SKIP LOCKED against plain FOR UPDATE.

    python benchmarks/queue.py [--quick] [--images 1000000] [--reviewers 50] [--seconds 60]
                               [--think-ms 1000] [--rounds 3]

Loads N images, one caption each and one review item each (every 10th image risky, needing two
reviews) into a dedicated database next to the one in DATABASE_URL (`<name>_bench_queue`,
created if missing and reused while it holds the same N), with INSERT ... SELECT generate_series.
Then 50 reviewer processes (one database connection each, like 50 browser sessions behind 50 web
workers) claim an item, pause, and submit a verdict, in a loop, through the real services
(`lease_claim_next`, `verdict_submit`). The pause is 0.5-1.5x `--think-ms` (default 1 s: ten
times faster than the few hundred items an hour an annotator manages); `--think-ms 0` runs flat
out. The two modes differ only in the candidate query's lock: `FOR UPDATE SKIP LOCKED`
(captiondesk) against plain `FOR UPDATE` (baseline). They alternate in rounds, each from a reset
and vacuumed queue, so both meet the same background load. Afterwards every lease is audited: an
item that at any instant had more live leases than its policy allows, a verdict given twice by
one reviewer, or more reviews than required, each count as a double lease.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue`, which psycopg and multiprocessing
# import: take its own folder off the import path before anything imports `queue`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL_P95_MS = 20.0
BENCH_SLUG = "bench-queue"


# --- set-up ------------------------------------------------------------------------------------


def bench_database_url(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "captiondesk"
    return urlunsplit(parts._replace(path=f"/{name}_bench_queue"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _copy_rows(model, template_pk: int, overrides: dict[str, str], source: str, params: list):
    """INSERT copies of one template row, every column as in the template unless overridden.

    Copying the template (made by the ORM, so every default is filled in) keeps this working when
    other apps add columns to their tables.
    """
    from django.db import connection

    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    exprs = [overrides.get(c, f't."{c}"') for c in columns]
    sql = (
        f'INSERT INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) '
        f'SELECT {", ".join(exprs)} FROM "{table}" t {source}'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def load(n_images: int, n_reviewers: int):
    """The project with n_images queued captions and its reviewers (reused when already there)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from labeling.models import Image, Membership, Project
    from review.models import ReviewItem
    from routing.models import Caption

    User = get_user_model()
    project = Project.objects.filter(slug=BENCH_SLUG).first()
    if project is not None and ReviewItem.objects.filter(project=project).count() == n_images:
        print(f"reusing {n_images:,} loaded images")
    else:
        started = time.perf_counter()
        with connection.cursor() as cursor:  # a dedicated database: start from empty tables
            cursor.execute("TRUNCATE labeling_project, auth_user CASCADE")
        with transaction.atomic():
            project = Project.objects.create(name="Queue benchmark", slug=BENCH_SLUG)
            image = Image.objects.create(
                project=project,
                file="originals/bench/template.jpg",
                sha256="t" * 64,
                phash=0,
                width=640,
                height=480,
                format="JPEG",
                mode="RGB",
                byte_size=50_000,
                original_name="template.jpg",
                source=Image.Source.UPLOAD,
                status=Image.Status.CAPTIONED,
            )
            caption = Caption.objects.create(
                image=image,
                origin=Caption.Origin.IMPORTED,
                model_name="blip2-opt-2.7b",
                status=Caption.Status.SUCCEEDED,
                text="template",
            )
            _copy_rows(
                Image,
                image.pk,
                {
                    "sha256": "md5('a' || g) || md5('b' || g)",
                    "phash": "g",
                    "original_name": "'img-' || g || '.jpg'",
                    "file": "'originals/bench/' || g || '.jpg'",
                    "created_at": "t.created_at + g * interval '1 millisecond'",
                },
                "CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
                [n_images, image.pk],
            )
            _copy_rows(
                Caption,
                caption.pk,
                {
                    "image_id": "i.id",
                    "text": "'A photo of thing number ' || i.id || '.'",
                    "created_at": "i.created_at",
                    "finished_at": "i.created_at",
                },
                "JOIN labeling_image i ON i.project_id = %s AND i.id <> t.image_id WHERE t.id = %s",
                [project.pk, caption.pk],
            )
            image.delete()  # the template and its caption
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO review_reviewitem (caption_id, image_id, project_id, state, risky,
                        required, reviews_done, priority, queued_at, final_text, created_at)
                    SELECT c.id, c.image_id, i.project_id, 'open', i.phash %% 10 = 0,
                        CASE WHEN i.phash %% 10 = 0 THEN 2 ELSE 1 END, 0,
                        CASE WHEN i.phash %% 10 = 0 THEN 1 ELSE 0 END, c.finished_at, '', now()
                    FROM routing_caption c JOIN labeling_image i ON i.id = c.image_id
                    WHERE i.project_id = %s
                    """,
                    [project.pk],
                )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(
            f"loaded {n_images:,} images, captions and review items in "
            f"{time.perf_counter() - started:.0f} s"
        )
    reviewers = []
    for i in range(n_reviewers):
        user, created = User.objects.get_or_create(username=f"bench-reviewer-{i}")
        Membership.objects.get_or_create(project=project, user=user)
        reviewers.append(user.pk)
    return project, reviewers


def reset(project) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE review_verdict, review_lease, review_adjudication")
        cursor.execute(
            """
            UPDATE review_reviewitem SET state = 'open', reviews_done = 0, final_text = '',
                edited = NULL, char_distance = NULL, word_distance = NULL, char_effort = NULL,
                word_effort = NULL, decided_at = NULL
            WHERE project_id = %s AND (state <> 'open' OR reviews_done <> 0)
            """,
            [project.pk],
        )
        cursor.execute(
            "UPDATE labeling_image SET status = 'captioned' "
            "WHERE project_id = %s AND status <> 'captioned'",
            [project.pk],
        )
        cursor.execute("VACUUM ANALYZE review_reviewitem, review_lease, review_verdict")


# --- the run -----------------------------------------------------------------------------------


def reviewer(index, user_id, project_id, skip_locked, start_at, seconds, think_ms, results):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from labeling.models import Project
    from review.selectors import lease_current
    from review.services.queue import lease_claim_next
    from review.services.verdict import verdict_submit

    # Connect and warm the ORM before the clock starts: a browser session's first request is
    # not what this measures.
    user = get_user_model().objects.get(pk=user_id)
    project = Project.objects.get(pk=project_id)
    lease_current(project=project, reviewer=user)
    rng = random.Random(index)
    claim_ms, verdict_ms, empty = [], [], 0
    deadline = start_at + seconds
    # People do not all press a key in the same millisecond: spread the first claims over one
    # think time (with no think time they all start at once).
    start_at += rng.uniform(0, think_ms / 1000)
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < deadline:
        t0 = time.perf_counter()
        lease = lease_claim_next(project=project, reviewer=user, skip_locked=skip_locked)
        claim_ms.append((time.perf_counter() - t0) * 1000)
        if lease is None:
            empty += 1
            time.sleep(0.01)
            continue
        if think_ms:
            time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
        roll = rng.random()
        kwargs: dict = {"decision": "accept"}
        if roll < 0.05:
            kwargs = {"decision": "edit", "text": f"An edited caption {rng.random()}."}
        elif roll < 0.10:
            kwargs = {"decision": "reject", "reasons": ["wrong_count"]}
        t0 = time.perf_counter()
        verdict_submit(lease=lease, reviewer=user, idempotency_key=uuid.uuid4(), **kwargs)
        verdict_ms.append((time.perf_counter() - t0) * 1000)
    connection.close()
    results.put({"claim_ms": claim_ms, "verdict_ms": verdict_ms, "empty": empty})


def double_leases(project) -> int:
    """Items that ever had more live leases than allowed, duplicate verdicts, surplus reviews."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH ev AS (
              SELECT item_id, created_at AS t, 1 AS d FROM review_lease WHERE project_id = %s
              UNION ALL
              SELECT item_id, COALESCE(ended_at, 'infinity'), -1 FROM review_lease
              WHERE project_id = %s
            ), live AS (
              SELECT item_id, SUM(d) OVER (PARTITION BY item_id ORDER BY t, d
                                           ROWS UNBOUNDED PRECEDING) AS n FROM ev
            )
            SELECT
              (SELECT COUNT(DISTINCT l.item_id) FROM live l
                 JOIN review_reviewitem i ON i.id = l.item_id WHERE l.n > i.required)
            + (SELECT COUNT(*) FROM (SELECT 1 FROM review_verdict WHERE project_id = %s
                 GROUP BY item_id, reviewer_id HAVING COUNT(*) > 1) d)
            + (SELECT COUNT(*) FROM review_reviewitem WHERE project_id = %s
                 AND reviews_done > required)
            """,
            [project.pk] * 4,
        )
        return int(cursor.fetchone()[0])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_round(project, reviewers, *, skip_locked: bool, seconds: float, think_ms: float) -> dict:
    """One timed round of one mode from a freshly reset queue."""
    from django.db import connections

    reset(project)
    connections.close_all()  # never share a connection with the forked reviewers
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 3.0 + len(reviewers) * 0.05  # all connected and warm by then
    procs = [
        ctx.Process(
            target=reviewer,
            args=(i, uid, project.pk, skip_locked, start_at, seconds, think_ms, results),
        )
        for i, uid in enumerate(reviewers)
    ]
    for p in procs:
        p.start()
    collected = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return {
        "claim_ms": [v for r in collected for v in r["claim_ms"]],
        "verdict_ms": [v for r in collected for v in r["verdict_ms"]],
        "empty": sum(r["empty"] for r in collected),
        "double_leases": double_leases(project),
    }


def summarise(skip_locked: bool, rounds: list[dict], seconds: float) -> dict:
    claim_ms = [v for r in rounds for v in r["claim_ms"]]
    verdict_ms = [v for r in rounds for v in r["verdict_ms"]]
    return {
        "mode": "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE (baseline)",
        "claims": len(claim_ms),
        "empty_claims": sum(r["empty"] for r in rounds),
        "verdicts": len(verdict_ms),
        "verdicts_per_s": len(verdict_ms) / (seconds * len(rounds)),
        "claim_p50_ms": pct(claim_ms, 0.50),
        "claim_p95_ms": pct(claim_ms, 0.95),
        "claim_p99_ms": pct(claim_ms, 0.99),
        "verdict_p50_ms": pct(verdict_ms, 0.50),
        "verdict_p95_ms": pct(verdict_ms, 0.95),
        "double_leases": sum(r["double_leases"] for r in rounds),
    }


def explain(project, reviewer_pk) -> str:
    """EXPLAIN ANALYZE of the claim's candidate query, in a transaction that is rolled back."""
    from django.db import connection, transaction
    from django.utils import timezone

    from review.services.queue import _CANDIDATE_SQL

    sql = "EXPLAIN ANALYZE " + _CANDIDATE_SQL.format(lock="SKIP LOCKED")
    params = {"project": project.pk, "reviewer": reviewer_pk, "now": timezone.now(), "tried": []}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 images, 8 s per mode")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=None, help="per mode, all rounds")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=1000.0,
        help="mean pause between claim and verdict (0.5x-1.5x); 0 for a flat-out stress run",
    )
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per mode")
    args = parser.parse_args()
    n_images = args.images or (20_000 if args.quick else 1_000_000)
    seconds = args.seconds or (8.0 if args.quick else 60.0)
    args.rounds = args.rounds or (1 if args.quick else 3)

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL: the queue benchmark measures its locks.")
    url = bench_database_url(base)
    ensure_database(url)
    django_setup(url)
    project, reviewers = load(n_images, args.reviewers)
    plan = explain(project, reviewers[0])

    # Modes alternate round by round, so both meet the same background load on a shared machine.
    per_round = seconds / args.rounds
    done: dict[bool, list[dict]] = {True: [], False: []}
    for _ in range(args.rounds):
        for skip_locked in (True, False):
            done[skip_locked].append(
                run_round(
                    project,
                    reviewers,
                    skip_locked=skip_locked,
                    seconds=per_round,
                    think_ms=args.think_ms,
                )
            )
    rows = [summarise(True, done[True], per_round), summarise(False, done[False], per_round)]
    ours, base_row = rows
    print(
        f"\nqueue: {n_images:,} images, {args.reviewers} reviewers, {seconds:.0f} s per mode "
        f"in {args.rounds} alternating rounds, "
        f"think time {args.think_ms:.0f} ms; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("candidate query plan (EXPLAIN ANALYZE, idle queue):")
    print("  " + plan.replace("\n", "\n  "))
    headers = [
        "mode",
        "claims",
        "empty",
        "verdicts/s",
        "claim p50",
        "p95",
        "p99",
        "verdict p50",
        "p95",
        "double leases",
    ]
    table = [headers] + [
        [
            r["mode"],
            r["claims"],
            r["empty_claims"],
            f"{r['verdicts_per_s']:.1f}",
            f"{r['claim_p50_ms']:.1f} ms",
            f"{r['claim_p95_ms']:.1f} ms",
            f"{r['claim_p99_ms']:.1f} ms",
            f"{r['verdict_p50_ms']:.1f} ms",
            f"{r['verdict_p95_ms']:.1f} ms",
            r["double_leases"],
        ]
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(headers))]
    for j, row in enumerate(table):
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print(
        json.dumps(
            {
                "benchmark": "queue",
                "value": round(ours["verdicts_per_s"], 1),
                "baseline": round(base_row["verdicts_per_s"], 1),
                "ratio": round(ours["verdicts_per_s"] / base_row["verdicts_per_s"], 2)
                if base_row["verdicts_per_s"]
                else None,
                "unit": "verdicts/s",
                "goal": f"claim p95 < {GOAL_P95_MS:.0f} ms at 1M images, 0 double leases",
                "claim_p95_ms": round(ours["claim_p95_ms"], 2),
                "claim_p50_ms": round(ours["claim_p50_ms"], 2),
                "baseline_claim_p95_ms": round(base_row["claim_p95_ms"], 2),
                "double_leases": ours["double_leases"] + base_row["double_leases"],
                "images": n_images,
                "reviewers": args.reviewers,
                "seconds_per_mode": seconds,
                "rounds": args.rounds,
                "think_ms": args.think_ms,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            }
        )
    )


if __name__ == "__main__":
    main()
