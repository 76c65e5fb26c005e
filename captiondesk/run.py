"""`make run`: migrate, prepare a first run, then serve the web app and a Celery worker together.

Stops both cleanly on Ctrl+C or SIGTERM. Uses SQLite and a file-system broker unless
DATABASE_URL / REDIS_URL are set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _gpu_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _die_with_parent() -> None:
    """In each child, before it runs: the kernel sends it SIGTERM if this supervisor dies, even
    by SIGKILL, so no worker or beat is left running behind a dead `make run` (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _environment() -> dict[str, str]:
    """The process environment over the ``.env`` file (``CAPTIONDESK_ENV_FILE``), the way the
    settings read it, so PORT, HOST and the concurrency variables set there apply here too."""
    import environ

    env_file = Path(os.environ.get("CAPTIONDESK_ENV_FILE", ROOT / ".env"))
    if env_file.exists():
        environ.Env.read_env(env_file)
    return dict(os.environ)


def main() -> int:
    env = _environment()
    var_dir = Path(env.get("CAPTIONDESK_VAR_DIR", ROOT / "var"))
    (var_dir / "staticfiles").mkdir(parents=True, exist_ok=True)
    env.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    port = env.get("PORT", "8000")
    host = env.get("HOST", "127.0.0.1")
    py = sys.executable

    def manage(*args: str) -> None:
        subprocess.run([py, "manage.py", *args], cwd=ROOT, env=env, check=True)

    manage("migrate", "--noinput", "-v", "0")
    manage("first_run")

    queues = "default,api,gpu" if _gpu_available() else "default,api"
    worker = subprocess.Popen(
        [
            py,
            "-m",
            "celery",
            "-A",
            "captiondesk",
            "worker",
            "-Q",
            queues,
            "-P",
            "threads",
            "-c",
            env.get("WORKER_CONCURRENCY", "8"),
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        preexec_fn=_die_with_parent,
    )
    # Beat in a process of its own (not the worker's -B child, which outlived a killed worker
    # and then ran twice beside the next one), with a pid file: a second beat on the same var
    # directory refuses to start while the first lives.
    beat = subprocess.Popen(
        [
            py,
            "-m",
            "celery",
            "-A",
            "captiondesk",
            "beat",
            "-l",
            "warning",
            "-s",
            str(var_dir / "celerybeat-schedule"),
            "--pidfile",
            str(var_dir / "celerybeat.pid"),
        ],
        cwd=ROOT,
        env=env,
        preexec_fn=_die_with_parent,
    )
    web = subprocess.Popen(
        [
            py,
            "-m",
            "gunicorn",
            "captiondesk.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ],
        cwd=ROOT,
        env=env,
        preexec_fn=_die_with_parent,
    )
    names = {web.pid: "the web server", worker.pid: "the worker", beat.pid: "beat"}
    children = [web, worker, beat]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"\ncaptiondesk is running at "
        f"http://{'localhost' if host == '127.0.0.1' else host}:{port}/ "
        f"(worker queues: {queues}). Press Ctrl+C to stop.\n",
        flush=True,
    )

    code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                name = names[child.pid]
                print(f"{name} exited with code {child.returncode}; stopping.", flush=True)
                stopping, code = True, child.returncode or 1
        time.sleep(0.3)

    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("captiondesk stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
