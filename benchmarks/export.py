"""Export throughput and memory: JSONL and COCO against PostgreSQL's own `COPY ... TO`.

    python benchmarks/export.py [--quick] [--rows 1000000] [--rounds 3]

Loads N approved captions (one per image; accents, emoji, Arabic, quotes, commas and an embedded
line break in every seventh) into a dedicated database next to the one in DATABASE_URL
(`<name>_bench_export`, created if missing and reused while it holds the same N). Then, in fresh
processes, alternating, `--rounds` times each:

- baseline: `COPY (SELECT <the export's columns> ... ORDER BY image, caption) TO STDOUT`, read
  by psycopg and thrown away: the practical limit of getting these rows out of PostgreSQL;
- `manage.py export --format jsonl` and `--format coco` into a file.

Each figure is the best round (rows/s) and the highest peak RSS of any round. The goal: JSONL at
>= 0.3 of COPY's throughput with peak RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# benchmarks/queue.py shadows the standard library's queue (psycopg imports it): import from the
# repository root instead of this folder.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))
from benchmarks._common import ROOT, emit, machine, table  # noqa: E402

BENCH_SLUG = "bench-export"
GOAL_RATIO = 0.3
GOAL_RSS_MB = 200

# Run in a child process: prints elapsed seconds, rows and peak RSS as one JSON line.
_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
import django
django.setup()
mode, slug, out = sys.argv[1:4]
from labeling.models import Project
project = Project.objects.get(slug=slug)
started = time.perf_counter()
if mode == "copy":
    from django.db import connection
    from labeling.services.export import ExportSpec
    from labeling.services.export.rows import ordered_selection
    qs = ordered_selection(project=project, spec=ExportSpec(format="jsonl")).values_list(
        "image_id", "image__width", "image__height", "final_text", "state", "edited",
        "caption__model_name", "caption__route__name", "caption__text", "id", "caption_id")
    sql, params = qs.query.sql_with_params()
    rows = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
            for _ in copy:
                rows += 1
else:
    from django.core.management import call_command
    import io
    sink = io.StringIO()
    call_command("export", "--project", slug, "--format", mode, "--out", out, stdout=sink)
    rows = int(sink.getvalue().split()[1])
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "seconds": elapsed, "rows": rows, "peak_rss_mb": peak}))
"""


def bench_database_url(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "captiondesk"
    return urlunsplit(parts._replace(path=f"/{name}_bench_export"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def load(n_rows: int) -> None:
    """The benchmark project with n_rows approved captions (reused when already there)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from labeling.models import Project
    from review.models import ReviewItem
    from tests.labeling.export_bulk import seed_approved

    call_command("migrate", verbosity=0)
    project = Project.objects.filter(slug=BENCH_SLUG).first()
    if project is not None and ReviewItem.objects.filter(project=project).count() == n_rows:
        print(f"reusing {n_rows:,} loaded approved captions")
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:  # a dedicated database: start from empty tables
        cursor.execute("TRUNCATE labeling_project, routing_route CASCADE")
    project = Project.objects.create(name="Export benchmark", slug=BENCH_SLUG)
    seed_approved(project, n_rows)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"loaded {n_rows:,} approved captions in {time.perf_counter() - started:.0f} s")


def run_child(mode: str, url: str, out: str) -> dict:
    env = dict(os.environ, DATABASE_URL=url)
    env.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, BENCH_SLUG, out],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one round")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n_rows = 20_000 if args.quick else args.rows
    rounds = 1 if args.quick else args.rounds

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/captiondesk")
    if not base.startswith("postgres"):
        sys.exit("benchmarks/export.py needs DATABASE_URL to point at PostgreSQL")
    url = bench_database_url(base)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    sys.path.insert(0, str(ROOT))
    load(n_rows)

    results: dict[str, list[dict]] = {"copy": [], "jsonl": [], "coco": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for _ in range(rounds):
            for mode in results:
                out = str(Path(tmp) / f"out.{mode}")
                results[mode].append(run_child(mode, url, out))
                if mode != "copy":
                    sizes[mode] = Path(out).stat().st_size

    def best(mode: str) -> float:
        return max(r["rows"] / r["seconds"] for r in results[mode])

    def peak(mode: str) -> float:
        return max(r["peak_rss_mb"] for r in results[mode])

    for mode, found in results.items():
        if any(r["rows"] != n_rows for r in found):
            sys.exit(f"{mode} saw {[r['rows'] for r in found]} rows, expected {n_rows}")
    copy_rate = best("copy")
    rows = [
        [
            mode,
            f"{n_rows:,}",
            f"{min(r['seconds'] for r in results[mode]):.2f}",
            f"{best(mode):,.0f}",
            f"{best(mode) / copy_rate:.2f}",
            f"{peak(mode):.0f}",
            f"{sizes[mode] / 1e6:.0f}" if mode in sizes else "-",
        ]
        for mode in results
    ]
    print(f"\nExport of approved captions, best of {rounds} ({machine()})")
    print(table(["mode", "rows", "best s", "rows/s", "x COPY", "peak RSS MB", "file MB"], rows))
    ratio = best("jsonl") / copy_rate
    peak_rss = max(peak("jsonl"), peak("coco"))
    verdict = "met" if ratio >= GOAL_RATIO and peak_rss < GOAL_RSS_MB else "NOT met"
    print(f"\ngoal (JSONL >= {GOAL_RATIO} x COPY, peak RSS < {GOAL_RSS_MB} MB): {verdict}\n")
    emit(
        "export",
        value=best("jsonl"),
        baseline=copy_rate,
        unit="rows/s",
        goal=f"ratio >= {GOAL_RATIO} and peak_rss_mb < {GOAL_RSS_MB}",
        peak_rss_mb=round(peak_rss, 1),
        rows=n_rows,
        coco_rows_per_s=round(best("coco"), 1),
        coco_ratio=round(best("coco") / copy_rate, 3),
        jsonl_peak_rss_mb=round(peak("jsonl"), 1),
        coco_peak_rss_mb=round(peak("coco"), 1),
        rounds=rounds,
    )


if __name__ == "__main__":
    main()
