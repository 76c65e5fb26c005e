"""The OpenAPI schema describes the API truthfully: schemathesis generates requests from it and
sends them to the app in-process (WSGI); no answer may be a server error or break the schema."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from integrations.services.tokens import api_token_create

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Deeper local runs: API_FUZZ_EXAMPLES=200 pytest tests/api/test_schema.py
EXAMPLES_PER_OPERATION = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))


def test_the_schema_and_its_docs_are_served_from_the_app(client):
    schema = client.get(reverse("api:schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["openapi"].startswith("3.")
    assert "/api/projects/{slug}/images/" in spec["paths"]
    assert spec["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    assert "basicAuth" not in spec["components"]["securitySchemes"]
    for name in ("api:docs",):
        page = client.get(reverse(name)).content.decode()
        # The UI's files come from this app (drf-spectacular-sidecar), never from a CDN. Look
        # at addresses, not at any "cdn" in the page: the page's random CSRF token can hold it.
        assert "/static/drf_spectacular_sidecar/" in page
        addresses = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page)
        assert addresses and not [a for a in addresses if re.match(r"(https?:)?//", a)], addresses
        assert not re.search(r"https?://|unpkg\.com|jsdelivr\.net|cdnjs\.", page)
    bundle = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert bundle.status_code == 200


def _real_object_id(path: str, world) -> int:
    for prefix, obj in (
        ("/api/images/", world.image),
        ("/api/batches/", world.batch),
        ("/api/routes/", world.route),
        ("/api/route-tests/", world.route_test),
        ("/api/runs/", world.run),
        ("/api/captions/", world.caption),
        ("/api/review-items/", world.item),
        ("/api/leases/", world.lease),
        ("/api/verdicts/", world.verdict),
        ("/api/exports/", world.export),
        ("/api/chains/", world.chain),
        ("/api/chain-rules/", world.rule),
        ("/api/tokens/", world.api_token),
        ("/api/webhooks/", world.webhook),
        ("/api/invitations/", world.invitation),
        ("/api/pairwise-leases/", world.pairwise_lease),
    ):
        if path.startswith(prefix):
            return obj.pk
    raise AssertionError(f"no object for {path}")


def _fuzz(operation, *, world, annotator, headers):
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        # Half the requests name the world's real objects, so they get past the 404.
        if case.path_parameters and len(repr(case.query) + repr(case.body)) % 2 == 0:
            real = {"slug": world.project.slug, "user_id": annotator.pk, "plot": "rate"}
            for name in case.path_parameters:
                case.path_parameters[name] = real.get(name) or _real_object_id(
                    operation.path, world
                )
        case.call_and_validate(headers=headers, checks=CHECKS)

    return check


@pytest.fixture
def in_process_wsgi():
    """The WSGI app, called in-process inside the test's transaction: Django's end-of-request
    connection cleanup is switched off, as its own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "annotator"])
def test_generated_requests_get_no_server_error_and_answers_match_the_schema(
    role, world, admin, annotator, settings, in_process_wsgi
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": None, "anon": None},
    }
    user = admin if role == "admin" else annotator
    headers = {"Authorization": f"Bearer {api_token_create(user=user, name='fuzz').secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", in_process_wsgi)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35
    failures: list[str] = []
    for operation in operations:
        if operation.path in ("/api/schema/",):
            continue

        check = _fuzz(operation, world=world, annotator=annotator, headers=headers)
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then fail
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
