"""Comparison and dashboard pages on a big project: server time per page against a naive baseline.

    python benchmarks/dashboard.py [--quick] [--images N] [--reps 3] [--baseline-limit N]
                                   [--skip-live] [--reuse-rollup] [--pages NAME,...]

Loads one project into a dedicated database next to the one in DATABASE_URL
(``<name>_bench_dashboard``, created if missing and reused while it holds the same N) with
INSERT ... SELECT generate_series, copying template rows the ORM made (so columns other apps add
keep working): N images (default 347,100; 3,000 with ``--quick``), a comparison run of three
routes (hosted, Replicate, local GPU) with a caption per route and image (1.04M), three model
calls per caption (3.12M: two failed tries - timeout, server error, malformed, rate limited - then
the answer), a review item per succeeded caption, one verdict per decided item (1.0M, with a
lease each), one image in seven flagged as a chart, twenty reviewers, sixty days of history.
Other features' row triggers are off while loading (the pages measured never read what they keep).

Then the server time of each page as an admin sees it (Django's test client in this process:
view, selectors, template): once computed live (no rollup, as for a small project; skip with
``--skip-live``), then, after rebuilding the project's metric rollup (timed), best of ``--reps``.
The baseline: the comparison's figures computed by loading the rows into Python (what an ORM loop
would do), on the whole run or, at full size, cut off after ``--baseline-limit`` captions and
scaled up linearly (said in the output).

While working on one page: ``--reuse-rollup`` (with ``--skip-live``) times the pages against the
rollup already built (rebuilding only when there is none), and ``--pages`` times only the pages
whose names contain one of the given words (then without the run page's variants and the naive
baseline, and the last line says so with ``"partial": true``).

The run page is also timed as a run still running reads it (from the counters the database keeps
as work happens, with its htmx poll and its API read, and after a backlog of differences), once
settled (its snapshot), and with the counters off (aggregating every call, as before them).

The last line is JSON: ``value`` is the slowest page in ms, ``baseline`` the naive comparison in ms
and ``ratio`` baseline / value; ``run_page`` the run page's figures, ``run_page_ratio`` the
aggregating page over the counted one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# benchmarks/queue.py is named like the standard library's queue: import it as a package member
# from the repository root, never with this folder on the import path.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

from benchmarks._common import machine, table  # noqa: E402
from benchmarks.queue import _copy_rows  # noqa: E402

SLUG = "bench-dashboard"
GOAL_MS = 300.0
ROUTES = [
    ("gpt4o-edenai", "edenai", "openai/gpt-4o", {"usd_per_call": "0.004"}),
    ("blip2-replicate", "replicate", "salesforce/blip-2", {"usd_per_second": "0.000725"}),
    ("florence2-local", "local", "microsoft/Florence-2-large", {"gpu_hour_usd": "2.00"}),
]
REVIEWERS = 20
TRIGGERED = (
    "labeling_image",
    "routing_caption",
    "routing_modelcall",
    "review_reviewitem",
    "review_lease",
    "review_verdict",
)


def bench_database_url(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "captiondesk"
    return urlunsplit(parts._replace(path=f"/{name}_bench_dashboard"))


def django_setup(url: str) -> None:
    from benchmarks.queue import ensure_database

    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _sql(statement: str, params: list | dict | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _templates(project, run, routes, reviewer):
    """One row of each kind made by the ORM; the loader copies them and deletes them."""
    from datetime import timedelta

    from django.utils import timezone

    from labeling.models import Image
    from review.models import Lease, ReviewItem, Verdict
    from routing.models import Caption, ModelCall

    now = timezone.now()
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
        status=Image.Status.APPROVED,
    )
    caption = Caption.objects.create(
        image=image,
        route=routes[0],
        target_route=routes[0],
        run=run,
        origin=Caption.Origin.MODEL,
        model_name="template",
        prompt=run.prompt,
        status=Caption.Status.SUCCEEDED,
        text="template",
    )
    call = ModelCall.objects.create(
        caption=caption,
        run=run,
        route=routes[0],
        attempt=1,
        trigger="initial",
        status=ModelCall.Status.SUCCEEDED,
        started_at=now,
    )
    item = ReviewItem.objects.create(
        caption=caption, image=image, project=project, queued_at=now, state="approved"
    )
    lease = Lease.objects.create(
        item=item,
        project=project,
        reviewer=reviewer,
        slot=0,
        slot_count=1,
        state="done",
        created_at=now,
        heartbeat_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    verdict = Verdict.objects.create(
        lease=lease,
        item=item,
        caption=caption,
        project=project,
        reviewer=reviewer,
        decision="accept",
        idempotency_key="00000000-0000-0000-0000-000000000000",
        created_at=now,
    )
    return image, caption, call, item, lease, verdict


@contextmanager
def _user_triggers_off():
    """Bulk inserts without other features' row triggers (e.g. the image search vector, which
    these pages never read): with them, a million caption rows take hours instead of minutes.
    Foreign keys and constraints stay checked."""
    try:
        for table in TRIGGERED:
            _sql(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
        yield
    finally:
        for table in TRIGGERED:
            _sql(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')


def load(n_images: int):
    """The project, its run and routes (reused when the same N is already loaded)."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import transaction

    from labeling.models import Membership, Project
    from review.models import Lease, ReviewItem, RiskFlag, Verdict
    from routing.models import Caption, CaptionRun, ModelCall, Route

    User = get_user_model()
    project = Project.objects.filter(slug=SLUG).first()
    if project is not None and project.images.count() == n_images:
        print(f"reusing {n_images:,} loaded images")
        return project, CaptionRun.objects.get(project=project)
    started = time.perf_counter()
    _sql("TRUNCATE labeling_project, auth_user, routing_route CASCADE")
    with _user_triggers_off(), transaction.atomic():
        project = Project.objects.create(name="Dashboard benchmark", slug=SLUG)
        routes = [
            Route.objects.create(
                name=name,
                provider=provider,
                model=model,
                **{k: Decimal(v) for k, v in price.items()},
            )
            for name, provider, model, price in ROUTES
        ]
        run = CaptionRun.objects.create(
            project=project,
            kind=CaptionRun.Kind.COMPARISON,
            prompt="Describe this image in one sentence.",
            budget_usd=Decimal("5000"),
        )
        run.routes.set(routes)
        users = []
        for i in range(REVIEWERS):
            user = User.objects.create(username=f"bench-reviewer-{i}")
            Membership.objects.create(project=project, user=user)
            users.append(user)
        User.objects.create_superuser(username="bench-admin", password="bench-admin-pass-1")
        image, caption, call, item, lease, verdict = _templates(project, run, routes, users[0])
        first_route = routes[0].pk
        print("images ...", flush=True)
        _copy_rows(
            image.__class__,
            image.pk,
            {
                "sha256": "md5('a' || g) || md5('b' || g)",
                "phash": "g",
                "original_name": "'img-' || g || '.jpg'",
                "file": "'originals/bench/' || g || '.jpg'",
                "created_at": "now() - interval '60 days' + g * (interval '60 days' / %s)",
            },
            "CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
            [n_images, n_images, image.pk],
        )
        print("captions ...", flush=True)
        # h = a stable 0..99 per (image, route): what happened to that caption
        _copy_rows(
            Caption,
            caption.pk,
            {
                "image_id": "i.id",
                "route_id": "r.id",
                "target_route_id": "r.id",
                "model_name": "r.model",
                "status": "CASE WHEN (i.id * 7 + r.id * 13) %% 100 < 2 THEN 'failed'"
                " ELSE 'succeeded' END",
                "text": "'A photo of thing ' || i.id || ' by ' || r.name || '.'",
                "latency_ms": "500 + ((i.id * 31 + r.id * 17) %% 9000)",
                "created_at": "i.created_at",
                "finished_at": "i.created_at + interval '5 seconds'",
            },
            "JOIN labeling_image i ON i.project_id = %s AND i.id <> t.image_id"
            " JOIN routing_route r ON r.id IN (SELECT route_id FROM routing_captionrun_routes"
            " WHERE captionrun_id = %s) WHERE t.id = %s",
            [project.pk, run.pk, caption.pk],
        )
        print("model calls ...", flush=True)
        _copy_rows(
            ModelCall,
            call.pk,
            {
                "caption_id": "c.id",
                "route_id": "c.route_id",
                "attempt": "a",
                "route_attempt": "a",
                "trigger": "CASE WHEN a = 1 THEN 'initial' ELSE 'retry' END",
                "status": "CASE WHEN a < 3 OR c.status = 'failed' THEN 'failed'"
                " ELSE 'succeeded' END",
                "error_class": "CASE WHEN a = 3 AND c.status = 'succeeded' THEN ''"
                " ELSE (ARRAY['timeout', 'server_error', 'malformed', 'rate_limited'])"
                "[1 + (c.id + a) %% 4] END",
                "latency_ms": "100 + ((c.id * 13 + a * 101) %% 4000)",
                "cost_usd": "CASE WHEN c.route_id = %s THEN 0.004 ELSE NULL END",
                "started_at": "c.created_at + a * interval '1 second'",
                "finished_at": "c.created_at + a * interval '2 second'",
            },
            "JOIN routing_caption c ON c.run_id = t.run_id AND c.id <> t.caption_id"
            " CROSS JOIN generate_series(1, 3) a WHERE t.id = %s",
            [first_route, call.pk],
        )
        print("review items ...", flush=True)
        _copy_rows(
            ReviewItem,
            item.pk,
            {
                "caption_id": "c.id",
                "image_id": "c.image_id",
                "state": "CASE WHEN c.id %% 100 < 70 THEN 'approved'"
                " WHEN c.id %% 100 < 95 THEN 'rejected'"
                " WHEN c.id %% 100 < 98 THEN 'adjudication' ELSE 'open' END",
                "edited": "CASE WHEN c.id %% 100 < 70 THEN c.id %% 5 = 0 END",
                "char_effort": "CASE WHEN c.id %% 100 < 70 AND c.id %% 5 = 0"
                " THEN (c.id %% 40) / 100.0 END",
                "word_effort": "CASE WHEN c.id %% 100 < 70 AND c.id %% 5 = 0"
                " THEN (c.id %% 50) / 100.0 END",
                "final_text": "CASE WHEN c.id %% 100 < 70 THEN c.text ELSE '' END",
                "reviews_done": "1",
                "queued_at": "c.finished_at",
                "decided_at": "CASE WHEN c.id %% 100 < 95"
                " THEN c.finished_at + interval '2 days' END",
            },
            "JOIN routing_caption c ON c.run_id = %s AND c.status = 'succeeded'"
            " AND c.id <> t.caption_id WHERE t.id = %s",
            [run.pk, item.pk],
        )
        print("leases and verdicts ...", flush=True)
        user_ids = [u.pk for u in users]
        _copy_rows(
            Lease,
            lease.pk,
            {
                "item_id": "ri.id",
                "reviewer_id": "(%s::bigint[])[1 + ri.id %% %s]",
                "created_at": "ri.queued_at + interval '1 day'",
                "heartbeat_at": "ri.queued_at + interval '1 day'",
                "expires_at": "ri.queued_at + interval '1 day 5 minutes'",
                "ended_at": "ri.queued_at + interval '1 day 30 seconds'",
            },
            "JOIN review_reviewitem ri ON ri.project_id = t.project_id AND ri.id <> t.item_id"
            " AND ri.state <> 'open' WHERE t.id = %s",
            [user_ids, len(user_ids), lease.pk],
        )
        _copy_rows(
            Verdict,
            verdict.pk,
            {
                "lease_id": "l.id",
                "item_id": "ri.id",
                "caption_id": "ri.caption_id",
                "reviewer_id": "l.reviewer_id",
                "decision": "CASE WHEN ri.state = 'approved' AND ri.edited THEN 'edit'"
                " WHEN ri.state = 'approved' THEN 'accept' ELSE 'reject' END",
                "final_text": "ri.final_text",
                "reasons": "CASE WHEN ri.state = 'approved' THEN '[]'::jsonb"
                " ELSE jsonb_build_array((ARRAY['wrong_subject', 'hallucinated_detail',"
                " 'wrong_count', 'misread_text'])[1 + ri.id %% 4]) END",
                "time_spent_ms": "2000 + (ri.id * 37) %% 20000",
                "idempotency_key": "gen_random_uuid()",
                "char_effort": "ri.char_effort",
                "word_effort": "ri.word_effort",
                "created_at": "l.ended_at",
            },
            "JOIN review_lease l ON l.project_id = t.project_id AND l.id <> t.lease_id"
            " JOIN review_reviewitem ri ON ri.id = l.item_id WHERE t.id = %s",
            [verdict.pk],
        )
        verdict.delete()
        lease.delete()
        image.delete()  # the template rows (caption, call, item with it)
        print("risk flags ...", flush=True)
        _sql(
            "INSERT INTO review_riskflag (image_id, category, score, flagged, reason,"
            " image_score, image_reason, analyser_version, updated_at)"
            " SELECT i.id, 'chart', 0.9, true, 'bench', 0.9, 'bench', 'bench', now()"
            " FROM labeling_image i WHERE i.project_id = %s AND i.id %% 7 = 0",
            [project.pk],
        )
    # The triggers that keep the run's counters were off while loading: count the rows once.
    from routing.services.counters import run_counters_rebuild

    rebuilt = time.perf_counter()
    run_counters_rebuild(run_ids=[run.pk])
    print(f"run counters rebuilt in {time.perf_counter() - rebuilt:.1f} s", flush=True)
    _sql("VACUUM ANALYZE")
    counts = {
        "captions": Caption.objects.filter(run=run).count(),
        "calls": ModelCall.objects.filter(run=run).count(),
        "review items": ReviewItem.objects.filter(project=project).count(),
        "verdicts": Verdict.objects.filter(project=project).count(),
        "flags": RiskFlag.objects.filter(image__project=project).count(),
    }
    print(
        f"loaded {n_images:,} images in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{v:,} {k}" for k, v in counts.items())
    )
    return project, run


# --- measurements ------------------------------------------------------------------------------


def best_ms(fn, reps: int) -> tuple[float, float]:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times)


def pages(project, run) -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    slug = project.slug
    reviewer = get_user_model().objects.get(username="bench-reviewer-0")
    two_routes = sorted(run.routes.values_list("pk", flat=True))[:2]
    return {
        "comparison (run)": f"{reverse('review:compare', args=[slug])}?run={run.pk}",
        "comparison, charts only": f"{reverse('review:compare', args=[slug])}?run={run.pk}"
        "&risk=chart",
        "side by side, page 1": f"{reverse('review:compare-images', args=[slug])}?run={run.pk}",
        "side by side, 'one accepted'": f"{reverse('review:compare-images', args=[slug])}"
        f"?run={run.pk}&show=one_accepted&page=50",
        "dashboards (project)": reverse("review:dashboard", args=[slug]),
        # The reviewer filter and a chosen set of routes across runs (rollup slices, review 0010).
        "comparison, one reviewer": f"{reverse('review:compare', args=[slug])}?run={run.pk}"
        f"&reviewer={reviewer.pk}",
        "comparison across runs, two routes": f"{reverse('review:compare', args=[slug])}?"
        + "&".join(f"routes={pk}" for pk in two_routes),
        "dashboards, one reviewer": f"{reverse('review:dashboard', args=[slug])}"
        f"?reviewer={reviewer.pk}",
        # The side-by-side view by reviewer and across runs (ImageRouteRollup, review 0013).
        "side by side, one reviewer": f"{reverse('review:compare-images', args=[slug])}"
        f"?run={run.pk}&reviewer={reviewer.pk}",
        "side by side across runs, two routes": f"{reverse('review:compare-images', args=[slug])}?"
        + "&".join(f"routes={pk}" for pk in two_routes),
        "project page": reverse("labeling:project-detail", args=[slug]),
        "run page": reverse("routing:run-detail", args=[run.pk]),
        "blind results": reverse("review:pairwise-results", args=[slug]),
    }


BACKLOG_ROWS = 5_000


def run_page_figures(client, run, reps: int) -> dict[str, float]:
    """The run page of a run still running (the loaded run: status running), read from its
    counters; its htmx poll and its API read; the first poll after a backlog of
    ``BACKLOG_ROWS`` counter differences (what thousands of statements of live work leave; that
    read folds them); the page once the run is settled (its snapshot); and, as the baseline, the
    page with the counters off (aggregating the run's captions and calls, as before them). The
    backlog and the settled status are rolled back."""
    from unittest import mock

    from django.db import transaction
    from django.urls import reverse
    from django.utils import timezone

    from routing.models import CaptionRun, RunCounter
    from routing.services.counters import FIELDS

    assert run.status == CaptionRun.Status.RUNNING, run.status
    page = reverse("routing:run-detail", args=[run.pk])
    poll = reverse("routing:run-progress", args=[run.pk])
    api = reverse("api:run-detail", args=[run.pk])

    def get(url: str) -> float:
        started = time.perf_counter()
        response = client.get(url, secure=True)
        assert response.status_code == 200, (url, response.status_code)
        return (time.perf_counter() - started) * 1000

    figures = {}
    for name, url in (("running", page), ("running, progress poll", poll), ("running, API", api)):
        get(url)
        figures[name] = min(get(url) for _ in range(reps))
    with transaction.atomic():
        route_id = (
            RunCounter.objects.filter(run=run, route__isnull=False)
            .values_list("route_id", flat=True)
            .first()
        )
        zeros = ", ".join("0" for _ in FIELDS[1:-2])  # all but captions and the latency pair
        _sql(
            f"INSERT INTO routing_runcounter (run_id, route_id, {', '.join(FIELDS)})"  # noqa: S608
            f" SELECT %s, %s, 0, {zeros}, s * 1000, s FROM generate_series(1, %s) g,"
            " (VALUES (1), (-1)) v(s)",
            [run.pk, route_id, BACKLOG_ROWS // 2],
        )
        figures[f"running, first poll after {BACKLOG_ROWS:,} differences"] = get(poll)
        transaction.set_rollback(True)
    with transaction.atomic():
        CaptionRun.objects.filter(pk=run.pk).update(
            status=CaptionRun.Status.FINISHED, finished_at=timezone.now()
        )
        figures["settled, first view (takes the snapshot)"] = get(page)
        figures["settled (snapshot)"] = min(get(page) for _ in range(reps))
        transaction.set_rollback(True)
    with mock.patch("routing.selectors.counters_kept", return_value=False):
        figures["running, counters off (baseline: aggregates)"] = get(page)
    return figures


def naive_comparison(run, limit: int | None) -> tuple[float, int]:
    """The comparison's figures from rows loaded into Python; returns (ms, captions read)."""
    from review.models import ReviewItem, Verdict
    from routing.models import Caption, ModelCall

    started = time.perf_counter()
    captions = Caption.objects.filter(run=run).order_by("id")
    if limit:
        captions = captions[:limit]
    rows = list(captions.values_list("id", "image_id", "target_route_id", "status", "latency_ms"))
    ids = [r[0] for r in rows]
    items = {}
    for start in range(0, len(ids), 50_000):
        chunk = ids[start : start + 50_000]
        for cid, state, edited, effort in ReviewItem.objects.filter(
            caption_id__in=chunk
        ).values_list("caption_id", "state", "edited", "char_effort"):
            items[cid] = (state, edited, effort)
    calls = defaultdict(list)
    verdict_ms = defaultdict(int)
    for start in range(0, len(ids), 50_000):
        chunk = ids[start : start + 50_000]
        for cid, status, error_class, ms, cost in ModelCall.objects.filter(
            caption_id__in=chunk
        ).values_list("caption_id", "status", "error_class", "latency_ms", "cost_usd"):
            calls[cid].append((status, error_class, ms, cost))
        for cid, ms in Verdict.objects.filter(caption_id__in=chunk).values_list(
            "caption_id", "time_spent_ms"
        ):
            verdict_ms[cid] += ms
    # same images: decided for every route
    per_image = defaultdict(set)
    routes = set()
    for cid, image_id, route, _, _ in rows:
        routes.add(route)
        if items.get(cid, ("",))[0] in ("approved", "rejected"):
            per_image[image_id].add(route)
    shared = {i for i, rs in per_image.items() if len(rs) == len(routes)}
    figures: dict = defaultdict(lambda: defaultdict(float))
    latencies = defaultdict(list)
    end_to_end = defaultdict(list)
    for cid, image_id, route, _status, e2e in rows:
        if image_id not in shared:
            continue
        f = figures[route]
        end_to_end[route].append(e2e)
        state, edited, _effort = items.get(cid, ("", None, None))
        f["reviewed"] += state in ("approved", "rejected")
        f["accepted"] += state == "approved"
        f["edited"] += bool(edited)
        for status, error_class, ms, cost in calls[cid]:
            f["attempts"] += 1
            f["errors"] += status == "failed"
            f["timeouts"] += error_class == "timeout"
            f["spend"] += float(cost or 0)
            latencies[route].append(ms)
        f["review_ms"] += verdict_ms[cid]
    for route, values in latencies.items():
        values.sort()
        figures[route]["p50"] = values[len(values) // 2]
        figures[route]["p95"] = values[int(len(values) * 0.95)]
        e2e = sorted(end_to_end[route])
        figures[route]["e2e_p50"] = e2e[len(e2e) // 2]
    return (time.perf_counter() - started) * 1000, len(rows)


def explain(run) -> str:
    """The plan of the comparison's outcome query, to check which indexes it uses."""
    from django.db import connection

    from labeling.models import Project
    from review.metrics import Scope, scope_sql

    project = Project.objects.get(pk=run.project_id)
    scope = Scope(
        project=project,
        run_id=run.pk,
        route_ids=tuple(run.routes.values_list("pk", flat=True)),
        same_images=True,
    )
    cte, params = scope_sql(scope)
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) WITH {cte} "  # noqa: S608
            "SELECT count(*) FROM scoped",
            params,
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 images")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--baseline-limit",
        type=int,
        default=300_000,
        help="captions the naive baseline reads before its time is scaled up (0 = all)",
    )
    parser.add_argument("--explain", action="store_true", help="print the scope query's plan")
    parser.add_argument(
        "--skip-live", action="store_true", help="do not time the pages without the rollup"
    )
    parser.add_argument(
        "--reuse-rollup",
        action="store_true",
        help="time the pages against the rollup already built (rebuild only when there is none)",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="comma-separated words: time only the pages whose names contain one of them",
    )
    args = parser.parse_args()
    n_images = args.images or (3_000 if args.quick else 347_100)
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL.")
    django_setup(bench_database_url(base))

    from django.contrib.auth import get_user_model
    from django.test import Client

    from review.models import MetricRollupState
    from review.rollups import metric_rollup_refresh
    from routing.models import Caption

    project, run = load(n_images)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    urls = pages(project, run)
    wanted = [w.strip() for w in args.pages.split(",") if w.strip()]
    if wanted:
        urls = {name: url for name, url in urls.items() if any(w in name for w in wanted)}
        if not urls:
            sys.exit(f"no page matches {args.pages!r}")
    live: dict[str, float] = {}
    if not args.skip_live:
        # Without a rollup every page computes live, as a small project's pages do.
        MetricRollupState.objects.filter(project=project).delete()
        for name, url in urls.items():
            started = time.perf_counter()
            response = client.get(url, secure=True)
            live[name] = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (name, response.status_code)
            print(f"live: {name}: {live[name]:.0f} ms", flush=True)
    refresh_s = None
    if args.skip_live and args.reuse_rollup and MetricRollupState.objects.filter(project=project):
        print("reusing the rollup already built")
    else:
        started = time.perf_counter()
        metric_rollup_refresh(project=project)
        refresh_s = time.perf_counter() - started
        print(f"rollup rebuilt in {refresh_s:.1f} s")
    rows = []
    for name, url in urls.items():
        response = client.get(url, secure=True)
        assert response.status_code == 200, (name, response.status_code)
        best, median = best_ms(lambda url=url: client.get(url, secure=True), args.reps)
        shown_live = f"{live[name]:.0f}" if name in live else "-"
        rows.append([name, f"{best:.0f}", f"{median:.0f}", shown_live])
    print(table(["page (server time)", "best ms", "median ms", "live, no rollup ms"], rows))
    slowest = max(float(r[1]) for r in rows)
    slowest_page = next(r[0] for r in rows if float(r[1]) == slowest)
    if wanted:
        print(
            json.dumps(
                {
                    "benchmark": "dashboard",
                    "partial": True,
                    "value": round(slowest, 1),
                    "unit": "ms",
                    "slowest_page": slowest_page,
                    "images": n_images,
                    "pages": {r[0]: float(r[1]) for r in rows},
                    "pages_live_without_rollup": {k: round(v) for k, v in live.items()},
                    "rollup_refresh_s": round(refresh_s, 1) if refresh_s is not None else None,
                    "machine": machine(),
                }
            )
        )
        return
    run_page = run_page_figures(client, run, args.reps)
    print(table(["run page (server time)", "ms"], [[k, f"{v:.0f}"] for k, v in run_page.items()]))
    run_baseline = run_page["running, counters off (baseline: aggregates)"]
    run_ratio = run_baseline / run_page["running"] if run_page["running"] else None

    total = Caption.objects.filter(run=run).count()
    limit = None if args.quick or not args.baseline_limit else min(args.baseline_limit, total)
    naive_ms, read = naive_comparison(run, limit)
    baseline = naive_ms * total / read if read else naive_ms
    scaled = f" (read {read:,} of {total:,} captions, scaled up)" if read < total else ""
    print(f"naive comparison in Python: {baseline:.0f} ms{scaled}")
    if args.explain:
        print(explain(run))
    print(
        json.dumps(
            {
                "benchmark": "dashboard",
                "value": round(slowest, 1),
                "baseline": round(baseline, 1),
                "ratio": round(baseline / slowest, 2) if slowest else None,
                "unit": "ms",
                "goal": f"every page < {GOAL_MS:.0f} ms of server time at 1M verdicts, 3M calls",
                "slowest_page": slowest_page,
                "images": n_images,
                "pages": {r[0]: float(r[1]) for r in rows},
                "pages_live_without_rollup": {k: round(v) for k, v in live.items()},
                "run_page": {k: round(v, 1) for k, v in run_page.items()},
                "run_page_ratio": round(run_ratio, 1) if run_ratio else None,
                "rollup_refresh_s": round(refresh_s, 1) if refresh_s is not None else None,
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
