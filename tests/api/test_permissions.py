"""Every API endpoint and method, for every role, against one table of expected status codes.

Roles: nobody (no credentials), an annotator of the project, an annotator of another project
(to whom the project's objects do not exist: 404, never 403), and a site admin. Bodies are the
smallest a client might send; a 400 for the admin means "allowed, but fix the input".
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

ROLES = ("anonymous", "annotator", "other_annotator", "admin")

# (url name, method): (anonymous, annotator, annotator of another project, admin)
EXPECTED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("schema", "GET"): (200, 200, 200, 200),
    ("docs", "GET"): (200, 200, 200, 200),
    ("project-list", "GET"): (401, 200, 200, 200),
    ("project-list", "POST"): (401, 403, 403, 201),
    ("project-detail", "GET"): (401, 200, 404, 200),
    ("member-list", "GET"): (401, 403, 404, 200),
    ("member-list", "POST"): (401, 403, 404, 201),
    ("member-detail", "DELETE"): (401, 403, 404, 204),
    ("member-detail", "PATCH"): (401, 403, 404, 200),
    ("account-list", "POST"): (401, 403, 404, 201),
    ("invitation-list", "GET"): (401, 403, 404, 200),
    ("invitation-list", "POST"): (401, 403, 404, 201),
    ("invitation-revoke", "POST"): (401, 403, 404, 200),
    ("guidelines", "GET"): (401, 200, 404, 200),
    ("guidelines", "PUT"): (401, 403, 404, 200),
    ("image-list", "GET"): (401, 200, 404, 200),
    ("image-list", "POST"): (401, 403, 404, 400),
    ("image-detail", "GET"): (401, 200, 404, 200),
    ("image-file", "GET"): (401, 200, 404, 200),
    ("image-search", "GET"): (401, 200, 404, 200),
    ("batch-list", "GET"): (401, 200, 404, 200),
    ("batch-list", "POST"): (401, 403, 404, 202),
    ("batch-detail", "GET"): (401, 200, 404, 200),
    ("batch-items", "GET"): (401, 200, 404, 200),
    ("batch-close", "POST"): (401, 403, 404, 200),
    # The world's batch is done: it takes no more files.
    ("batch-files", "POST"): (401, 403, 404, 409),
    ("batch-open", "POST"): (401, 403, 404, 201),
    ("route-list", "GET"): (401, 403, 403, 200),
    ("route-list", "POST"): (401, 403, 403, 400),
    ("route-detail", "GET"): (401, 403, 403, 200),
    ("route-detail", "PATCH"): (401, 403, 403, 200),
    # The world's route has captioned: the admin's delete is refused with the reason.
    ("route-detail", "DELETE"): (401, 403, 403, 409),
    ("route-enable", "POST"): (401, 403, 403, 200),
    ("route-disable", "POST"): (401, 403, 403, 200),
    ("route-breaker-reset", "POST"): (401, 403, 403, 200),
    ("route-test-list", "GET"): (401, 403, 403, 200),
    ("route-test-list", "POST"): (401, 403, 403, 202),
    ("route-test-detail", "GET"): (401, 403, 403, 200),
    ("run-list", "GET"): (401, 403, 404, 200),
    ("run-list", "POST"): (401, 403, 404, 400),
    ("run-estimate", "POST"): (401, 403, 404, 200),
    ("run-detail", "GET"): (401, 403, 404, 200),
    ("run-pause", "POST"): (401, 403, 404, 200),
    ("run-resume", "POST"): (401, 403, 404, 400),
    ("run-cancel", "POST"): (401, 403, 404, 200),
    ("run-retry-failed", "POST"): (401, 403, 404, 200),
    ("run-budget", "PUT"): (401, 403, 404, 200),
    ("run-captions", "GET"): (401, 403, 404, 200),
    ("caption-detail", "GET"): (401, 403, 404, 200),
    ("caption-retry", "POST"): (401, 403, 404, 400),
    ("caption-stop", "POST"): (401, 403, 404, 400),
    ("chain-list", "GET"): (401, 403, 404, 200),
    ("chain-list", "POST"): (401, 403, 404, 201),
    ("chain-detail", "GET"): (401, 403, 404, 200),
    ("chain-detail", "DELETE"): (401, 403, 404, 204),
    ("chain-detail", "PUT"): (401, 403, 404, 200),
    ("chain-rule-list", "GET"): (401, 403, 404, 200),
    ("chain-rule-list", "POST"): (401, 403, 404, 201),
    ("chain-rule-detail", "GET"): (401, 403, 404, 200),
    ("chain-rule-detail", "DELETE"): (401, 403, 404, 204),
    ("export-list", "GET"): (401, 403, 404, 200),
    ("export-list", "POST"): (401, 403, 404, 201),
    ("export-detail", "GET"): (401, 403, 404, 200),
    ("export-cancel", "POST"): (401, 403, 404, 400),
    ("export-download", "GET"): (401, 403, 404, 200),
    ("metrics", "GET"): (401, 403, 404, 200),
    ("dashboard-plot", "GET"): (401, 403, 404, 200),
    ("dashboard-plot-csv", "GET"): (401, 403, 404, 200),
    # The world's project has used one route: "pick at least two routes" is the admin's 400.
    ("comparison-csv", "GET"): (401, 403, 404, 400),
    ("comparison-images", "GET"): (401, 403, 404, 400),
    ("comparison-images-csv", "GET"): (401, 403, 404, 400),
    ("pairwise-next", "POST"): (401, 200, 404, 204),
    ("pairwise-lease-judge", "POST"): (401, 201, 404, 404),
    ("pairwise-lease-pass", "POST"): (401, 200, 404, 404),
    ("pairwise-pairs", "POST"): (401, 403, 404, 200),
    ("pairwise-results", "GET"): (401, 403, 404, 200),
    ("review-policy", "GET"): (401, 403, 404, 200),
    ("review-policy", "PUT"): (401, 403, 404, 200),
    ("risk-correction", "POST"): (401, 403, 404, 201),
    ("token-list", "GET"): (401, 200, 200, 200),
    ("token-list", "POST"): (401, 201, 201, 201),
    ("token-revoke", "POST"): (401, 200, 404, 200),
    ("webhook-list", "GET"): (401, 403, 404, 200),
    ("webhook-list", "POST"): (401, 403, 404, 201),
    ("webhook-detail", "GET"): (401, 403, 404, 200),
    ("webhook-detail", "PATCH"): (401, 403, 404, 200),
    ("webhook-detail", "DELETE"): (401, 403, 404, 204),
    ("webhook-deliveries", "GET"): (401, 403, 404, 200),
    ("webhook-test", "POST"): (401, 403, 404, 202),
    ("review-item-list", "GET"): (401, 200, 404, 200),
    ("review-item-detail", "GET"): (401, 200, 404, 200),
    ("review-item-verdicts", "GET"): (401, 403, 404, 200),
    ("review-item-adjudicate", "POST"): (401, 403, 404, 400),
    ("claim-next", "POST"): (401, 200, 404, 204),
    ("lease-verdict", "POST"): (401, 201, 404, 404),
    ("lease-heartbeat", "POST"): (401, 200, 404, 404),
    ("lease-release", "POST"): (401, 200, 404, 200),
    ("verdict-undo", "POST"): (401, 200, 404, 404),
    ("project-leases", "GET"): (401, 403, 404, 200),
    # The site admin is not a member of the project: "pick a member" is the admin's 400.
    ("lease-reassign", "POST"): (401, 403, 404, 400),
    ("my-verdicts", "GET"): (401, 200, 404, 200),
    ("queue-counts", "GET"): (401, 200, 404, 200),
    ("bulk-risk-correction", "POST"): (401, 403, 404, 201),
}


def _kwargs(name: str, world) -> dict:
    """URL arguments naming the world's objects (all in the annotator's project)."""
    by_prefix = {
        "project": {"slug": world.project.slug},
        "member-list": {"slug": world.project.slug},
        "account-list": {"slug": world.project.slug},
        "my-verdicts": {"slug": world.project.slug},
        "queue-counts": {"slug": world.project.slug},
        "bulk-risk-correction": {"slug": world.project.slug},
        "member-detail": {"slug": world.project.slug, "user_id": None},
        "invitation-list": {"slug": world.project.slug},
        "invitation": {"pk": world.invitation.pk},
        "guidelines": {"slug": world.project.slug},
        "pairwise-lease": {"pk": world.pairwise_lease.pk},
        "pairwise": {"slug": world.project.slug},
        "dashboard-plot": {"slug": world.project.slug, "plot": "rate"},
        "comparison": {"slug": world.project.slug},
        "chain-rule-list": {"slug": world.project.slug},
        "chain-rule": {"pk": world.rule.pk},
        "token": {"pk": world.api_token.pk},
        "webhook-list": {"slug": world.project.slug},
        "webhook": {"pk": world.webhook.pk},
        "image-list": {"slug": world.project.slug},
        "image-search": {"slug": world.project.slug},
        "image-detail": {"pk": world.image.pk},
        "image-file": {"pk": world.image.pk},
        "batch-list": {"slug": world.project.slug},
        "batch-open": {"slug": world.project.slug},
        "batch": {"pk": world.batch.pk},
        "route": {"pk": world.route.pk},
        "route-test-detail": {"pk": world.route_test.pk},
        "run-list": {"slug": world.project.slug},
        "run-estimate": {"slug": world.project.slug},
        "run": {"pk": world.run.pk},
        "caption": {"pk": world.caption.pk},
        "review-item-list": {"slug": world.project.slug},
        "export-list": {"slug": world.project.slug},
        "chain-list": {"slug": world.project.slug},
        "chain": {"pk": world.chain.pk},
        "export": {"pk": world.export.pk},
        "metrics": {"slug": world.project.slug},
        "review-policy": {"slug": world.project.slug},
        "risk-correction": {"pk": world.image.pk},
        "review-item": {"pk": world.item.pk},
        "claim-next": {"slug": world.project.slug},
        "lease": {"pk": world.lease.pk},
        "verdict": {"pk": world.verdict.pk},
    }
    if name in ("schema", "docs", "project-list", "route-list", "token-list"):
        return {}
    for prefix in sorted(by_prefix, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "-") or name.startswith(prefix):
            kwargs = dict(by_prefix[prefix])
            if "user_id" in kwargs:
                kwargs["user_id"] = world.lease.reviewer_id
            if name == "project-detail":
                return {"slug": world.project.slug}
            return kwargs
    raise AssertionError(f"no URL arguments for {name}")


def _body(name: str, method: str, world, users) -> dict:
    bodies = {
        ("image-search", "GET"): {"q": "harbour"},
        ("export-list", "POST"): {"format": "jsonl", "provenance": True},
        ("risk-correction", "POST"): {"category": "chart", "flagged": True},
        ("review-policy", "PUT"): {
            "approvals_required": 1,
            "risky_approvals_required": 2,
            "risky_categories": ["chart", "medical"],
            "risky_first": True,
            "show_model_name": False,
            "risk_thresholds": {"chart": 0.6},
            "risk_ask_model": False,
            "risk_ask_scope": "borderline",
            "annotators_see_metrics": True,
        },
        ("batch-list", "POST"): {"urls": "https://images.example.org/a.jpg"},
        ("chain-list", "POST"): {"name": "careful", "routes": [world.route.pk]},
        ("chain-detail", "PUT"): {"name": "default", "routes": [world.route.pk], "deadline_s": 60},
        ("chain-rule-list", "POST"): {"chain": world.chain.pk, "category": "medical"},
        ("token-list", "POST"): {"name": "CI export"},
        ("webhook-list", "POST"): {
            "url": "https://93.184.216.34/captiondesk",
            "events": ["run.finished", "export.ready"],
        },
        ("webhook-detail", "PATCH"): {"active": False},
        ("project-list", "POST"): {"name": "Product shots"},
        ("invitation-list", "POST"): {"email": "nina@example.org", "role": "annotator"},
        ("guidelines", "PUT"): {"markdown": "# Captions\n\nName what is **shown**."},
        ("pairwise-lease-judge", "POST"): {
            "side": "left",
            "idempotency_key": "6f1c2a8e-3b7d-4c55-9e21-0a4b8c6d2f10",
        },
        ("member-list", "POST"): {
            "username": users["other_annotator"].username,
            "role": "annotator",
        },
        ("route-detail", "PATCH"): {"enabled": False},
        ("member-detail", "PATCH"): {"role": "annotator"},
        ("lease-reassign", "POST"): {"reviewer": users["admin"].pk},
        ("bulk-risk-correction", "POST"): {
            "images": [world.image.pk],
            "category": "chart",
            "flagged": True,
        },
        ("account-list", "POST"): {"username": "nina", "email": "nina@example.org"},
        ("route-test-list", "POST"): {"sample": "coffee.jpg"},
        ("run-estimate", "POST"): {"kind": "comparison", "routes": [world.route.pk]},
        ("run-budget", "PUT"): {"budget_usd": "5.00"},
        ("review-item-adjudicate", "POST"): {"decision": "approve", "text": "A harbour."},
        ("lease-verdict", "POST"): {
            "decision": "edit",
            "text": "A red bicycle leaning on a brick wall.",
            "idempotency_key": "1b4e28ba-2fa1-4d3b-883f-0016d3cca427",
        },
    }
    return bodies.get((name, method), {})


def api_endpoints() -> list[tuple[str, str]]:
    """(name, method) of every view under /api/, from the URL resolver itself."""
    resolver = get_resolver()
    api = next(
        p for p in resolver.url_patterns if isinstance(p, URLResolver) and p.namespace == "api"
    )
    found = []
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        view_class = pattern.callback.cls
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                found.append((pattern.name, method.upper()))
    return found


def test_every_api_endpoint_is_in_the_permission_table():
    """A new endpoint (or method) without a row here fails, so none ships unchecked."""
    missing = sorted(set(api_endpoints()) - set(EXPECTED))
    assert not missing, f"endpoints missing from the permission table: {missing}"
    stale = sorted(set(EXPECTED) - set(api_endpoints()))
    assert not stale, f"table rows for endpoints that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method"), sorted(EXPECTED))
def test_role_gets_expected_status(
    name, method, role, world, admin, annotator, other_annotator, client_for
):
    users = {
        "anonymous": None,
        "annotator": annotator,
        "other_annotator": other_annotator,
        "admin": admin,
    }
    client = client_for(users[role])
    url = reverse(f"api:{name}", kwargs=_kwargs(name, world))
    # The upload endpoint takes files (multipart); everything else JSON.
    fmt = "multipart" if (name, method) == ("image-list", "POST") else "json"
    response = getattr(client, method.lower())(url, _body(name, method, world, users), format=fmt)
    expected = EXPECTED[(name, method)][ROLES.index(role)]
    assert response.status_code == expected, (
        f"{role} {method} {url}: {response.status_code} {getattr(response, 'data', '')}"
    )
    if expected == 404 and role == "other_annotator":
        # Nothing in a 404 tells an outsider what exists.
        assert "Only" not in str(getattr(response, "data", ""))
