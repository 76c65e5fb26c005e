"""Image search at scale: PostgreSQL full-text search against substring matching (icontains) on
the same rows, in the same run.

    python benchmarks/search.py [--quick] [--images N] [--reps R] [--baseline-timeout S]

Loads N images (default 1,000,000; 20,000 with ``--quick``) into one project of its own database
(``<DATABASE_URL name>_bench_search``, reused while the count matches), each with a model caption
made from a small vocabulary ("A red bicycle leaning against the wall of the harbour at dusk."),
three in five with an approved text (one in five of those edited), file names like
``IMG_0000042.jpg`` and a folder path. The search column is filled the way the migration does it
(the triggers are off during the bulk load, then every row is computed once).

Measured: the time to the first page (50 results) of ``labeling.search.image_search_page``, what
the API and the search page call (best first when at most ``search.BROAD_MATCHES`` images match,
newest first otherwise), for typical queries (a noun, two words, a phrase, an exclusion, OR, a
file name), ``--reps`` times each, as p50/p95; beside it, in the same run, ranking every match
(``labeling.search.image_search``, what pages did before the cap); the same queries through the
substring fallback (every word ``icontains`` the file name, path, model captions or approved
text: what SQLite does), fewer times, each cut off at ``--baseline-timeout`` seconds; and one very
common word on its own (a colour: about 1 image in 14), first page and the next one.

The last line is JSON: ``value`` is full-text p50 in ms, ``baseline`` the substring p50 in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

from benchmarks._common import emit, table  # noqa: E402

SLUG = "search-benchmark"
GOAL_MS = 100.0
PAGE = 50

COLOURS = (
    "red blue green yellow white black grey brown orange purple pink golden silver dark pale bright"
)
NOUNS = (
    "bicycle dog cat car boat house tree bird horse cow sheep bus train tram truck motorbike "
    "kayak canoe sailboat ship lighthouse bridge tower church castle windmill tent bench chair "
    "table sofa "
    "lamp clock vase bottle cup plate bowl pizza sandwich cake apple banana orange umbrella kite "
    "ball guitar piano violin drum camera phone laptop keyboard book newspaper map poster sign "
    "statue fountain wall door window gate fence ladder rope net basket bucket shovel tractor "
    "helicopter airplane balloon rocket robot doll teddy bear duck swan goose owl eagle parrot fox "
    "wolf deer rabbit squirrel mouse frog turtle snake lizard fish crab shell starfish jellyfish "
    "flower rose tulip sunflower cactus fern mushroom leaf pumpkin carrot tomato pepper onion "
    "potato bread cheese egg coffee teapot kettle oven fridge sink bathtub mirror towel bed pillow "
    "blanket carpet curtain shelf cupboard suitcase backpack hat coat scarf glove boot shoe dress "
    "shirt tie watch ring necklace skateboard surfboard ski snowboard sled scooter wheelchair pram"
)
VERBS = (
    "parked standing sitting lying leaning floating hanging resting waiting shining drying "
    "stacked scattered glowing reflected covered painted broken abandoned decorated"
)
PLACES = (
    "beach street harbour park kitchen forest mountain river lake garden field farm market station "
    "airport square courtyard balcony rooftop alley bridge pier dock shop cafe library classroom "
    "office studio workshop garage barn stable meadow desert canyon cliff cave island valley "
    "village city plaza stadium playground museum gallery church temple palace castle ruin "
    "campsite trail road highway tunnel subway platform"
)
TIMES = (
    "at_night at_dusk at_dawn in_the_morning in_winter in_the_rain in_the_snow "
    "under_a_cloudy_sky in_the_fog in_bright_sunlight"
)
TYPICAL = [
    "bicycle",
    "red bicycle",
    '"red bicycle"',
    "harbour dusk",
    "dog -night",
    "kayak OR canoe",
    "lighthouse fog",
    "IMG_0000042",
]
COMMON = "red"


def bench_database_url(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "captiondesk"
    return urlunsplit(parts._replace(path=f"/{name}_bench_search"))


def django_setup(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _array(words: str) -> str:
    """A SQL array literal of our own constant words (never user input)."""
    return "ARRAY[" + ",".join(f"'{w.replace('_', ' ')}'" for w in words.split()) + "]"


def _pick(words: str, salt: str, key: str = "i.id") -> str:
    n = len(words.split())
    # %% : these expressions run with query parameters
    return f"({_array(words)})[1 + abs(hashtext({key}::text || '{salt}')) %% {n}]"


SENTENCE = "'A ' || {c} || ' ' || {n} || ' ' || {v} || ' by the ' || {p} || ' ' || {t} || '.'"


def load(n_images: int):
    from django.db import connection, transaction

    from benchmarks.queue import _copy_rows
    from labeling.models import Image, Project
    from review.models import ReviewItem
    from routing.models import Caption

    project = Project.objects.filter(slug=SLUG).first()
    if project is not None and Image.objects.filter(project=project).count() == n_images:
        print(f"reusing {n_images:,} loaded images")
        return project
    started = time.perf_counter()
    tables = ("labeling_image", "routing_caption", "review_reviewitem")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE labeling_project CASCADE")
        # The search triggers are off for the bulk load; every row is computed once below.
        cursor.execute("DROP INDEX IF EXISTS image_search_gin")
        for table_name in tables:
            cursor.execute(f"ALTER TABLE {table_name} DISABLE TRIGGER USER")
    try:
        with transaction.atomic():
            project = Project.objects.create(name="Search benchmark", slug=SLUG)
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
                source=Image.Source.PATH,
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
                    "original_name": "'IMG_' || lpad(g::text, 7, '0') || '.jpg'",
                    "source_detail": (
                        "'/archive/' || (g %% 97) || '/IMG_' || lpad(g::text, 7, '0') || '.jpg'"
                    ),
                    "file": "'originals/bench/' || g || '.jpg'",
                },
                "CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
                [n_images, image.pk],
            )
            words = {
                "c": _pick(COLOURS, "c"),
                "n": _pick(NOUNS, "n"),
                "v": _pick(VERBS, "v"),
                "p": _pick(PLACES, "p"),
                "t": _pick(TIMES, "t"),
            }
            _copy_rows(
                Caption,
                caption.pk,
                {"image_id": "i.id", "text": SENTENCE.format(**words)},
                "JOIN labeling_image i ON i.project_id = %s AND i.id <> t.image_id WHERE t.id = %s",
                [project.pk, caption.pk],
            )
            image.delete()
            # Three in five approved; one in five of those with another colour (an edit).
            edited = SENTENCE.format(**{**words, "c": _pick(COLOURS, "e")})
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO review_reviewitem (caption_id, image_id, project_id, state, risky,
                        required, reviews_done, priority, queued_at, final_text, edited, decided_at,
                        created_at)
                    SELECT c.id, c.image_id, i.project_id, 'approved', false, 1, 1, 0, now(),
                        CASE WHEN i.id %% 5 = 0 THEN {edited} ELSE c.text END, i.id %% 5 = 0,
                        now(), now()
                    FROM routing_caption c JOIN labeling_image i ON i.id = c.image_id
                    WHERE i.project_id = %s AND i.id %% 5 < 3
                    """,
                    [project.pk],
                )
    finally:
        with connection.cursor() as cursor:
            for table_name in tables:
                cursor.execute(f"ALTER TABLE {table_name} ENABLE TRIGGER USER")
    took = time.perf_counter() - started
    print(f"loaded {n_images:,} images, captions and approvals in {took:.0f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # What migration 0003 does for existing rows, then the index.
        cursor.execute(
            "UPDATE labeling_image SET search_vector = labeling_image_search_document("
            "id, original_name, format, source, source_detail)"
        )
        cursor.execute("CREATE INDEX image_search_gin ON labeling_image USING gin (search_vector)")
        cursor.execute("VACUUM ANALYZE")
    print(f"search column and GIN index built in {time.perf_counter() - started:.0f} s")
    assert ReviewItem.objects.count() > 0
    return project


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 images")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None, help="full-text runs per query")
    parser.add_argument("--baseline-timeout", type=float, default=30.0, metavar="SECONDS")
    args = parser.parse_args()
    n_images = args.images or (20_000 if args.quick else 1_000_000)
    reps = args.reps or (5 if args.quick else 15)
    base_reps = 2 if args.quick else 3

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (SQLite has no full-text search here).")
    django_setup(bench_database_url(base))
    project = load(n_images)

    from django.db import OperationalError, connection, transaction

    from labeling import search

    def fts(q: str) -> int:
        return len(search.image_search_page(project=project, query=q, size=PAGE).images)

    def rank_all(q: str) -> int:
        return len(list(search.image_search(project=project, query=q)[:PAGE]))

    def order_of(q: str) -> str:
        return search.image_search_page(project=project, query=q, size=PAGE).order

    def substring(q: str) -> int:
        return len(
            list(
                search._substring_search(search.Image.objects.filter(project=project), q).order_by(
                    "-id"
                )[:PAGE]
            )
        )

    def matches(q: str) -> int:
        return search.image_search(project=project, query=q).count()

    def baseline_ms(q: str) -> tuple[float, bool]:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(args.baseline_timeout * 1000)}")
                return timed(lambda: substring(q)), True
        except OperationalError:
            return args.baseline_timeout * 1000, False

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT id FROM labeling_image WHERE project_id = %s AND "
            "search_vector @@ websearch_to_tsquery('english', 'bicycle')",
            [project.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    uses_index = "image_search_gin" in plan

    rows, fts_all, all_all, base_all, cut = [], [], [], [], 0
    for q in TYPICAL:
        fts(q)  # warm the cache as a server's would be
        times = [timed(lambda q=q: fts(q)) for _ in range(reps)]
        rank_all(q)
        everything = [timed(lambda q=q: rank_all(q)) for _ in range(reps)]
        all_all += everything
        bases = []
        for _ in range(base_reps):
            ms, finished = baseline_ms(q)
            bases.append(ms)
            cut += not finished
        fts_all += times
        base_all += bases
        rows.append(
            [
                q,
                f"{matches(q):,}",
                order_of(q),
                f"{statistics.median(times):.1f}",
                f"{pct(times, 0.95):.1f}",
                f"{statistics.median(everything):.1f}",
                f"{statistics.median(bases):.0f}",
            ]
        )
    fts(COMMON)
    common_times = [timed(lambda: fts(COMMON)) for _ in range(reps)]
    first = search.image_search_page(project=project, query=COMMON, size=PAGE)
    next_times = [
        timed(
            lambda: search.image_search_page(
                project=project, query=COMMON, size=PAGE, cursor=first.next_cursor
            )
        )
        for _ in range(reps)
    ]
    rank_all(COMMON)
    common_all = [timed(lambda: rank_all(COMMON)) for _ in range(reps)]
    common_base = [baseline_ms(COMMON)[0] for _ in range(base_reps)]

    print(
        f"\n{n_images:,} images, one project; first page of {PAGE}; "
        f"ranked up to {search.BROAD_MATCHES:,} matches"
    )
    print(f"GIN index used by the planner: {'yes' if uses_index else 'NO'}\n")
    headers = ["query", "matches", "order", "p50 ms", "p95 ms", "rank all p50 ms", "icontains p50"]
    print(table(headers, rows))
    print(
        f"\ncommon word {COMMON!r} ({matches(COMMON):,} matches, {first.order} first): "
        f"p50 {statistics.median(common_times):.1f} ms, p95 {pct(common_times, 0.95):.1f} ms; "
        f"next page p50 {statistics.median(next_times):.1f} ms; ranking every match p50 "
        f"{statistics.median(common_all):.0f} ms, p95 {pct(common_all, 0.95):.0f} ms; "
        f"icontains {statistics.median(common_base):.0f} ms"
    )
    a50, a95 = statistics.median(all_all), pct(all_all, 0.95)
    print(f"typical queries ranking every match: p50 {a50:.1f} ms, p95 {a95:.1f} ms")
    p50, p95 = statistics.median(fts_all), pct(fts_all, 0.95)
    b50, b95 = statistics.median(base_all), pct(base_all, 0.95)
    print(
        f"\ntypical queries: FTS p50 {p50:.1f} ms, p95 {p95:.1f} ms; "
        f"icontains p50 {b50:.0f} ms, p95 {b95:.0f} ms"
        + (f" ({cut} runs cut off at {args.baseline_timeout:.0f} s)" if cut else "")
    )
    emit(
        "search",
        value=p50,
        baseline=b50,
        unit="ms",
        goal=f"full-text p50 and p95 < {GOAL_MS:.0f} ms at 1,000,000 images",
        images=n_images,
        fts_p95_ms=round(p95, 1),
        icontains_p95_ms=round(b95, 1),
        rank_all_p50_ms=round(a50, 1),
        rank_all_p95_ms=round(a95, 1),
        broad_matches=search.BROAD_MATCHES,
        common_word_order=first.order,
        common_word_fts_p50_ms=round(statistics.median(common_times), 1),
        common_word_fts_p95_ms=round(pct(common_times, 0.95), 1),
        common_word_next_page_p50_ms=round(statistics.median(next_times), 1),
        common_word_rank_all_p50_ms=round(statistics.median(common_all), 1),
        common_word_rank_all_p95_ms=round(pct(common_all, 0.95), 1),
        gin_index_used=uses_index,
        baseline_cut_off_runs=cut,
    )


if __name__ == "__main__":
    main()
