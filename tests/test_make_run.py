"""`make run` on a fresh machine: SQLite and a file-system broker, sample thumbnails, clean stop."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, *, env_file_lines: list[str], extra_env: dict[str, str] | None = None):
    """``python -m captiondesk.run`` as ``make run`` starts it, on a fresh var directory, with
    nothing of the test environment's PostgreSQL, Redis or secret key: the embedded default.
    PORT and the concurrency settings come from a ``.env`` file, as a user would write them."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MEDIA_ROOT", "PORT", "HOST")
        and not k.startswith(("WEB_CONCURRENCY", "WORKER_CONCURRENCY"))
    }
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(env_file_lines) + "\n")
    env.update(
        CAPTIONDESK_VAR_DIR=str(tmp_path / "var"),
        CAPTIONDESK_ENV_FILE=str(env_file),
        PYTHONUNBUFFERED="1",
        CAPTIONDESK_ADMIN_PASSWORD="",
        **(extra_env or {}),
    )
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - the child writes it until the end
    proc = subprocess.Popen(
        [sys.executable, "-m", "captiondesk.run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    text = ""
    while time.monotonic() < deadline and "is running at" not in text:
        assert proc.poll() is None, Path(log.name).read_text()
        time.sleep(0.5)
        text = Path(log.name).read_text()
    return proc, Path(log.name), env


def _stop(proc, log: Path) -> str:
    """SIGTERM, as Ctrl+C or a service manager sends it: everything stops cleanly."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=40)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "captiondesk stopped." in text
    # Web server and worker are gone with it.
    time.sleep(1)
    leftovers = subprocess.run(
        ["ps", "-o", "pid,stat,args", "-g", str(proc.pid)], capture_output=True, text=True
    ).stdout
    alive = [line for line in leftovers.strip().splitlines()[1:] if line.split()[1][0] != "Z"]
    assert alive == [], leftovers
    # What used to bury the useful lines, and what showed the sweep never ran.
    assert "No hostname was supplied" not in text
    assert "Couldn't apply scheduled task" not in text
    return text


@pytest.mark.slow
def test_first_run_serves_sample_thumbnails_and_stops_cleanly(tmp_path):
    port = _free_port()
    proc, log_path, _ = _start(
        tmp_path, env_file_lines=[f"PORT={port}", "WEB_CONCURRENCY=1", "WORKER_CONCURRENCY=2"]
    )
    try:
        text = log_path.read_text()
        assert f"http://localhost:{port}/" in text  # PORT from the .env file
        password = re.search(r"Username: admin  Password: (\S+)", text).group(1)
        assert len(password) >= 12  # generated, never a fixed default
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        for _ in range(40):
            try:
                login = session.get(f"{base}/login/", timeout=15)
                break
            except (requests.ConnectionError, requests.Timeout):  # still booting
                time.sleep(0.5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        page = session.post(
            f"{base}/login/",
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": token,
                "next": "/projects/samples/",
            },
            headers={"Referer": f"{base}/login/"},
            timeout=10,
        )
        thumbs = re.findall(r'src="(/images/\d+/thumb/small/)"', page.text)
        assert len(thumbs) == 7, page.text[:2000]
        # The worker makes the thumbnails on its own, without a page asking for them.
        var = tmp_path / "var" / "media" / "thumbs"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(var.rglob("*-s.webp"))) < 7:
            time.sleep(0.5)
        assert len(list(var.rglob("*-s.webp"))) == 7
        for url in thumbs:
            response = session.get(base + url, timeout=10)
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
    finally:
        _stop(proc, log_path)


def _django(env: dict[str, str], code: str) -> str:
    """Run Python against the same embedded database and broker as the running app."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


RUN_STATE = """
import json
from django.db.models import Count
from routing.models import CaptionRun, ModelCall
run = CaptionRun.objects.get(pk={run_id})
calls = ModelCall.objects.filter(run=run)
captions = run.captions.values("status").annotate(n=Count("id"))
print(json.dumps({{
    "status": run.status,
    "captions": {{row["status"]: row["n"] for row in captions}},
    "in_flight": calls.filter(status="in_flight").count(),
    "reserved": str(run.reserved_usd),
    "spent": str(run.spent_usd),
    "call_costs": str(sum(c for c in calls.values_list("cost_usd", flat=True) if c is not None)),
}}))
"""


REVIEW_ALL = """
import uuid
from datetime import timedelta
from django.contrib.auth.models import User
from labeling.models import Project
from review.services import queue
from review.services.items import review_items_sync
from review.services.verdict import verdict_submit
project = Project.objects.get(slug="samples")
admin = User.objects.get(username="admin")
review_items_sync(project=project)
n = 0
while lease := queue.lease_claim_next(project=project, reviewer=admin):
    decision = "reject" if n % 4 == 0 else "accept"
    verdict_submit(lease=lease, reviewer=admin, decision=decision, idempotency_key=uuid.uuid4(),
                   reasons=["wrong_subject"] if decision == "reject" else [],
                   time_spent_ms=2000, now=lease.created_at + timedelta(seconds=30))
    n += 1
print(n)
"""


def _log_in(base: str, password: str) -> requests.Session:
    session = requests.Session()
    for _ in range(40):
        try:
            login = session.get(f"{base}/login/", timeout=15)
            break
        except (requests.ConnectionError, requests.Timeout):  # still booting
            time.sleep(0.5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    session.post(
        f"{base}/login/",
        data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    return session


def _metric_pages_answer(base: str, password: str, run_id: str) -> dict[str, str]:
    """After the verdicts, the pages a new user opens next, on SQLite: the comparison with its
    figures, the dashboards with their plots, the blind results, the CSV and the run page."""
    session = _log_in(base, password)
    pages = {
        "compare": f"/review/projects/samples/compare/?run={run_id}",
        "compare_csv": f"/review/projects/samples/compare.csv?run={run_id}",
        "images": f"/review/projects/samples/compare/images/?run={run_id}",
        "dashboard": "/review/projects/samples/dashboard/",
        "project": "/projects/samples/",
    }
    found = {}
    for name, path in pages.items():
        response = session.get(base + path, timeout=60)
        assert response.status_code == 200, (name, response.status_code, response.text[:2000])
        found[name] = response.text
    return found


@pytest.mark.slow
def test_a_two_route_run_on_the_embedded_default_finishes_and_settles(tmp_path):
    """SQLite and the file-system broker, as `make run` starts them, with Eden AI and Replicate
    answering through their fakes: the run reaches 100% on its own, nothing stays in flight or
    reserved, and the spend is what the calls cost (SQLite's floating-point decimals once made
    settling a reservation crash the task and leave a caption running for ever). Reviewed, the
    comparison and dashboards show their figures on the same SQLite database."""
    from routing.fakes import FakeEdenAI, FakeReplicate, Reply

    port = _free_port()
    with FakeEdenAI() as edenai, FakeReplicate() as replicate:
        edenai.set_default(Reply.success("a photograph", cost="0.0031"))
        replicate.set_default(Reply.success("a picture", predict_time=0.7))
        proc, log_path, env = _start(
            tmp_path,
            env_file_lines=[
                f"PORT={port}",
                "WEB_CONCURRENCY=1",
                "WORKER_CONCURRENCY=4",
                "COMPARISON_MIN_IMAGES=3",
            ],
            extra_env={
                "EDENAI_BASE_URL": edenai.url,
                "EDENAI_API_KEY": "test-key",
                "REPLICATE_BASE_URL": replicate.url,
                "REPLICATE_API_TOKEN": "test-token",
            },
        )
        try:
            run_id = _django(
                env,
                "from django.contrib.auth.models import User\n"
                "from labeling.models import Project\n"
                "from routing.models import Route\n"
                "from routing.services.runs import ImageSelection, run_launch\n"
                "routes = [Route.objects.get(name=n) for n in "
                "('edenai-gpt-4o', 'replicate-blip2')]\n"
                "Route.objects.filter(name='replicate-blip2').update("
                "config={**routes[1].config, 'poll_interval_s': 0.05})\n"
                "run = run_launch(project=Project.objects.get(slug='samples'), "
                "user=User.objects.get(username='admin'), kind='comparison', "
                "selection=ImageSelection(), routes=routes)\n"
                "print(run.pk)",
            )
            deadline = time.monotonic() + 120
            state: dict = {}
            while time.monotonic() < deadline:
                state = json.loads(_django(env, RUN_STATE.format(run_id=run_id)))
                if state["status"] == "finished":
                    break
                time.sleep(1)
            verdicts = int(_django(env, REVIEW_ALL))
            password = re.search(r"Username: admin  Password: (\S+)", log_path.read_text()).group(1)
            pages = _metric_pages_answer(f"http://127.0.0.1:{port}", password, run_id)
        finally:
            text = _stop(proc, log_path)
    assert state["status"] == "finished", (state, text[-3000:])
    assert state["captions"] == {"succeeded": 14}
    assert state["in_flight"] == 0
    assert Decimal(state["reserved"]) == 0
    assert Decimal(state["spent"]) == Decimal(state["call_costs"]) > 0
    assert "IntegrityError" not in text and "Traceback" not in text
    # Every caption one admin may review was decided (flagged images wait for a second reviewer).
    assert verdicts >= 6
    compare = pages["compare"]
    assert 'id="not-enough"' not in compare
    for route in ("edenai-gpt-4o", "replicate-blip2"):
        assert f'data-key="{route}"' in compare
    rate = re.search(r'data-measure="accepted-output-rate".*?</tr>', compare, re.S).group(0)
    assert len(re.findall(r'data-raw="([0-9.]+)"', rate)) == 2 and "95% CI" in rate
    table = list(csv.reader(io.StringIO(pages["compare_csv"])))
    assert table[0][0] == "group"
    assert {row[0] for row in table[1:]} == {"edenai-gpt-4o", "replicate-blip2"}
    for plot in ("rate", "cost", "latency", "spend", "throughput", "risk"):
        assert f'id="plot-{plot}"' in pages["dashboard"]
    assert pages["dashboard"].count("<svg") >= 6
    assert 'data-image="' in pages["images"]
    # The project page's headline: accepted-output rate per route, not progress only.
    assert 'id="route-headline"' in pages["project"]
    assert '<tr data-key="edenai-gpt-4o">' in pages["project"]


def _children(pid: int) -> dict[int, str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    found = {}
    for line in out.strip().splitlines():
        child, stat, args = line.split(None, 2)
        if not stat.startswith("Z"):
            found[int(child)] = args
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return not stat.stdout.strip().startswith("Z")


@pytest.mark.slow
def test_beat_runs_once_and_never_outlives_the_app(tmp_path):
    """A killed worker used to leave its -B beat child running, and the next `make run` then had
    two beats scheduling every task twice."""
    port = _free_port()
    proc, log_path, env = _start(
        tmp_path, env_file_lines=[f"PORT={port}", "WEB_CONCURRENCY=1", "WORKER_CONCURRENCY=2"]
    )
    children = _children(proc.pid)
    [worker] = [pid for pid, args in children.items() if " worker " in args]
    [beat] = [pid for pid, args in children.items() if " beat " in args]
    pidfile = tmp_path / "var" / "celerybeat.pid"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        pidfile.exists() and pidfile.read_text().strip() == str(beat)
    ):
        time.sleep(0.3)
    # a second beat on the same var directory refuses to start while the first one lives
    second = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "captiondesk", "beat", "--pidfile",
         str(tmp_path / "var" / "celerybeat.pid"), "-s", str(tmp_path / "beat2")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert second.returncode != 0 and "already exists" in second.stderr, second.stderr

    os.kill(worker, signal.SIGKILL)

    assert proc.wait(timeout=40) != 0
    assert "the worker exited" in log_path.read_text()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.3)
    assert not _alive(beat) and not any(_alive(pid) for pid in children)


@pytest.mark.slow
def test_children_die_with_a_killed_supervisor(tmp_path):
    port = _free_port()
    proc, _, _ = _start(
        tmp_path, env_file_lines=[f"PORT={port}", "WEB_CONCURRENCY=1", "WORKER_CONCURRENCY=2"]
    )
    children = _children(proc.pid)
    assert len(children) == 3

    proc.kill()  # SIGKILL: the supervisor cleans nothing up itself
    proc.wait(timeout=10)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.3)
    assert not any(_alive(pid) for pid in children), children
