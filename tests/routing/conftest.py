"""Fixtures for the routing tests: fake vendors on 127.0.0.1, routes pointing at them, fast retry
settings, per-test Redis keys and a broker whose queues a test can read."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from routing.fakes import FakeEdenAI, FakeOllama, FakeReplicate
from routing.models import Chain, ChainStep, Route
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


def switch_broker(url: str) -> None:
    """Point this process's Celery producer at another broker. kombu keeps connection and producer
    pools in process-wide registries keyed by URL, so those are reset too (closing a pool without
    dropping it from the registry leaves a closed pool for the next user of that URL)."""
    from kombu import pools

    from captiondesk.celery import app

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()
    app.conf.broker_url = url


@pytest.fixture(autouse=True)
def _own_broker(request):
    """Every routing test (the provider clients' aside) publishes to the ``broker`` database,
    never to the shared one."""
    if "providers" in request.node.path.parts:
        yield None
    else:
        yield request.getfixturevalue("broker")


@pytest.fixture
def broker(settings):
    """Publish to a Redis database of the routing tests (flushed) and read what was enqueued:
    ``broker.messages("api")`` -> [(task name, kwargs)], oldest first."""
    import redis

    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    switch_broker(url)

    class Broker:
        def messages(self, queue: str) -> list[tuple[str, dict]]:
            out = []
            for raw in client.lrange(queue, 0, -1):
                message = json.loads(raw)
                body = json.loads(base64.b64decode(message["body"]))
                out.append((message["headers"]["task"], body[1]))
            # Redis lists are consumed from the right: oldest message last.
            return out[::-1]

        def clear(self) -> None:
            client.flushdb()

    yield Broker()
    client.flushdb()
    switch_broker(settings.REDIS_URL)
