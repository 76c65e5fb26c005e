"""Fake vendor servers (Eden AI, Replicate, Ollama) on 127.0.0.1 for tests, benchmarks and a
local trial without keys::

    with FakeEdenAI(latency_ms=300) as fake:
        fake.script(["429", Reply.success("a dog"), "500"], default="success")
        provider = get_provider("edenai", {"base_url": fake.url, "api_key": "x"})
        ...
        fake.requests  # every request received: headers, parsed JSON / multipart body

From a shell: ``python -m routing.fakes edenai --port 8101 --latency-ms 300``.
"""

from __future__ import annotations

from routing.fakes.edenai import FakeEdenAI
from routing.fakes.ollama import FakeOllama
from routing.fakes.replicate import FakeReplicate
from routing.fakes.server import DEFAULT_TEXT, FakeServer, RecordedRequest, Reply

FAKES: dict[str, type[FakeServer]] = {
    "edenai": FakeEdenAI,
    "replicate": FakeReplicate,
    "ollama": FakeOllama,
}

__all__ = [
    "DEFAULT_TEXT",
    "FAKES",
    "FakeEdenAI",
    "FakeOllama",
    "FakeReplicate",
    "FakeServer",
    "RecordedRequest",
    "Reply",
]
