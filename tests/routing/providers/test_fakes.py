"""The fake vendor servers themselves: concurrency, scripting, recording, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from routing.fakes import FakeEdenAI, FakeOllama, FakeReplicate, Reply
from routing.providers import CaptionRequest, RateLimited, get_provider

ROOT = Path(__file__).resolve().parents[3]


def test_64_calls_in_flight_at_300_ms_overlap(png):
    with FakeEdenAI(latency_ms=300) as fake:
        provider = get_provider("edenai", {"base_url": fake.url, "api_key": "k"})
        request = CaptionRequest(image=png, mime_type="image/png", timeout_s=10)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(lambda _: provider.caption(request), range(64)))
        elapsed = time.monotonic() - started

    assert len(results) == 64 and all(r.text for r in results)
    assert fake.max_in_flight >= 32  # served side by side, not one after another
    assert elapsed < 5.0  # 64 x 300 ms one at a time would take 19 s


def test_script_then_default_and_recorded_requests(png):
    with FakeEdenAI() as fake:
        fake.script(["429", Reply.success("first")], default=Reply.success("later"))
        provider = get_provider("edenai", {"base_url": fake.url, "api_key": "secret-key"})
        request = CaptionRequest(image=png, mime_type="image/png", timeout_s=5)

        with pytest.raises(RateLimited):
            provider.caption(request)
        texts = [provider.caption(request).text for _ in range(3)]

        assert texts == ["first", "later", "later"]
        assert len(fake.requests) == 4
        assert all(r.header("Authorization") == "Bearer secret-key" for r in fake.requests)
        assert fake.requests[0].json["model"] == "openai/gpt-4o"


def test_unknown_reply_names_are_rejected():
    with pytest.raises(ValueError, match="unknown reply"):
        Reply.parse("sometimes")
    with pytest.raises(ValueError, match="unknown reply kind"):
        Reply(kind="maybe")


def test_replicate_fake_follows_the_prediction_lifecycle():
    with FakeReplicate() as fake:
        fake.script([Reply.success("done", polls=1)])
        created = requests.post(
            fake.url + "/v1/predictions",
            json={"version": "v1", "input": {"image": "data:,", "caption": True}},
            timeout=5,
        ).json()
        first = requests.get(created["urls"]["get"], timeout=5).json()
        second = requests.get(created["urls"]["get"], timeout=5).json()
        invalid = requests.post(
            fake.url + "/v1/predictions",
            json={"version": "v1", "input": {}},
            headers={"Prefer": "wait=0"},
            timeout=5,
        )

    assert created["status"] == "starting"
    assert first["status"] == "processing"
    assert second["status"] == "succeeded" and second["output"] == "done"
    assert second["metrics"]["predict_time"] == 1.25
    assert invalid.status_code == 400  # the documented Prefer pattern needs N >= 1


def test_ollama_fake_streams_ndjson_unless_told_not_to():
    with FakeOllama() as fake:
        response = requests.post(
            fake.url + "/api/generate",
            json={"model": "llava", "prompt": "hi", "images": ["AAAA"]},
            timeout=5,
        )

    lines = response.text.strip().splitlines()
    assert len(lines) > 2
    assert response.headers["Content-Type"] == "application/x-ndjson"


def test_cli_serves_until_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "routing.fakes", "edenai", "--latency-ms", "10", "--script", "500"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ")[1].split()[0]
        body = {"model": "openai/gpt-4o", "messages": []}
        failed = requests.post(url + "/v3/chat/completions", json=body, timeout=5)
        succeeded = requests.post(url + "/v3/chat/completions", json=body, timeout=5)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert failed.status_code == 500
    assert succeeded.status_code == 200
    assert succeeded.json()["choices"][0]["message"]["content"]
    assert process.returncode == 0
    assert "stopped after 2 requests" in out
