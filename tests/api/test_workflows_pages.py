"""What the remaining pages do, from a script: invitations and guidelines, blind pairwise
review, dashboard and side-by-side data, chain rules, breaker reset, tokens and webhooks. Each
write goes through the same service as its page."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.core import mail
from django.urls import reverse

from labeling.models import Invitation, Membership
from labeling.services.team import invitation_find


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


# --- invitations and guidelines -------------------------------------------------------------


def test_an_admin_invites_by_email_sees_the_link_once_and_revokes_it(
    project, project_admin, client_for
):
    api = client_for(project_admin)
    url = reverse("api:invitation-list", args=[project.slug])
    created = api.post(url, {"email": "Bea@Example.com", "role": "annotator"}, format="json")
    assert created.status_code == 201, created.data
    link = created.data["link"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert link.startswith("http://testserver/invitations/")
    assert created.data["state"] == "open" and created.data["email_status"] == "sent"
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body
    # Stored hashed; the link itself works (as the page's does).
    invitation = Invitation.objects.get(pk=created.data["id"])
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(invitation.__dict__)
    assert invitation_find(token=token) == invitation

    listed = api.get(url)
    assert [i["id"] for i in listed.data["results"]] == [invitation.pk]
    assert "link" not in listed.data["results"][0]
    assert api.get(url, {"state": "revoked"}).data["results"] == []
    assert api.get(url, {"email": "bea@example.com"}).status_code == 400  # not an allowed filter

    revoked = api.post(reverse("api:invitation-revoke", args=[invitation.pk]))
    assert revoked.status_code == 200 and revoked.data["state"] == "revoked"
    assert invitation_find(token=token) is None
    again = api.post(reverse("api:invitation-revoke", args=[invitation.pk]))
    assert again.status_code == 400 and "already used or revoked" in str(again.data)
    assert [i["id"] for i in api.get(url, {"state": "revoked"}).data["results"]] == [invitation.pk]


def test_an_invitation_the_team_page_would_refuse_is_refused(project, project_admin, client_for):
    api = client_for(project_admin)
    url = reverse("api:invitation-list", args=[project.slug])
    for body in ({"email": "not-an-address"}, {"email": "a@example.org", "role": "owner"}):
        assert api.post(url, body, format="json").status_code == 400
    assert not Invitation.objects.exists()


def test_guidelines_are_written_by_admins_and_read_sanitised_by_annotators(
    project, project_admin, annotator, client_for
):
    url = reverse("api:guidelines", args=[project.slug])
    text = (
        "# Captions\n\nName what is **shown**. <script>alert(1)</script> [x](javascript:alert(2))"
    )
    saved = client_for(project_admin).put(url, {"markdown": text}, format="json")
    assert saved.status_code == 200, saved.data
    project.refresh_from_db()
    assert project.guidelines == text

    read = client_for(annotator).get(url).data
    assert read["markdown"] == text
    assert "<h1>Captions</h1>" in read["html"] and "<strong>shown</strong>" in read["html"]
    assert "<script>" not in read["html"] and "&lt;script&gt;" in read["html"]
    assert "href" not in read["html"]  # the javascript: link stays text

    refused = client_for(annotator).put(url, {"markdown": "Anything goes."}, format="json")
    assert refused.status_code == 403
    too_long = client_for(project_admin).put(url, {"markdown": "x" * 20_001}, format="json")
    assert too_long.status_code == 400
    project.refresh_from_db()
    assert project.guidelines == text


# --- blind pairwise review ------------------------------------------------------------------


def test_pairs_are_made_judged_blind_once_and_counted_in_the_results(
    project, project_admin, annotator, client_for
):
    from review.models import PairwiseJudgement
    from routing.models import CaptionRun
    from tests.factories import CaptionFactory, ImageFactory, RouteFactory

    fast, careful = RouteFactory(name="fast"), RouteFactory(name="careful")
    run = CaptionRun.objects.create(project=project, kind=CaptionRun.Kind.COMPARISON)
    for n in range(3):
        image = ImageFactory(project=project)
        CaptionFactory(image=image, run=run, route=fast, text=f"fast {n}")
        CaptionFactory(image=image, run=run, route=careful, text=f"careful {n}")
    admin_api, api = client_for(project_admin), client_for(annotator)
    pairs_url = reverse("api:pairwise-pairs", args=[project.slug])
    assert api.post(pairs_url, {"run": run.pk}, format="json").status_code == 403
    assert admin_api.post(pairs_url, {"run": 10**9}, format="json").status_code == 400
    assert admin_api.post(pairs_url, {"run": run.pk}, format="json").data == {"created": 3}
    assert admin_api.post(pairs_url, {}, format="json").data == {"created": 0}  # kept

    next_url = reverse("api:pairwise-next", args=[project.slug])
    judged = []
    while (claimed := api.post(next_url)).status_code == 200:
        pair = claimed.data
        assert "fast" not in str(pair.keys()) and "route" not in str(pair)  # blind
        # "careful" is always the better one, wherever it is shown.
        side = "left" if pair["left_text"].startswith("careful") else "right"
        body = {"side": side, "idempotency_key": str(uuid.uuid4()), "time_spent_ms": 900}
        url = reverse("api:pairwise-lease-judge", args=[pair["id"]])
        first = api.post(url, body, format="json")
        again = api.post(url, body, format="json")  # a retry after a dropped answer
        assert (first.status_code, again.status_code) == (201, 200), first.data
        assert first.data["id"] == again.data["id"]
        judged.append(first.data["id"])
    assert claimed.status_code == 204 and len(judged) == 3
    assert PairwiseJudgement.objects.filter(project=project).count() == 3

    results_url = reverse("api:pairwise-results", args=[project.slug])
    assert api.get(results_url).status_code == 403  # metrics are for admins by default
    results = admin_api.get(results_url, {"run": run.pk}).data
    assert results["routes"] == ["careful", "fast"]
    assert (results["judged"], results["open"]) == (3, 0)
    assert results["matrix"][0][1] == {"rate": 1.0, "n": 3, "both_bad": 0}
    assert results["matrix"][1][0]["rate"] == 0.0 and results["matrix"][0][0] is None
    best = results["strengths"][0]
    assert best["name"] == "careful" and best["score"] > 0
    assert best["interval"]["low"] <= best["score"] <= best["interval"]["high"]
    assert admin_api.get(results_url, {"run": 10**9}).status_code == 400
    assert admin_api.get(results_url, {"route": "fast"}).status_code == 400


def test_a_pair_passed_goes_to_someone_else_and_a_stale_judgement_is_refused(
    project, project_admin, annotator, client_for
):
    from tests.factories import CaptionFactory, ImageFactory, RouteFactory

    image = ImageFactory(project=project)
    CaptionFactory(image=image, route=RouteFactory(name="one"), text="One.")
    CaptionFactory(image=image, route=RouteFactory(name="two"), text="Two.")
    client_for(project_admin).post(reverse("api:pairwise-pairs", args=[project.slug]))
    api, admin_api = client_for(annotator), client_for(project_admin)
    next_url = reverse("api:pairwise-next", args=[project.slug])
    lease = api.post(next_url).data
    assert api.post(next_url).data["id"] == lease["id"]  # the current pair, not a new one
    assert admin_api.post(next_url).status_code == 204  # held by the annotator
    passed = api.post(reverse("api:pairwise-lease-pass", args=[lease["id"]]))
    assert passed.data == {"passed": True}
    assert api.post(next_url).status_code == 204  # not shown to them again
    late = api.post(
        reverse("api:pairwise-lease-judge", args=[lease["id"]]),
        {"side": "tie", "idempotency_key": str(uuid.uuid4())},
        format="json",
    )
    assert late.status_code == 400 and "passed on this pair" in str(late.data)
    assert admin_api.post(next_url).status_code == 200


# --- dashboards and the side-by-side comparison ---------------------------------------------


def _csv(response) -> list[list[str]]:
    import csv
    import io

    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_script_reads_the_dashboards_and_the_side_by_side_rows_as_the_pages_show_them(
    project, admin, client_for
):
    from routing.models import Caption
    from tests.review.metrics_fixture import build

    fx = build(project, admin)
    Caption.objects.filter(pk=fx.captions[1, "a"].pk).update(text="=HYPERLINK(1)")
    api = client_for(admin)
    scope = {"run": fx.run.pk}

    plot = api.get(reverse("api:dashboard-plot", args=[project.slug, "cost"]), scope)
    assert plot.status_code == 200, plot.data
    assert plot.data["id"] == "cost" and plot.data["columns"][0]
    assert {row[0] for row in plot.data["rows"]} == {"hosted-a", "local-b"}
    rows = _csv(api.get(reverse("api:dashboard-plot-csv", args=[project.slug, "cost"]), scope))
    assert rows[0] == plot.data["columns"] and len(rows) == 1 + len(plot.data["rows"])
    assert api.get(reverse("api:dashboard-plot", args=[project.slug, "pie"])).status_code == 404

    table = _csv(api.get(reverse("api:comparison-csv", args=[project.slug]), scope))
    body = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert set(body) == {"hosted-a", "local-b"} and body["hosted-a"]["images"] == "3"

    url = reverse("api:comparison-images", args=[project.slug])
    first = api.get(url, {**scope, "page_size": 2})
    assert first.status_code == 200, first.data
    assert [r["image_id"] for r in first.data["results"]] == [i.pk for i in fx.images[:2]]
    second = api.get(first.data["next"])
    assert [r["image_id"] for r in second.data["results"]] == [fx.images[2].pk]
    assert second.data["next"] is None
    row = first.data["results"][0]
    assert set(row["captions"]) == {"hosted-a", "local-b"}
    assert row["captions"]["hosted-a"][0]["text"] == "=HYPERLINK(1)"  # JSON: text as written
    disputed = api.get(url, {**scope, "show": "disputed"}).data["results"]
    assert [r["image_id"] for r in disputed] == [fx.images[2].pk]
    assert api.get(url, {**scope, "cursor": "%%%"}).status_code == 400
    assert api.get(url, {**scope, "order": "id"}).status_code == 400  # not an allowed filter

    images = _csv(api.get(reverse("api:comparison-images-csv", args=[project.slug]), scope))
    assert images[0][:3] == ["image_id", "file_name", "hosted-a caption"]
    assert images[1][2] == "'=HYPERLINK(1)"  # a formula is defused, as on the page
    one_route = {**scope, "routes": fx.a.pk}
    refused = api.get(reverse("api:comparison-csv", args=[project.slug]), one_route)
    assert refused.status_code == 400 and "two routes" in str(refused.data)


def test_annotators_read_dashboards_only_where_the_policy_opens_them(project, admin, client_for):
    from review.models import ReviewPolicy
    from tests.review.metrics_fixture import build

    fx = build(project, admin)
    api = client_for(fx.reviewers[0])
    url = reverse("api:dashboard-plot", args=[project.slug, "throughput"])
    assert api.get(url).status_code == 403
    ReviewPolicy.objects.update_or_create(
        project=project, defaults={"annotators_see_metrics": True}
    )
    assert api.get(url).status_code == 200
    assert api.get(reverse("api:comparison-images", args=[project.slug])).status_code == 200


# --- chain rules ----------------------------------------------------------------------------


def test_an_admin_adds_lists_and_deletes_chain_rules_through_the_chains_page_rules(
    project, project_admin, annotator, client_for
):
    from routing.models import ChainRule
    from routing.services.chains import chain_save
    from tests.factories import ProjectFactory, RouteFactory

    route = RouteFactory(name="strong")
    careful = chain_save(project=project, name="careful", routes=[route])
    foreign = chain_save(project=ProjectFactory(slug="elsewhere"), name="theirs", routes=[route])
    api = client_for(project_admin)
    url = reverse("api:chain-rule-list", args=[project.slug])

    made = api.post(
        url, {"chain": careful.pk, "category": "chart", "min_score": 0.6}, format="json"
    )
    assert made.status_code == 201, made.data
    assert (made.data["chain"], made.data["category"], made.data["position"]) == (
        "careful",
        "chart",
        0,
    )
    anything = api.post(url, {"chain": careful.pk}, format="json").data
    assert (anything["category"], anything["position"]) == ("", 1)
    # Another project's chain is not a choice; a score outside 0..1 is refused.
    assert api.post(url, {"chain": foreign.pk}, format="json").status_code == 400
    bad = api.post(url, {"chain": careful.pk, "min_score": 1.5}, format="json")
    assert bad.status_code == 400 and "min_score" in bad.data
    assert ChainRule.objects.filter(project=project).count() == 2

    listed = api.get(url).data["results"]
    assert [r["id"] for r in listed] == [made.data["id"], anything["id"]]
    assert client_for(annotator).get(url).status_code == 403
    detail = reverse("api:chain-rule-detail", args=[made.data["id"]])
    assert api.get(detail).data["min_score"] == 0.6
    assert api.delete(detail).status_code == 204
    assert api.get(detail).status_code == 404
    assert list(ChainRule.objects.values_list("pk", flat=True)) == [anything["id"]]


# --- circuit breakers -----------------------------------------------------------------------


def test_only_site_admins_reset_a_routes_breaker(project_admin, admin, client_for):
    import time

    from django.utils import timezone

    from routing import policy
    from routing.models import ModelCall
    from routing.services.breaker import _key, breaker_state
    from routing.services.store import get_store
    from tests.factories import CaptionFactory, RouteFactory

    route = RouteFactory(name="flaky")
    opened = policy.BreakerState(status="open", consecutive_failures=5, opened_at=time.time())
    get_store().update(_key(route.pk), lambda raw: policy.breaker_dumps(opened), ttl_s=600)
    url = reverse("api:route-breaker-reset", args=[route.pk])
    # The route's data says what the routes page says: the breaker and the latest call.
    detail = reverse("api:route-detail", args=[route.pk])
    shown = client_for(project_admin).get(detail).data
    assert (shown["breaker"], shown["last_call"]) == ("open", None)
    ModelCall.objects.create(
        caption=CaptionFactory(route=route),
        route=route,
        attempt=1,
        trigger="first",
        status=ModelCall.Status.FAILED,
        started_at=timezone.now(),
        latency_ms=30000,
        error="<b>timeout</b>",
    )
    last = client_for(admin).get(detail).data["last_call"]
    assert (last["status"], last["latency_ms"], last["error"]) == (
        "failed",
        30000,
        "<b>timeout</b>",
    )

    refused = client_for(project_admin).post(url)
    assert refused.status_code == 403 and "site admins" in str(refused.data)
    assert breaker_state(route_id=route.pk).status == "open"

    reset = client_for(admin).post(url)
    assert reset.status_code == 200
    assert reset.data == {"route_id": route.pk, "status": "closed", "consecutive_failures": 0}
    assert breaker_state(route_id=route.pk).status == "closed"
    assert client_for(admin).get(detail).data["breaker"] == "closed"
    assert (
        client_for(admin).post(reverse("api:route-breaker-reset", args=[10**9])).status_code == 404
    )


# --- API tokens and webhooks ----------------------------------------------------------------


def test_a_user_creates_a_token_once_uses_it_and_revokes_it(annotator, admin, client_for):
    from rest_framework.test import APIClient

    from integrations.models import ApiToken

    api = client_for(annotator)
    created = api.post(reverse("api:token-list"), {"name": "training job"}, format="json")
    assert created.status_code == 201, created.data
    assert created["Cache-Control"] == "no-store"
    secret = created.data["secret"]
    token = ApiToken.objects.get(pk=created.data["id"])
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(token.__dict__)

    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert script.get(reverse("api:project-list")).status_code == 200
    listed = script.get(reverse("api:token-list"), {"active": "true"}).data["results"]
    assert created.data["id"] in [t["id"] for t in listed]
    assert all("secret" not in t for t in listed)
    assert {t["username"] for t in listed} == {"ann"}  # only one's own

    for_someone = api.post(
        reverse("api:token-list"), {"name": "x", "username": "ada-admin"}, format="json"
    )
    assert for_someone.status_code == 403
    assert api.post(reverse("api:token-list"), {"name": "  "}, format="json").status_code == 400

    revoke = reverse("api:token-revoke", args=[token.pk])
    assert client_for(admin).post(reverse("api:token-revoke", args=[10**9])).status_code == 404
    revoked = script.post(revoke)
    assert revoked.status_code == 200 and revoked.data["active"] is False
    assert script.get(reverse("api:project-list")).status_code == 401
    assert api.post(revoke).status_code == 400  # already revoked
    assert api.get(reverse("api:token-list"), {"active": "false"}).data["results"][0]["id"] == (
        token.pk
    )


def test_a_site_admin_creates_a_token_for_someone_else(annotator, admin, client_for):
    made = client_for(admin).post(
        reverse("api:token-list"), {"name": "pipeline", "username": "ann"}, format="json"
    )
    assert made.status_code == 201 and made.data["username"] == "ann"
    nobody = client_for(admin).post(
        reverse("api:token-list"), {"name": "x", "username": "nobody"}, format="json"
    )
    assert nobody.status_code == 400 and "No active user" in str(nobody.data)


def test_an_admin_manages_webhooks_and_sends_a_test(
    project, project_admin, annotator, client_for, django_capture_on_commit_callbacks
):
    from integrations.models import Webhook, WebhookDelivery

    api = client_for(project_admin)
    url = reverse("api:webhook-list", args=[project.slug])
    body = {"url": "https://93.184.216.34/captiondesk", "events": ["export.ready", "run.finished"]}
    created = api.post(url, body, format="json")
    assert created.status_code == 201, created.data
    assert created.data["secret"].startswith("whsec_")
    assert created.data["events"] == ["export.ready", "run.finished"]
    hook = created.data["id"]
    # The URL-import SSRF rules; a test event is not one to listen to.
    internal = api.post(url, {**body, "url": "http://127.0.0.1:8000/x"}, format="json")
    assert internal.status_code == 400 and "cannot receive webhooks" in str(internal.data)
    wrong = api.post(url, {**body, "events": ["webhook.test"]}, format="json")
    assert wrong.status_code == 400
    assert Webhook.objects.filter(project=project).count() == 1
    assert client_for(annotator).get(url).status_code == 403

    assert [h["id"] for h in api.get(url).data["results"]] == [hook]
    assert "secret" not in api.get(url).data["results"][0]
    detail = reverse("api:webhook-detail", args=[hook])
    assert api.get(detail).data["secret"] == created.data["secret"]
    off = api.patch(detail, {"active": False}, format="json")
    assert off.status_code == 200 and off.data["active"] is False
    assert Webhook.objects.get(pk=hook).active is False

    with django_capture_on_commit_callbacks(execute=False) as queued:
        sent = api.post(reverse("api:webhook-test", args=[hook]))
    assert sent.status_code == 202 and sent.data["event"] == "webhook.test"
    assert len(queued) == 1  # the delivery task is queued once the request commits
    log = api.get(reverse("api:webhook-deliveries", args=[hook]), {"status": "pending"}).data
    assert [d["id"] for d in log["results"]] == [sent.data["id"]]
    assert log["results"][0]["payload"]["data"]["sent_by"] == "pam"
    failed = api.get(reverse("api:webhook-deliveries", args=[hook]), {"status": "failed"})
    assert failed.data["results"] == []

    assert api.delete(detail).status_code == 204
    assert api.get(detail).status_code == 404
    assert not WebhookDelivery.objects.filter(webhook_id=hook).exists()
