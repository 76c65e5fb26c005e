"""Every HTML page and form (walked from the URL resolver) x role x method against one table.

Roles: nobody, an annotator of this project, an annotator of another, an admin of this project,
an admin of another, and a site admin. Outcomes are what a user meets: sent to the login page,
refused (403), not shown to exist (404: another project's objects are never a 403), the method
refused (405), or served (any other status under 500: a page, a redirect after a POST, a 400 for
an empty form). A URL pattern missing from the table fails the test. /api/ has its own table
(tests/api/test_permissions.py); /admin/ is Django's.
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import Webhook
from integrations.services.tokens import api_token_create
from labeling.models import Membership
from labeling.services.team import invitation_create
from routing.models import ChainRule, RouteTest
from tests.hardening.test_bad_input import _html_patterns

ROLES = ("anonymous", "annotator", "other_annotator", "admin", "other_admin", "site_admin")

L, D, H, M, K = "login", "denied", "hidden", "method", "ok"
# Classes of access (one outcome per role, in ROLES order).
PUBLIC = (K, K, K, K, K, K)
ANYONE = (L, K, K, K, K, K)  # any signed-in user
MEMBER = (L, K, H, K, H, K)
ADMIN = (L, D, H, K, H, K)
SITE = (L, D, D, D, D, K)
ADMINS = (L, D, D, K, K, K)  # admins of any project (shared routes are read by all of them)
OWNER = (L, K, H, H, H, H)  # the annotator's own lease or verdict
OWNER_OR_SITE = (L, K, H, H, H, K)  # the annotator's own API token
NOBODY = (L, H, H, H, H, H)  # an object nobody here holds
WRONG_METHOD = (L, M, M, M, M, M)  # GET on a POST-only view, or POST on a GET-only one

EXPECTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("healthz", "GET"): PUBLIC,
    ("healthz", "POST"): PUBLIC,
    ("home", "GET"): PUBLIC,
    ("home", "POST"): PUBLIC,
    ("integrations:image-search", "GET"): MEMBER,
    ("integrations:image-search", "POST"): WRONG_METHOD,
    ("integrations:token-list", "GET"): ANYONE,
    ("integrations:token-list", "POST"): ANYONE,
    ("integrations:token-revoke", "GET"): WRONG_METHOD,
    ("integrations:token-revoke", "POST"): OWNER_OR_SITE,
    ("integrations:webhook-delete", "GET"): WRONG_METHOD,
    ("integrations:webhook-delete", "POST"): ADMIN,
    ("integrations:webhook-detail", "GET"): ADMIN,
    ("integrations:webhook-detail", "POST"): WRONG_METHOD,
    ("integrations:webhook-list", "GET"): ADMIN,
    ("integrations:webhook-list", "POST"): ADMIN,
    ("integrations:webhook-test", "GET"): WRONG_METHOD,
    ("integrations:webhook-test", "POST"): ADMIN,
    ("integrations:webhook-toggle", "GET"): WRONG_METHOD,
    ("integrations:webhook-toggle", "POST"): ADMIN,
    ("labeling:batch-close", "GET"): WRONG_METHOD,
    ("labeling:batch-close", "POST"): ADMIN,
    ("labeling:batch-detail", "GET"): MEMBER,
    ("labeling:batch-detail", "POST"): WRONG_METHOD,
    ("labeling:batch-files", "GET"): WRONG_METHOD,
    ("labeling:batch-files", "POST"): ADMIN,
    ("labeling:batch-open", "GET"): WRONG_METHOD,
    ("labeling:batch-open", "POST"): ADMIN,
    ("labeling:batch-progress", "GET"): MEMBER,
    ("labeling:batch-progress", "POST"): WRONG_METHOD,
    ("labeling:export-cancel", "GET"): WRONG_METHOD,
    ("labeling:export-cancel", "POST"): ADMIN,
    ("labeling:export-detail", "GET"): ADMIN,
    ("labeling:export-detail", "POST"): WRONG_METHOD,
    ("labeling:export-download", "GET"): ADMIN,
    ("labeling:export-download", "POST"): WRONG_METHOD,
    ("labeling:export-list", "GET"): ADMIN,
    ("labeling:export-list", "POST"): ADMIN,
    ("labeling:export-progress", "GET"): ADMIN,
    ("labeling:export-progress", "POST"): WRONG_METHOD,
    ("labeling:image-detail", "GET"): MEMBER,
    ("labeling:image-detail", "POST"): WRONG_METHOD,
    ("labeling:image-display", "GET"): MEMBER,
    ("labeling:image-display", "POST"): WRONG_METHOD,
    ("labeling:image-thumb", "GET"): MEMBER,
    ("labeling:image-thumb", "POST"): WRONG_METHOD,
    ("labeling:import", "GET"): ADMIN,
    ("labeling:import", "POST"): WRONG_METHOD,
    ("labeling:import-predictions", "GET"): WRONG_METHOD,
    ("labeling:import-predictions", "POST"): ADMIN,
    ("labeling:import-upload", "GET"): WRONG_METHOD,
    ("labeling:import-upload", "POST"): ADMIN,
    ("labeling:import-urls", "GET"): WRONG_METHOD,
    ("labeling:import-urls", "POST"): ADMIN,
    ("labeling:import-zip", "GET"): WRONG_METHOD,
    ("labeling:import-zip", "POST"): ADMIN,
    ("labeling:invitation-accept", "GET"): PUBLIC,
    ("labeling:invitation-accept", "POST"): PUBLIC,
    ("labeling:project-create", "GET"): SITE,
    ("labeling:project-create", "POST"): SITE,
    ("labeling:project-detail", "GET"): MEMBER,
    ("labeling:project-detail", "POST"): WRONG_METHOD,
    ("labeling:project-guidelines", "GET"): MEMBER,
    ("labeling:project-guidelines", "POST"): ADMIN,
    ("labeling:project-list", "GET"): ANYONE,
    ("labeling:project-list", "POST"): ANYONE,
    ("labeling:project-members", "GET"): ADMIN,
    ("labeling:project-members", "POST"): ADMIN,
    ("livez", "GET"): PUBLIC,
    ("livez", "POST"): PUBLIC,
    ("login", "GET"): PUBLIC,
    ("login", "POST"): PUBLIC,
    ("logout", "GET"): (M, M, M, M, M, M),
    ("logout", "POST"): (L, L, L, L, L, L),
    ("review:adjudicate", "GET"): ADMIN,
    ("review:adjudicate", "POST"): ADMIN,
    ("review:adjudication", "GET"): ADMIN,
    ("review:adjudication", "POST"): WRONG_METHOD,
    ("review:compare", "GET"): ADMIN,
    ("review:compare", "POST"): WRONG_METHOD,
    ("review:compare-csv", "GET"): ADMIN,
    ("review:compare-csv", "POST"): WRONG_METHOD,
    ("review:compare-images", "GET"): ADMIN,
    ("review:compare-images", "POST"): WRONG_METHOD,
    ("review:compare-images-csv", "GET"): ADMIN,
    ("review:compare-images-csv", "POST"): WRONG_METHOD,
    ("review:counts", "GET"): MEMBER,
    ("review:counts", "POST"): WRONG_METHOD,
    ("review:dashboard", "GET"): ADMIN,
    ("review:dashboard", "POST"): WRONG_METHOD,
    ("review:dashboard-csv", "GET"): ADMIN,
    ("review:dashboard-csv", "POST"): WRONG_METHOD,
    ("review:heartbeat", "GET"): WRONG_METHOD,
    ("review:heartbeat", "POST"): OWNER,
    ("review:history", "GET"): MEMBER,
    ("review:history", "POST"): WRONG_METHOD,
    ("review:lease-reassign", "GET"): WRONG_METHOD,
    ("review:lease-reassign", "POST"): ADMIN,
    ("review:lease-release", "GET"): WRONG_METHOD,
    ("review:lease-release", "POST"): MEMBER,
    ("review:leases", "GET"): ADMIN,
    ("review:leases", "POST"): WRONG_METHOD,
    ("review:next", "GET"): WRONG_METHOD,
    ("review:next", "POST"): MEMBER,
    ("review:pairwise", "GET"): MEMBER,
    ("review:pairwise", "POST"): WRONG_METHOD,
    ("review:pairwise-create", "GET"): WRONG_METHOD,
    ("review:pairwise-create", "POST"): ADMIN,
    ("review:pairwise-judge", "GET"): WRONG_METHOD,
    ("review:pairwise-judge", "POST"): NOBODY,
    ("review:pairwise-next", "GET"): WRONG_METHOD,
    ("review:pairwise-next", "POST"): MEMBER,
    ("review:pairwise-pass", "GET"): WRONG_METHOD,
    ("review:pairwise-pass", "POST"): NOBODY,
    ("review:pairwise-results", "GET"): ADMIN,
    ("review:pairwise-results", "POST"): WRONG_METHOD,
    ("review:policy", "GET"): ADMIN,
    ("review:policy", "POST"): ADMIN,
    ("review:queue-list", "GET"): ANYONE,
    ("review:queue-list", "POST"): WRONG_METHOD,
    ("review:risk-correct", "GET"): WRONG_METHOD,
    ("review:risk-correct", "POST"): ADMIN,
    ("review:risk-correct-bulk", "GET"): WRONG_METHOD,
    ("review:risk-correct-bulk", "POST"): ADMIN,
    ("review:undo", "GET"): WRONG_METHOD,
    ("review:undo", "POST"): OWNER,
    ("review:verdict", "GET"): WRONG_METHOD,
    ("review:verdict", "POST"): OWNER,
    ("review:work", "GET"): MEMBER,
    ("review:work", "POST"): WRONG_METHOD,
    ("routing:caption-detail", "GET"): ADMIN,
    ("routing:caption-detail", "POST"): WRONG_METHOD,
    ("routing:caption-retry", "GET"): WRONG_METHOD,
    ("routing:caption-retry", "POST"): ADMIN,
    ("routing:caption-stop", "GET"): WRONG_METHOD,
    ("routing:caption-stop", "POST"): ADMIN,
    ("routing:chain-create", "GET"): ADMIN,
    ("routing:chain-create", "POST"): ADMIN,
    ("routing:chain-delete", "GET"): WRONG_METHOD,
    ("routing:chain-delete", "POST"): ADMIN,
    ("routing:chain-edit", "GET"): ADMIN,
    ("routing:chain-edit", "POST"): ADMIN,
    ("routing:chain-list", "GET"): ADMIN,
    ("routing:chain-list", "POST"): WRONG_METHOD,
    ("routing:route-breaker-reset", "GET"): WRONG_METHOD,
    ("routing:route-breaker-reset", "POST"): SITE,
    ("routing:route-create", "GET"): SITE,
    ("routing:route-create", "POST"): SITE,
    ("routing:route-delete", "GET"): WRONG_METHOD,
    ("routing:route-delete", "POST"): SITE,
    ("routing:route-edit", "GET"): SITE,
    ("routing:route-edit", "POST"): SITE,
    ("routing:route-list", "GET"): ADMINS,
    ("routing:route-list", "POST"): WRONG_METHOD,
    ("routing:route-toggle", "GET"): WRONG_METHOD,
    ("routing:route-toggle", "POST"): SITE,
    ("routing:route-test", "GET"): SITE,
    ("routing:route-test", "POST"): SITE,
    ("routing:route-test-result", "GET"): SITE,
    ("routing:route-test-result", "POST"): WRONG_METHOD,
    ("routing:rule-add", "GET"): WRONG_METHOD,
    ("routing:rule-add", "POST"): ADMIN,
    ("routing:rule-delete", "GET"): WRONG_METHOD,
    ("routing:rule-delete", "POST"): ADMIN,
    ("routing:run-action", "GET"): WRONG_METHOD,
    ("routing:run-action", "POST"): ADMIN,
    ("routing:run-captions", "GET"): ADMIN,
    ("routing:run-captions", "POST"): WRONG_METHOD,
    ("routing:run-create", "GET"): ADMIN,
    ("routing:run-create", "POST"): ADMIN,
    ("routing:run-detail", "GET"): ADMIN,
    ("routing:run-detail", "POST"): WRONG_METHOD,
    ("routing:run-list", "GET"): ADMIN,
    ("routing:run-list", "POST"): WRONG_METHOD,
    ("routing:run-progress", "GET"): ADMIN,
    ("routing:run-progress", "POST"): WRONG_METHOD,
}


def _outcome(response) -> str:
    code = response.status_code
    assert code < 500, code
    if code in (301, 302) and response["Location"].startswith("/login/"):
        return L
    return {401: L, 403: D, 404: H, 405: M}.get(code, K)


@pytest.fixture
def roles(world, admin, annotator, other_annotator, django_user_model):
    this_admin = django_user_model.objects.create_user(username="petra-admin", password="p-4821x")
    Membership.objects.create(project=world.project, user=this_admin, role=Membership.Role.ADMIN)
    other_admin = django_user_model.objects.create_user(username="olaf-admin", password="o-4821x")
    Membership.objects.create(
        project=world.other_project, user=other_admin, role=Membership.Role.ADMIN
    )
    return {
        "anonymous": None,
        "annotator": annotator,
        "other_annotator": other_annotator,
        "admin": this_admin,
        "other_admin": other_admin,
        "site_admin": admin,
    }


@pytest.fixture
def objects(world, admin, annotator):
    """URL arguments for every pattern: the world's objects plus a webhook, a rule, an
    invitation and an API token of the annotator's."""
    webhook = Webhook.objects.create(
        project=world.project, url="https://hooks.example.org/in", secret="s3cret"
    )
    rule = ChainRule.objects.create(project=world.project, chain=world.chain, category="")
    invitation = invitation_create(
        project=world.project, email="new@example.org", role="annotator", created_by=admin
    )
    token = api_token_create(user=annotator, name="laptop").token
    route_test = RouteTest.objects.create(
        route=world.route, status="succeeded", text="a cup", lease_until=timezone.now()
    )
    return {
        "slug": world.project.slug,
        "batches/": world.batch.pk,
        "exports/": world.export.pk,
        "images/": world.image.pk,
        "routes/": world.route.pk,
        "route-tests/": route_test.pk,
        "chains/": world.chain.pk,
        "rules/": rule.pk,
        "runs/": world.run.pk,
        "captions/": world.caption.pk,
        "items/": world.item.pk,
        "leases/": world.lease.pk,
        "verdicts/": world.verdict.pk,
        "webhooks/": webhook.pk,
        "api-tokens/": token.pk,
        # No pairwise task in this world: a lease id nobody holds.
        "pairwise/": 999_999,
        "token": invitation.token,
        "size": "small",
        "plot": "rate",
        "action": "pause",
    }


def _kwargs(pattern: str, objects: dict) -> dict:
    kwargs = {}
    for name in re.findall(r"<(?:\w+:)?(\w+)>", pattern):
        if name == "pk":
            # The segment before the id names its kind: runs/<pk>/captions/ is a run.
            kind = re.search(r"([\w-]+)/<int:pk>", pattern).group(1)
            kwargs[name] = objects[f"{kind}/"]
        else:
            kwargs[name] = objects[name]
    return kwargs


def _ask(client: Client, user, method: str, url: str) -> str:
    """One request as one role, undone afterwards (a delete must not change the next row)."""
    with transaction.atomic():
        if user is not None:
            client.force_login(user)  # a POST to /logout/ ends the previous session
        outcome = _outcome(getattr(client, method.lower())(url))
        transaction.set_rollback(True)
    return outcome


def observe(roles, objects) -> dict[tuple[str, str], tuple[str, ...]]:
    clients = {role: Client(raise_request_exception=False) for role in roles}
    seen = {}
    for name, pattern in _html_patterns():
        url = reverse(name, kwargs=_kwargs(pattern, objects))
        for method in ("GET", "POST"):
            seen[(name, method)] = tuple(
                _ask(clients[role], roles[role], method, url) for role in ROLES
            )
    return seen


@pytest.mark.django_db
def test_every_page_and_method_answers_each_role_as_the_table_says(roles, objects):
    seen = observe(roles, objects)
    missing = sorted(set(seen) - set(EXPECTED))
    assert not missing, f"pages missing from the permission table: {missing}"
    stale = sorted(set(EXPECTED) - set(seen))
    assert not stale, f"table rows for pages that no longer exist: {stale}"
    wrong = {
        key: dict(zip(ROLES, seen[key], strict=True))
        for key in sorted(seen)
        if seen[key] != EXPECTED[key]
    }
    assert not wrong, wrong
