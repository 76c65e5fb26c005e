"""Fake vendor servers on 127.0.0.1 and a real image for the provider-client tests."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from routing.fakes import FakeEdenAI, FakeOllama, FakeReplicate

API_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"


@pytest.fixture
def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_edenai() -> Iterator[FakeEdenAI]:
    with FakeEdenAI(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake
