"""A short run of benchmarks/load.py in CI: annotators over HTTP against gunicorn (as
docker-compose.yml runs it), a Celery worker, PostgreSQL and Redis, with double clicks, resends,
undos and skips. No timings are asserted (a shared machine's latency is not a test); what must
hold is that nothing answers 5xx, no verdict is saved twice, and every verdict a client was told
was saved is stored exactly once (and nothing else is)."""

from __future__ import annotations

import uuid

import pytest

from benchmarks import load

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ANNOTATORS = 6
SECONDS = 20.0  # working window, after the logins (about 30 s of traffic in all)
THINK_MS = 400.0


def test_annotators_under_load_get_no_5xx_and_every_verdict_is_stored_once(
    transactional_db, settings, _media_root, tmp_path
):
    import redis

    db = settings.DATABASES["default"]
    prefix = f"test:load:{uuid.uuid4().hex[:8]}:"
    env = load.stack_env(
        database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        redis_url=settings.REDIS_URL,
        key_prefix=prefix,
        media_root=str(_media_root),
    )
    port = load.free_port()
    base_url = f"http://127.0.0.1:{port}"
    # The processes boot while the data is loaded.
    web = load.web_start(env, port, workers=2, threads=4, log=tmp_path / "web.log")
    worker = load.worker_start(env, concurrency=4, log=tmp_path / "worker.log")
    sampler = load.RssSampler({"web": web.pid, "worker": worker.pid})
    try:
        project, usernames = load.seed(n_images=300, n_annotators=ANNOTATORS, bases=4)
        load.wait_healthy(base_url, web)
        sampler.start()
        tally, _ = load.run_annotators(
            base_url, usernames, seconds=SECONDS, think_ms=THINK_MS, ramp_s=1.0
        )
    finally:
        if sampler.is_alive():
            sampler.stop()
        load.stop(web, worker)
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)

    checks = load.audit(project, tally)
    web_log = (tmp_path / "web.log").read_text(errors="replace")
    assert "Traceback" not in web_log, web_log[-3000:]
    assert checks == {
        "five_xx": 0,
        "no_answer": 0,
        "double_leases": 0,
        "double_saved": 0,
        "over_reviewed": 0,
        "lost_verdicts": 0,
        "unreported_verdicts": 0,
    }, (checks, tally.errors[:10])
    # The run did what it is meant to: everyone logged in and worked, verdicts were stored, and
    # the same submit was sent more than once (double clicks and resends answered as saved).
    assert tally.status[("login", 302)] == ANNOTATORS, tally.errors[:10]
    assert len(tally.saved_keys - tally.undone_keys) >= ANNOTATORS * 3
    assert tally.latency_ms["submit"] and tally.latency_ms["full-size"]
    assert tally.double_clicks + tally.resends > 0
    assert not [e for e in tally.errors if "HTTP 5" in e or "Error" in e]
    assert sampler.peak_process["web"] > 0 and sampler.peak_process["worker"] > 0
