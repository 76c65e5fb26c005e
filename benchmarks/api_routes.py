"""Captions per second through one api worker process against a fake Eden AI answering in 300 ms.

    python benchmarks/api_routes.py [--quick] [--levels 1,8,32,64] [--rounds 32] [--latency-ms 300]

For each level N of calls in flight, one Celery worker process (``-Q api -P threads -c N``, the
api workers' configuration) consumes a captioning run of N x rounds images from Redis against the
database in DATABASE_URL; every caption goes through the real path: claim, breaker, budget
reservation, call log rows, the Eden AI v3 client over HTTP to the fake, settlement, finish.
Throughput is captions / (last finish - first claim), read from the rows; the ideal is
N / latency (every slot busy with a 300 ms call all the time); the ratio compares the two.
The final JSON line's ``ratio`` is the figure at 32 in flight (goal >= 0.8). Each slot captions
32 images (about 10 s), so the figure is the steady state of a run rather than its start: the
"ramp" column says how long the worker took to have every slot busy (one Redis round trip per
message), which a short run pays in full; ``--rounds 8`` shows it.

The broker is a Redis database of its own (``BENCH_REDIS_DB``, default 12, flushed), next to
the one in REDIS_URL (default redis://127.0.0.1:6379). The benchmark's project, images, routes
and captions are deleted at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

# benchmarks/queue.py is named like the standard library's queue: keep this folder off the import
# path and load the shared helpers by file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("bench_common", _HERE / "_common.py")
assert _spec is not None and _spec.loader is not None
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
ROOT, django_setup, emit, table = _common.ROOT, _common.django_setup, _common.emit, _common.table

GOAL_RATIO = 0.8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes, well under a minute.")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--rounds", type=int, default=None, help="Captions per slot (default 32).")
    parser.add_argument("--latency-ms", type=int, default=300)
    return parser.parse_args()


def bench_broker() -> str:
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    return base.rsplit("/", 1)[0] + "/" + os.environ.get("BENCH_REDIS_DB", "12")


def start_worker(*, concurrency: int, broker: str, prefix: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        REDIS_URL=broker,
        ROUTING_REDIS_PREFIX=prefix,
        CONN_MAX_AGE=env.get("CONN_MAX_AGE", "60"),
        LOG_LEVEL="WARNING",
        # A production worker: no DEBUG (which records every query in memory).
        DEBUG="0",
    )
    env.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "captiondesk",
            "worker",
            "-Q",
            "api",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--prefetch-multiplier",
            "4",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, *, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(
                f"worker exited ({proc.returncode}) while waiting for {what}:\n"
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def main() -> None:
    args = parse_args()
    broker = bench_broker()
    os.environ["REDIS_URL"] = broker  # this process publishes to the benchmark's broker too
    django_setup()

    import redis
    from django.conf import settings
    from django.db.models import Max, Min

    from labeling.models import Image, Project
    from routing.fakes import FakeEdenAI, Reply
    from routing.models import Caption, CaptionRun, ModelCall, Route
    from routing.services.runs import ImageSelection, run_launch

    levels = [int(x) for x in args.levels.split(",")]
    rounds = args.rounds or (3 if args.quick else 32)
    if args.quick:
        levels = [n for n in levels if n <= 32] or levels
    latency_s = args.latency_ms / 1000
    redis.Redis.from_url(broker).flushdb()
    tag = uuid.uuid4().hex[:8]
    prefix = f"bench-api-routes:{tag}:"
    settings.ROUTING_REDIS_PREFIX = prefix

    fake = FakeEdenAI(latency_ms=args.latency_ms, default=Reply.success(cost="0.0004")).start()
    project = Project.objects.create(name=f"bench api routes {tag}", slug=f"bench-api-{tag}")
    total_images = max(levels) * rounds
    Image.objects.bulk_create(
        Image(
            project=project,
            file=f"bench/{tag}/{i}.png",
            sha256=f"{tag}{i:056d}",
            phash=i,
            width=1,
            height=1,
            format="PNG",
            mode="RGB",
            byte_size=1,
            original_name=f"{i}.png",
            source="upload",
        )
        for i in range(total_images)
    )
    image_ids = list(
        Image.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    )
    # The benchmark images need bytes on disk: one tiny PNG shared by every row.
    media = Path(settings.MEDIA_ROOT) / "bench" / tag
    media.mkdir(parents=True, exist_ok=True)
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d7"
        "63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
    )
    for i in range(total_images):
        (media / f"{i}.png").write_bytes(png)

    rows, results = [], {}
    routes: list[Route] = []
    try:
        for level in levels:
            route = Route.objects.create(
                name=f"bench-{tag}-{level}",
                provider="edenai",
                model="openai/gpt-4o",
                base_url=fake.url,
                timeout_s=30,
                max_attempts=1,
            )
            routes.append(route)
            proc = start_worker(concurrency=level, broker=broker, prefix=prefix)
            try:
                # Warm up: the worker is up and its client pool is open before the clock starts.
                warm = run_launch(
                    project=project,
                    user=None,
                    kind="comparison",
                    routes=[route],
                    selection=ImageSelection(ids=tuple(image_ids[:1])),
                    prompt="warm-up",
                    use_cache=False,
                )
                wait_for(
                    lambda w=warm: CaptionRun.objects.get(pk=w.pk).status == "finished",
                    timeout=120,
                    what="the worker to start",
                    proc=proc,
                )
                count = level * rounds
                fake_before = len(fake.requests)
                cpu_before = cpu_seconds(proc.pid)
                run = run_launch(
                    project=project,
                    user=None,
                    kind="comparison",
                    routes=[route],
                    selection=ImageSelection(ids=tuple(image_ids[:count])),
                    prompt="Describe this image.",
                    use_cache=False,
                )
                wait_for(
                    lambda r=run: CaptionRun.objects.get(pk=r.pk).status == "finished",
                    timeout=60 + count * latency_s * 2,
                    what=f"{count} captions",
                    proc=proc,
                )
                cpu_ms = (cpu_seconds(proc.pid) - cpu_before) * 1000 / count
            finally:
                stop_worker(proc)
            captions = Caption.objects.filter(run=run)
            span = captions.aggregate(start=Min("claimed_at"), end=Max("finished_at"))
            seconds = (span["end"] - span["start"]).total_seconds()
            claims = sorted(captions.values_list("claimed_at", flat=True))
            ramp_ms = (claims[min(level, len(claims)) - 1] - claims[0]).total_seconds() * 1000
            ok = captions.filter(status="succeeded").count()
            calls = ModelCall.objects.filter(run=run)
            throughput = ok / seconds
            ideal = level / latency_s
            results[level] = throughput / ideal
            rows.append(
                [
                    level,
                    count,
                    ok,
                    calls.count(),
                    len(fake.requests) - fake_before,
                    f"{seconds:.2f}",
                    f"{throughput:.1f}",
                    f"{ideal:.1f}",
                    f"{throughput / ideal:.2f}",
                    fake.max_in_flight,
                    f"{ramp_ms:.0f} ms",
                    f"{cpu_ms:.1f}",
                ]
            )
            fake.max_in_flight = 0
    finally:
        fake.stop()
        Caption.objects.filter(image__project=project).delete()
        CaptionRun.objects.filter(project=project).delete()
        Route.objects.filter(pk__in=[r.pk for r in routes]).delete()
        project.delete()
        for path in media.glob("*.png"):
            path.unlink()
        media.rmdir()

    print(f"One api worker process (threads pool), fake Eden AI answering in {args.latency_ms} ms")
    print(
        table(
            [
                "in flight",
                "captions",
                "succeeded",
                "calls",
                "vendor requests",
                "seconds",
                "captions/s",
                "ideal/s",
                "ratio",
                "max in flight at vendor",
                "ramp",
                "worker CPU ms/caption",
            ],
            rows,
        )
    )
    key = 32 if 32 in results else max(results)
    value = results[key] * key / latency_s
    emit(
        "api_routes",
        value=value,
        baseline=key / latency_s,
        unit="captions/s",
        goal=f">= {GOAL_RATIO} of ideal (in flight / latency) at 32 in flight",
        in_flight=key,
        latency_ms=args.latency_ms,
        ratios={str(k): round(v, 3) for k, v in results.items()},
        rounds=rounds,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
