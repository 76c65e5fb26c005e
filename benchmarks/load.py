"""Load: simulated annotators over HTTP against gunicorn, PostgreSQL, Redis and a Celery worker.

    python benchmarks/load.py [--quick] [--annotators 50] [--seconds 300] [--think-ms 3000]
                              [--baseline-seconds 30]

Starts the stack the way docker-compose.yml runs it (gunicorn on the app's WSGI entry with
3 workers x 4 threads, a Celery worker on the default and api queues with a thread pool) on a free
port, against a dedicated database next to the one in DATABASE_URL (`<name>_bench_load`, emptied
at the start) and a private key prefix in REDIS_URL. It loads one project of images (real JPEG
files, each with its own row and review item; every 10th needs two reviews) and one annotator
account per simulated person.

Each simulated annotator is a thread with its own HTTP session that does what the browser does:
GET the login page, POST the login form (CSRF token from the form), open the review screen, claim
an item (the htmx POST with the X-CSRFToken header), load the item's large thumbnail and its
full-size copy (which the worker makes on first request), wait a think time (0.5-1.5x
`--think-ms`), and POST a verdict with the form's idempotency key: mostly accept, some edits,
rejects and skips. Some submits are sent twice at once (a double click), some are sent again
after their answer (a retry), and some verdicts are undone and given again.

First one annotator alone (the baseline: the same requests on an idle server), then all of them.
Reported: verdicts/s, latency p50/p95/p99 per request kind, HTTP errors (5xx must be 0), the
audit of the database (a verdict saved twice for one key or one reviewer and item, an item
reviewed more often than its policy, an item leased beyond its policy at any instant, and every
verdict the clients saw saved and did not undo stored exactly once), and the peak RSS of the web
and worker processes. The JSON line's value is the submit p95 under load; its baseline is the
single annotator's submit p95.

tests/hardening/test_load_short.py runs a short version of the same code in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/queue.py would shadow the standard library's `queue` (psycopg imports it): take this
# folder off the import path and import the helpers as `benchmarks._common`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

PASSWORD = "load-annotator-pass-7Qv!"  # noqa: S105 - benchmark accounts on a private database
SLUG = "load-bench"
N_BASES = 16  # distinct pictures; every image row has its own row, name, hash and served copy
GOAL = "0 5xx, 0 lost or double-saved verdicts; submit p95 at 50 annotators < 1 s"


# --- the stack ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(*, database_url: str, redis_url: str, key_prefix: str, media_root: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_KEY_PREFIX=key_prefix,
        MEDIA_ROOT=media_root,
        DEBUG="0",
        SECRET_KEY=env.get("SECRET_KEY") or "benchmark-only-secret-key",
        DJANGO_SETTINGS_MODULE="captiondesk.settings",
    )
    return env


def _log(log: Path | None):
    return open(log, "ab") if log else None  # noqa: SIM115 - the child keeps it


def web_start(
    env: dict, port: int, *, workers: int = 3, threads: int = 4, log: Path | None = None
) -> subprocess.Popen:
    """gunicorn as docker-compose.yml's web service runs it, on 127.0.0.1:port."""
    out = _log(log)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "captiondesk.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def worker_start(env: dict, *, concurrency: int = 8, log: Path | None = None) -> subprocess.Popen:
    out = _log(log)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "captiondesk",
            "worker",
            "-Q",
            "default,api",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def stop(*procs: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to all at once, then wait; SIGKILL to what is left after `timeout`."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("the web server did not become healthy")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    """Peak RSS of each process tree (largest single process and the tree's sum), every second."""

    def __init__(self, trees: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.trees = trees
        self.peak_process = dict.fromkeys(trees, 0.0)
        self.peak_total = dict.fromkeys(trees, 0.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for name, pid in self.trees.items():
                sizes = [_rss_mb(p) for p in _descendants(pid)]
                if sizes:
                    self.peak_process[name] = max(self.peak_process[name], max(sizes))
                    self.peak_total[name] = max(self.peak_total[name], sum(sizes))
            self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


# --- the data ----------------------------------------------------------------------------------


def _picture(index: int) -> bytes:
    """A 1024x768 JPEG photo stand-in: smooth colour fields with some noise (about 150 KB)."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:768, 0:1024].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.02, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(127 + 100 * np.sin(x * fx + y * fy + phase))
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 12, (768, 1024, 3))
    buf = io.BytesIO()
    PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def seed(
    *, n_images: int, n_annotators: int, slug: str = SLUG, bases: int = N_BASES
) -> tuple[object, list[str]]:
    """One project with n_images captioned images in its review queue, and the annotators'
    usernames. Runs in a process where Django is set up against the stack's database."""
    import hashlib

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.db import transaction
    from django.utils import timezone
    from PIL import Image as PILImage

    from labeling.models import Image, Membership, Project
    from labeling.services.derivatives import image_thumbnails_save
    from review.models import ReviewItem
    from review.services.items import review_items_sync
    from routing.models import Caption

    User = get_user_model()
    now = timezone.now()
    with transaction.atomic():
        project = Project.objects.create(name="Load benchmark", slug=slug)
        files = []
        for b in range(bases):
            data = _picture(b)
            name = default_storage.save(f"originals/load/{slug}-{b}.jpg", ContentFile(data))
            files.append((name, len(data)))
        images = Image.objects.bulk_create(
            [
                Image(
                    project=project,
                    file=files[i % bases][0],
                    sha256=hashlib.sha256(f"{slug}-{i}".encode()).hexdigest(),
                    phash=i,
                    width=1024,
                    height=768,
                    format="JPEG",
                    mode="RGB",
                    byte_size=files[i % bases][1],
                    original_name=f"photo-{i:06d}.jpg",
                    source=Image.Source.UPLOAD,
                    status=Image.Status.CAPTIONED,
                )
                for i in range(n_images)
            ],
            batch_size=2000,
        )
        # Thumbnails are made at import in real life: make one pair per distinct picture here
        # and share its files (the full-size copies are left to the worker, per image).
        for b in range(min(bases, n_images)):
            with default_storage.open(files[b][0], "rb") as fh:
                image_thumbnails_save(image=images[b], pixels=PILImage.open(fh).convert("RGB"))
            Image.objects.filter(pk__in=[im.pk for im in images[b::bases]]).update(
                thumb_large=images[b].thumb_large.name, thumb_small=images[b].thumb_small.name
            )
        Caption.objects.bulk_create(
            [
                Caption(
                    image=image,
                    origin=Caption.Origin.IMPORTED,
                    model_name="blip2-opt-2.7b",
                    status=Caption.Status.SUCCEEDED,
                    text=f"A photo of thing number {i}, seen from the left.",
                    finished_at=now,
                )
                for i, image in enumerate(images)
            ],
            batch_size=2000,
        )
    review_items_sync(project=project)
    # Every 10th item needs two independent reviews (the risky ones) and is served first.
    ReviewItem.objects.filter(project=project, image__phash__endswith=0).update(
        required=2, risky=True, priority=1
    )
    hashed = make_password(PASSWORD)  # one hash for all: seeding need not pay 50 hashings
    usernames = [f"load-annotator-{i:02d}" for i in range(n_annotators)]
    users = User.objects.bulk_create([User(username=u, password=hashed) for u in usernames])
    Membership.objects.bulk_create([Membership(project=project, user=u) for u in users])
    return project, usernames


# --- the simulated annotators ------------------------------------------------------------------

_CSRF_FORM = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')
_LEASE = re.compile(r'data-lease="(\d+)"')
_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f-]{36})"')
_THUMB = re.compile(r'src="(/images/\d+/thumb/large/)"')
_DISPLAY = re.compile(r'data-full="(/images/\d+/display/)"')
_UNDO = re.compile(r'action="(/review/verdicts/(\d+)/undo/)"')


@dataclass
class Item:
    lease: int
    key: str
    csrf: str
    thumb: str
    display: str

    @classmethod
    def parse(cls, html: str) -> Item | None:
        lease, key, csrf = _LEASE.search(html), _KEY.search(html), _CSRF_FORM.search(html)
        if not (lease and key and csrf):
            return None
        thumb, display = _THUMB.search(html), _DISPLAY.search(html)
        return cls(
            int(lease.group(1)),
            key.group(1),
            csrf.group(1),
            thumb.group(1) if thumb else "",
            display.group(1) if display else "",
        )


@dataclass
class Tally:
    """What the clients saw, merged over all threads."""

    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    status: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    saved_keys: set[str] = field(default_factory=set)  # answered as saved (first or replay)
    undone_keys: set[str] = field(default_factory=set)
    submits: int = 0
    resends: int = 0
    double_clicks: int = 0
    undos: int = 0
    lost: int = 0
    empty_claims: int = 0
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def five_xx(self) -> int:
        return sum(n for (_, code), n in self.status.items() if code >= 500)

    def no_answer(self) -> int:
        """Requests that got no HTTP answer at all (refused, reset, or over the 60 s timeout)."""
        return sum(n for (_, code), n in self.status.items() if code == 0)


class Clock:
    """The working window: it opens when the last annotator has logged in."""

    def __init__(self, parties: int, seconds: float) -> None:
        self.seconds = seconds
        self.started = self.deadline = 0.0
        self.barrier = threading.Barrier(parties, action=self._open)

    def _open(self) -> None:
        self.started = time.time()
        self.deadline = self.started + self.seconds


class Annotator(threading.Thread):
    """One person at a browser, by HTTP requests only."""

    def __init__(
        self,
        index: int,
        username: str,
        base_url: str,
        slug: str,
        *,
        start_at: float,
        clock: Clock,
        think_ms: float,
        tally: Tally,
        reasons: dict[str, list[str]],
    ) -> None:
        super().__init__(daemon=True, name=f"annotator-{index}")
        import requests

        self.rng = random.Random(index)
        self.username = username
        self.base = base_url
        self.slug = slug
        self.start_at, self.clock, self.think_ms = start_at, clock, think_ms
        self.tally = tally
        self.reasons = reasons
        self.http = requests.Session()
        self.csrf = ""
        self.item: Item | None = None

    # one request, timed and counted
    def request(self, kind: str, method: str, path: str, **kwargs):
        import requests

        headers = kwargs.pop("headers", {})
        if method == "POST":
            headers.setdefault("Referer", f"{self.base}/review/projects/{self.slug}/")
            if self.csrf:
                headers.setdefault("X-CSRFToken", self.csrf)
        t0 = time.perf_counter()
        try:
            try:
                response = self.http.request(
                    method, self.base + path, headers=headers, timeout=60, **kwargs
                )
            except requests.ConnectionError as exc:
                # The server closed an idle keep-alive connection (gunicorn's keep-alive is 2 s,
                # a think time longer) just as this request went out on it. Browsers send the
                # request again on a new connection, and so does this client, once; a verdict
                # sent twice is what the idempotency key is for.
                if isinstance(exc, requests.exceptions.ConnectTimeout):
                    raise
                with self.tally.lock:
                    self.tally.reconnects += 1
                response = self.http.request(
                    method, self.base + path, headers=headers, timeout=60, **kwargs
                )
            code = response.status_code
        except requests.RequestException as exc:
            response, code = None, 0
            with self.tally.lock:
                self.tally.errors.append(f"{kind} {path}: {exc.__class__.__name__}: {exc}")
        elapsed = (time.perf_counter() - t0) * 1000
        with self.tally.lock:
            self.tally.latency_ms[kind].append(elapsed)
            self.tally.status[(kind, code)] += 1
            if code >= 400 and response is not None:
                self.tally.errors.append(f"{kind} {path}: HTTP {code}: {response.text[:200]!r}")
        return response

    def htmx(self, kind: str, path: str, data: dict | None = None):
        return self.request(kind, "POST", path, data=data or {}, headers={"HX-Request": "true"})

    def login(self) -> bool:
        page = self.request("login", "GET", "/login/")
        token = _CSRF_FORM.search(page.text) if page is not None else None
        if not token:
            return False
        done = self.request(
            "login",
            "POST",
            "/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": f"{self.base}/login/"},
            allow_redirects=False,
        )
        if done is None or done.status_code != 302:
            return False
        work = self.request("work", "GET", f"/review/projects/{self.slug}/")
        if work is None or work.status_code != 200:
            return False
        header = _CSRF_HEADER.search(work.text)
        self.csrf = header.group(1) if header else ""
        self.item = Item.parse(work.text)
        return bool(self.csrf)

    def claim(self) -> None:
        response = self.htmx("claim", f"/review/projects/{self.slug}/next/")
        if response is None or response.status_code != 200:
            return
        self.item = Item.parse(response.text)
        if self.item is None:
            with self.tally.lock:
                self.tally.empty_claims += 1

    def look(self) -> None:
        item = self.item
        if item and item.thumb:
            self.request("thumbnail", "GET", item.thumb)
        if item and item.display:
            self.request("full-size", "GET", item.display)

    def verdict_data(self, item: Item) -> dict:
        data = {
            "csrfmiddlewaretoken": item.csrf,
            "idempotency_key": item.key,
            "time_spent_ms": str(int(self.think_ms)),
        }
        roll = self.rng.random()
        if roll < 0.08:
            data.update(decision="edit", text=f"An edited caption, take {self.rng.random():.6f}.")
        elif roll < 0.13:
            data.update(decision="reject", reasons=self.reasons["reject"][:2], note="off")
        elif roll < 0.18:
            data.update(decision="skip", reasons=self.reasons["skip"][:1])
        else:
            data.update(decision="accept")
        return data

    def _saved(self, response, key: str) -> bool:
        if response is None or response.status_code != 200:
            return False
        if "verdict-saved" in response.headers.get("HX-Trigger", ""):
            with self.tally.lock:
                self.tally.saved_keys.add(key)
            return True
        if "Your verdict was not saved" in response.text:
            with self.tally.lock:
                self.tally.lost += 1
        return False

    def submit(self) -> None:
        item = self.item
        assert item is not None
        data = self.verdict_data(item)
        path = f"/review/leases/{item.lease}/verdict/"
        roll = self.rng.random()
        with self.tally.lock:
            self.tally.submits += 1
        if roll < 0.03:  # a double click: the same form sent twice at once
            with self.tally.lock:
                self.tally.double_clicks += 1
            answers: list = [None]
            twin = threading.Thread(
                target=lambda: answers.__setitem__(0, self.htmx("submit", path, data))
            )
            twin.start()
            response = self.htmx("submit", path, data)
            twin.join()
            self._saved(answers[0], item.key)
        else:
            response = self.htmx("submit", path, data)
        saved = self._saved(response, item.key)
        if roll >= 0.03 and roll < 0.06:  # the answer was lost on the way: the browser resends
            with self.tally.lock:
                self.tally.resends += 1
            response = self.htmx("resubmit", path, data)
            saved = self._saved(response, item.key) or saved
        if response is None or response.status_code != 200:
            self.item = None
            return
        self.item = Item.parse(response.text)
        undo = _UNDO.search(response.text)
        if saved and undo and self.rng.random() < 0.04:
            # undo straight away (the undo bar is on the next item's screen)
            answer = self.htmx("undo", undo.group(1), {"csrfmiddlewaretoken": item.csrf})
            if answer is not None and answer.status_code == 200 and "Undone:" in answer.text:
                with self.tally.lock:
                    self.tally.undos += 1
                    self.tally.undone_keys.add(item.key)
                self.item = Item.parse(answer.text)
        if self.item is None:
            with self.tally.lock:
                self.tally.empty_claims += 1

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.time()))
        logged_in = self.login()
        if not logged_in:
            with self.tally.lock:
                self.tally.errors.append(f"{self.username}: could not log in")
        # Everyone starts work together once all are logged in (logins are timed on their own:
        # a password hash costs far more than anything else here).
        self.clock.barrier.wait(timeout=600)
        if not logged_in:
            return
        while time.time() < self.clock.deadline:
            if self.item is None:
                self.claim()
                if self.item is None:
                    time.sleep(1.0)
                    continue
            self.look()
            time.sleep(self.rng.uniform(0.5, 1.5) * self.think_ms / 1000)
            if time.time() >= self.clock.deadline:
                break
            self.submit()
        self.http.close()


def run_annotators(
    base_url: str,
    usernames: list[str],
    *,
    seconds: float,
    think_ms: float,
    slug: str = SLUG,
    ramp_s: float | None = None,
) -> tuple[Tally, float]:
    """All annotators log in (spread over the ramp), then work together for `seconds`; returns
    the tally and the length of the working window."""
    from review.models import RejectReason, SkipReason

    reasons = {"reject": list(RejectReason.values), "skip": list(SkipReason.values)}
    tally = Tally()
    # People arrive over a minute or so, not in the same second: a login's password hash is the
    # most expensive request there is (about a second of CPU here).
    ramp = ramp_s if ramp_s is not None else min(60.0, 1.2 * len(usernames))
    start = time.time() + 0.5
    clock = Clock(len(usernames), seconds)
    threads = [
        Annotator(
            i,
            u,
            base_url,
            slug,
            start_at=start + ramp * i / max(1, len(usernames)),
            clock=clock,
            think_ms=think_ms,
            tally=tally,
            reasons=reasons,
        )
        for i, u in enumerate(usernames)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=ramp + seconds + 600)
    return tally, clock.deadline - clock.started


# --- the audit ---------------------------------------------------------------------------------


def audit(project, tally: Tally) -> dict[str, int]:
    """Counts that must all be 0, from the database and the clients' record."""
    from django.db import connection

    from review.models import Verdict

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH ev AS (
              SELECT item_id, created_at AS t, 1 AS d FROM review_lease WHERE project_id = %(p)s
              UNION ALL
              SELECT item_id, COALESCE(ended_at, 'infinity'), -1 FROM review_lease
              WHERE project_id = %(p)s
            ), live AS (
              SELECT item_id, SUM(d) OVER (PARTITION BY item_id ORDER BY t, d
                                           ROWS UNBOUNDED PRECEDING) AS n FROM ev
            )
            SELECT
              (SELECT COUNT(DISTINCT l.item_id) FROM live l
                 JOIN review_reviewitem i ON i.id = l.item_id WHERE l.n > i.required),
              (SELECT COUNT(*) FROM (SELECT 1 FROM review_verdict WHERE project_id = %(p)s
                 GROUP BY item_id, reviewer_id HAVING COUNT(*) > 1) d),
              (SELECT COUNT(*) FROM (SELECT 1 FROM review_verdict WHERE project_id = %(p)s
                 GROUP BY idempotency_key HAVING COUNT(*) > 1) k),
              (SELECT COUNT(*) FROM review_reviewitem i WHERE i.project_id = %(p)s
                 AND i.reviews_done > i.required)
            """,
            {"p": project.pk},
        )
        over_leased, double_per_item, double_per_key, over_reviewed = cursor.fetchone()
    stored = {
        str(k)
        for k in Verdict.objects.filter(project=project).values_list("idempotency_key", flat=True)
    }
    expected = tally.saved_keys - tally.undone_keys
    return {
        "five_xx": tally.five_xx(),
        "no_answer": tally.no_answer(),
        "double_leases": int(over_leased),
        "double_saved": int(double_per_item) + int(double_per_key),
        "over_reviewed": int(over_reviewed),
        "lost_verdicts": len(expected - stored),  # answered as saved, not in the database
        "unreported_verdicts": len(stored - expected),  # in the database, never answered saved
    }


# --- reporting ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_rows(tally: Tally) -> list[list[object]]:
    rows = []
    for kind in ("login", "work", "claim", "thumbnail", "full-size", "submit", "resubmit", "undo"):
        values = tally.latency_ms.get(kind, [])
        if values:
            rows.append(
                [
                    kind,
                    len(values),
                    f"{pct(values, 0.50):.0f} ms",
                    f"{pct(values, 0.95):.0f} ms",
                    f"{pct(values, 0.99):.0f} ms",
                ]
            )
    return rows


# --- main --------------------------------------------------------------------------------------


def bench_database_url(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "captiondesk"
    return urlunsplit(parts._replace(path=f"/{name}_bench_load"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 annotators for 15 s")
    parser.add_argument("--annotators", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="the measured load")
    parser.add_argument("--think-ms", type=float, default=None, help="mean pause per item")
    parser.add_argument("--baseline-seconds", type=float, default=None)
    args = parser.parse_args()
    annotators = args.annotators or (10 if args.quick else 50)
    seconds = args.seconds or (15.0 if args.quick else 300.0)
    think_ms = args.think_ms if args.think_ms is not None else (1000.0 if args.quick else 3000.0)
    baseline_s = args.baseline_seconds or (5.0 if args.quick else 30.0)
    # Enough items that nobody runs dry: everyone at twice the mean pace, and some spare.
    per_second = annotators / max(0.1, think_ms / 2000)
    n_images = int(per_second * (seconds + baseline_s) * 1.1) + 200

    base = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not base.startswith("postgres") or not redis_url.startswith("redis"):
        sys.exit("DATABASE_URL (PostgreSQL) and REDIS_URL must be set: this runs the real stack.")
    from benchmarks._common import _database_ensure, machine, table

    url = bench_database_url(base)
    _database_ensure(url)
    media = tempfile.mkdtemp(prefix="captiondesk-load-")
    prefix = f"bench-load:{uuid.uuid4().hex[:8]}:"
    env = stack_env(database_url=url, redis_url=redis_url, key_prefix=prefix, media_root=media)
    os.environ.update(DATABASE_URL=url, MEDIA_ROOT=media, CELERY_BROKER_KEY_PREFIX=prefix)
    os.environ.setdefault("SECRET_KEY", env["SECRET_KEY"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # a dedicated database: start from empty tables
        cursor.execute("TRUNCATE labeling_project, auth_user CASCADE")
    # The processes boot while the data is loaded.
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs = Path(media) / "logs"
    logs.mkdir()
    web = web_start(env, port, log=logs / "web.log")
    worker = worker_start(env, log=logs / "worker.log")
    sampler = RssSampler({"web": web.pid, "worker": worker.pid})
    try:
        started = time.perf_counter()
        project, usernames = seed(
            n_images=n_images, n_annotators=annotators, bases=4 if args.quick else N_BASES
        )
        print(
            f"loaded {n_images:,} images and {annotators} annotators in "
            f"{time.perf_counter() - started:.0f} s"
        )
        wait_healthy(base_url, web)
        sampler.start()
        single, _ = run_annotators(
            base_url, usernames[:1], seconds=baseline_s, think_ms=think_ms, ramp_s=0
        )
        loaded, loaded_s = run_annotators(
            base_url,
            usernames,
            seconds=seconds,
            think_ms=think_ms,
            ramp_s=0.3 * annotators if args.quick else None,
        )
    finally:
        if sampler.is_alive():
            sampler.stop()
        stop(web, worker)
    both = Tally()
    for t in (single, loaded):
        both.saved_keys |= t.saved_keys
        both.undone_keys |= t.undone_keys
        both.status.update(t.status)
    checks = audit(project, both)
    load_verdicts = len(loaded.saved_keys - loaded.undone_keys)
    verdicts_per_s = load_verdicts / seconds

    print(
        f"\nload: {annotators} annotators for {loaded_s:.0f} s (after logging in) against "
        "gunicorn 3x4 + a Celery worker, PostgreSQL and Redis; think time "
        f"{think_ms:.0f} ms (0.5-1.5x); baseline: 1 annotator for {baseline_s:.0f} s; "
        f"{machine()}, load average {os.getloadavg()[0]:.1f}"
    )
    headers = ["request", "count", "p50", "p95", "p99"]
    print("\none annotator (baseline):")
    print(table(headers, latency_rows(single)))
    print(f"\n{annotators} annotators:")
    print(table(headers, latency_rows(loaded)))
    print(
        f"\nverdicts stored: {load_verdicts:,} ({verdicts_per_s:.1f}/s); submits {loaded.submits:,}"
        f", double clicks {loaded.double_clicks}, resends {loaded.resends}, undos {loaded.undos}, "
        f"lost leases {loaded.lost}, empty claims {loaded.empty_claims}, requests sent again on a "
        f"new connection after the server closed an idle one {loaded.reconnects}"
    )
    print("HTTP answers:", {f"{k} {c}": n for (k, c), n in sorted(both.status.items())})
    for line in (single.errors + loaded.errors)[:10]:
        print("  error:", line)
    for name in ("web", "worker"):
        text = (logs / f"{name}.log").read_text(errors="replace")
        tracebacks = text.count("Traceback (most recent call last)")
        print(f"{name} log: {logs / f'{name}.log'} ({tracebacks} tracebacks)")
    print("audit (each must be 0):", checks)
    print(
        "peak RSS: web "
        f"{sampler.peak_process['web']:.0f} MB per process ({sampler.peak_total['web']:.0f} MB "
        f"all), worker {sampler.peak_process['worker']:.0f} MB per process "
        f"({sampler.peak_total['worker']:.0f} MB all)"
    )
    submit_p95 = pct(loaded.latency_ms["submit"], 0.95)
    baseline_p95 = pct(single.latency_ms["submit"], 0.95)
    print(
        json.dumps(
            {
                "benchmark": "load",
                "value": round(submit_p95, 1),
                "baseline": round(baseline_p95, 1),
                "ratio": round(submit_p95 / baseline_p95, 2) if baseline_p95 else None,
                "unit": "ms (submit p95)",
                "goal": GOAL,
                "annotators": annotators,
                "seconds": seconds,
                "think_ms": think_ms,
                "verdicts": load_verdicts,
                "verdicts_per_s": round(verdicts_per_s, 2),
                "claim_p50_ms": round(pct(loaded.latency_ms["claim"], 0.50), 1),
                "claim_p95_ms": round(pct(loaded.latency_ms["claim"], 0.95), 1),
                "claim_p99_ms": round(pct(loaded.latency_ms["claim"], 0.99), 1),
                "submit_p50_ms": round(pct(loaded.latency_ms["submit"], 0.50), 1),
                "submit_p99_ms": round(pct(loaded.latency_ms["submit"], 0.99), 1),
                "reconnects": loaded.reconnects,
                "http_errors": sum(n for (_, c), n in both.status.items() if c >= 400 or c == 0),
                **checks,
                "web_rss_peak_mb": round(sampler.peak_process["web"]),
                "worker_rss_peak_mb": round(sampler.peak_process["worker"]),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
