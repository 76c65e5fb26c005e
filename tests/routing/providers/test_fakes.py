"""The fake vendor servers themselves: concurrency, scripting, recording, and the CLI."""

from __future__ import annotations

import json
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


# --- the fakes refuse what the vendors refuse, and script the failures the clients must survive ---

FAILURE_NAMES = [
    "success", "429", "500", "503", "402", "401", "hang", "malformed", "fail", "stuck", "empty",
    "refusal", "aborted", "create_hang", "poll_500", "poll_429", "poll_reset", "stream_error",
    "length", "drip",
]  # fmt: skip


@pytest.mark.parametrize("name", FAILURE_NAMES)
def test_every_documented_reply_name_can_be_scripted(name):
    assert Reply.parse(name).kind


def test_cli_scripts_replicate_lifecycle_failures():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "routing.fakes", "replicate", "--script", "aborted,poll_500"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split("listening on ")[1].split()[0]
        body = {"version": "v1", "input": {"image": "https://example.com/a.png", "caption": True}}
        created = requests.post(url + "/v1/predictions", json=body, timeout=5).json()
        aborted = requests.get(created["urls"]["get"], timeout=5).json()
        running = requests.post(url + "/v1/predictions", json=body, timeout=5).json()
        poll = requests.get(running["urls"]["get"], timeout=5)
        canceled = requests.post(running["urls"]["cancel"], timeout=5).json()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert aborted["status"] == "aborted" and aborted["metrics"] == {}
    assert poll.status_code == 500
    assert canceled["status"] == "canceled"
    assert canceled["metrics"]["predict_time"] >= 0


def test_replicate_fake_refuses_a_cancel_after_it_cannot_read():
    with FakeReplicate() as fake:
        body = {"version": "v1", "input": {"image": "https://example.com/a.png"}}
        refused = requests.post(
            fake.url + "/v1/predictions", json=body, headers={"Cancel-After": "soon"}, timeout=5
        )
        accepted = requests.post(
            fake.url + "/v1/predictions", json=body, headers={"Cancel-After": "1m30s"}, timeout=5
        )

    assert refused.status_code == 400
    assert accepted.status_code == 201
    assert fake.predictions[accepted.json()["id"]].cancel_after_s == 90


def test_replicate_fake_keeps_a_prediction_whose_create_never_answered():
    with FakeReplicate() as fake:
        fake.script([Reply.create_hang(seconds=0.3)])
        body = {"version": "v1", "input": {"image": "https://example.com/a.png"}}
        with pytest.raises(requests.ConnectionError):
            requests.post(fake.url + "/v1/predictions", json=body, timeout=5)
        (prediction_id,) = fake.predictions

        assert fake.status_of(prediction_id) in ("starting", "processing")


def test_eden_ai_v2_fake_goes_by_the_file_extension_and_the_bytes(png):
    def upload(name: str, data: bytes, content_type: str) -> requests.Response:
        return requests.post(
            fake.url + "/v2/image/question_answer",
            data={"providers": "openai"},
            files={"file": (name, data, content_type)},
            timeout=5,
        )

    with FakeEdenAI() as fake:
        named_webp = upload("image.webp", png, "image/webp")
        not_an_image = upload("image.png", b"GIF89a not really", "image/png")
        fine = upload("image.png", png, "image/png")

    assert named_webp.status_code == 400
    assert "webp" in named_webp.json()["error"]["message"]["file"][0]
    assert not_an_image.status_code == 400
    assert fine.status_code == 200


def test_ollama_fake_reports_failures_as_ollama_does():
    """Not streaming: a non-2xx with {"error": ...}; streaming: HTTP 200 and an error line."""
    body = {"model": "llava", "prompt": "hi", "images": ["AAAA"]}
    with FakeOllama() as fake:
        fake.script(["fail", "stream_error"])
        whole = requests.post(fake.url + "/api/generate", json={**body, "stream": False}, timeout=5)
        streamed = requests.post(fake.url + "/api/generate", json=body, timeout=5)

    assert whole.status_code == 500 and "error" in whole.json()
    assert streamed.status_code == 200
    lines = [json.loads(line) for line in streamed.text.strip().splitlines()]
    assert lines[0]["response"] and "error" in lines[-1] and "done" not in lines[-1]
