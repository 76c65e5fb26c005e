"""`make run` on a fresh machine: SQLite and a file-system broker, sample thumbnails, clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_first_run_serves_sample_thumbnails_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MEDIA_ROOT")
    }
    env.update(
        CAPTIONDESK_VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        CAPTIONDESK_ADMIN_PASSWORD="",
        WEB_CONCURRENCY="1",
        WORKER_CONCURRENCY="2",
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
    try:
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline and "is running at" not in text:
            assert proc.poll() is None, Path(log.name).read_text()
            time.sleep(0.5)
            text = Path(log.name).read_text()
        password = re.search(r"Username: admin  Password: (\S+)", text).group(1)
        assert len(password) >= 12  # generated, never a fixed default
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        for _ in range(40):
            try:
                login = session.get(f"{base}/login/", timeout=5)
                break
            except requests.ConnectionError:
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
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=40)
    assert code == 0, Path(log.name).read_text()[-3000:]
    assert "captiondesk stopped." in Path(log.name).read_text()
    # Web server and worker are gone with it.
    time.sleep(1)
    leftovers = subprocess.run(
        ["ps", "-o", "pid,stat,args", "-g", str(proc.pid)], capture_output=True, text=True
    ).stdout
    alive = [line for line in leftovers.strip().splitlines()[1:] if line.split()[1][0] != "Z"]
    assert alive == [], leftovers
