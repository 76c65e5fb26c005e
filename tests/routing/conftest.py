"""Fixtures for the routing tests: fake vendors on 127.0.0.1, routes pointing at them, fast retry
settings, per-test Redis keys and a broker whose queues a test can read."""

from __future__ import annotations

import uuid

import pytest

from routing.fakes import FakeEdenAI, FakeOllama, FakeReplicate
from routing.models import Chain, ChainStep, Route
from tests.conftest import switch_broker as _switch_broker
from tests.factories import ImageFactory, RouteFactory


@pytest.fixture(autouse=True)
def routing_settings(request, settings):
    """Short waits so retries and breakers play out in milliseconds; breaker and single-flight
    keys under a prefix of their own so tests never see each other's state."""
    settings.ROUTING_REDIS_PREFIX = f"test-routing:{uuid.uuid4().hex}:"
    settings.ROUTING_BACKOFF_BASE_S = 0.01
    settings.ROUTING_BACKOFF_MAX_S = 0.05
    yield settings
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=settings.ROUTING_REDIS_PREFIX + "*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def fake_edenai():
    with FakeEdenAI() as fake:
        yield fake


@pytest.fixture
def fake_edenai_b():
    """A second Eden AI, so two routes of one chain can fail independently."""
    with FakeEdenAI() as fake:
        yield fake


@pytest.fixture
def fake_replicate():
    with FakeReplicate() as fake:
        yield fake


@pytest.fixture
def fake_ollama():
    with FakeOllama() as fake:
        yield fake


def edenai_route(fake, **kwargs) -> Route:
    kwargs.setdefault("name", f"edenai-{uuid.uuid4().hex[:6]}")
    kwargs.setdefault("timeout_s", 5.0)
    return RouteFactory(
        provider=Route.Provider.EDENAI, model="openai/gpt-4o", base_url=fake.url, **kwargs
    )


def make_chain(project, routes, *, name="main", deadline_s=30.0, is_default=True) -> Chain:
    chain = Chain.objects.create(
        project=project, name=name, deadline_s=deadline_s, is_default=is_default
    )
    for i, route in enumerate(routes):
        ChainStep.objects.create(chain=chain, route=route, position=i)
    return chain


@pytest.fixture
def image(project):
    return ImageFactory(project=project)


switch_broker = _switch_broker  # kept under this name for the tests that import it


@pytest.fixture(autouse=True)
def _own_broker(request):
    """Every routing test (the provider clients' aside) publishes to the ``broker`` database,
    never to the shared one."""
    if "providers" in request.node.path.parts:
        yield None
    else:
        yield request.getfixturevalue("broker")


@pytest.fixture
def broker(broker_space):
    """Publish to this test's own Redis key prefix and read what was enqueued:
    ``broker.messages("api")`` -> [(task name, kwargs)], oldest first."""
    return broker_space
