"""The routing pages as an admin, an annotator and an outsider use them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from labeling.models import Membership
from review.models import RiskFlag
from routing.fakes import Reply
from routing.models import Caption, CaptionRun, Chain, ChainRule, ModelCall, Route
from routing.selectors import routes_usable
from routing.services.execute import caption_execute
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route, make_chain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def pam_client(client, project_admin):
    client.force_login(project_admin)
    return client


def run_url(name, project):
    return reverse(f"routing:{name}", args=[project.slug])


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run-list", "run-create", "chain-list", "chain-create"])
def test_annotators_may_not_manage_and_outsiders_do_not_see_the_project(
    client, project, annotator, outsider, name
):
    client.force_login(annotator)
    assert client.get(run_url(name, project)).status_code == 403
    if name.endswith("create"):
        assert client.post(run_url(name, project), {}).status_code == 403
    client.force_login(outsider)
    assert client.get(run_url(name, project)).status_code == 404


def test_login_is_required(client, project):
    response = client.get(run_url("run-list", project))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_run_controls_are_closed_to_annotators(client, project, annotator, fake_edenai):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    run.routes.add(route)
    client.force_login(annotator)
    for action in ["pause", "cancel", "resume", "retry-failed", "budget"]:
        url = reverse("routing:run-action", args=[run.pk, action])
        assert client.post(url).status_code == 403
    assert client.get(reverse("routing:run-detail", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.RUNNING


def test_run_actions_need_post(pam_client, project):
    run = CaptionRun.objects.create(project=project, kind="comparison")
    assert pam_client.get(reverse("routing:run-action", args=[run.pk, "cancel"])).status_code == (
        405
    )


def test_csrf_is_enforced(project, project_admin):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(project_admin)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    response = client.post(reverse("routing:run-action", args=[run.pk, "cancel"]))
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.RUNNING


def test_routes_are_shared_so_only_site_admins_change_them(
    client, admin, project_admin, annotator, fake_edenai
):
    """A project's admin used to disable another project's route, set its price to $99 and reset
    any breaker. Now they see the routes (to build chains) and change none of them."""
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.0031"))
    client.force_login(annotator)
    assert client.get(reverse("routing:route-list")).status_code == 403
    client.force_login(project_admin)
    page = client.get(reverse("routing:route-list"))
    assert page.status_code == 200 and route.name.encode() in page.content
    assert reverse("routing:route-edit", args=[route.pk]).encode() not in page.content
    assert client.get(reverse("routing:route-create")).status_code == 403
    edit = {"name": route.name, "provider": "edenai", "model": "x", "usd_per_call": "99"}
    assert client.post(reverse("routing:route-edit", args=[route.pk]), edit).status_code == 403
    reset = reverse("routing:route-breaker-reset", args=[route.pk])
    assert client.post(reset).status_code == 403
    route.refresh_from_db()
    assert route.enabled and route.usd_per_call == Decimal("0.0031") and route.model != "x"
    client.force_login(admin)
    page = client.get(reverse("routing:route-create"))
    assert b'name="base_url"' in page.content
    response = client.post(
        reverse("routing:route-create"),
        {
            "name": "gemini-flash",
            "provider": "edenai",
            "model": "google/gemini-2.5-flash",
            "params": '{"max_new_tokens": 60}',
            "config": "",
            "timeout_s": "30",
            "max_attempts": "2",
            "enabled": "on",
            "usd_per_call": "0.0004",
            "expected_seconds": "3",
        },
    )
    assert response.status_code == 302
    route = Route.objects.get(name="gemini-flash")
    assert route.params == {"max_new_tokens": 60} and route.usd_per_call == Decimal("0.0004")


def test_an_edit_that_omits_fields_keeps_their_stored_values(client, admin, fake_edenai):
    route = edenai_route(
        fake_edenai,
        usd_per_call=Decimal("0.0031"),
        usd_per_1k_input_tokens=Decimal("0.0025"),
        params={"max_new_tokens": 40},
    )
    client.force_login(admin)

    response = client.post(
        reverse("routing:route-edit", args=[route.pk]),
        {"name": route.name, "provider": "edenai", "model": route.model, "timeout_s": "9",
         "enabled": "on"},
    )  # fmt: skip

    assert response.status_code == 302
    route.refresh_from_db()
    assert route.timeout_s == 9
    assert route.usd_per_call == Decimal("0.0031")
    assert route.usd_per_1k_input_tokens == Decimal("0.0025")
    assert route.params == {"max_new_tokens": 40}


# --- chains and rules -----------------------------------------------------------------------


def test_admin_builds_a_chain_with_ordered_fallbacks(pam_client, project, fake_edenai):
    a, b, c = (edenai_route(fake_edenai, name=n) for n in ("alpha", "beta", "gamma"))
    response = pam_client.post(
        run_url("chain-create", project),
        {
            "name": "main",
            "deadline_s": "90",
            "is_default": "on",
            "primary": c.pk,
            "fallback_1": a.pk,
            "fallback_2": b.pk,
        },
    )
    assert response.status_code == 302
    chain = Chain.objects.get(project=project, name="main")
    assert chain.is_default and chain.deadline_s == 90
    assert [s.route.name for s in chain.steps.order_by("position")] == ["gamma", "alpha", "beta"]

    edit = reverse("routing:chain-edit", args=[project.slug, chain.pk])
    pam_client.post(edit, {"name": "main", "deadline_s": "60", "primary": b.pk})
    assert [s.route.name for s in chain.steps.order_by("position")] == ["beta"]

    duplicate = pam_client.post(
        run_url("chain-create", project),
        {"name": "dup", "deadline_s": "60", "primary": a.pk, "fallback_1": a.pk},
    )
    assert b"only once" in duplicate.content


def test_admin_adds_a_rule_for_risky_images(pam_client, project, fake_edenai):
    chain = make_chain(project, [edenai_route(fake_edenai)], name="careful", is_default=False)
    pam_client.post(
        reverse("routing:rule-add", args=[project.slug]),
        {"category": "chart", "min_score": "0.7", "chain": chain.pk},
    )
    rule = ChainRule.objects.get(project=project)
    assert (rule.category, rule.min_score, rule.chain) == ("chart", 0.7, chain)
    page = pam_client.get(run_url("chain-list", project))
    assert b"Chart with score" in page.content


# --- runs: estimate, launch, progress, control ----------------------------------------------


def test_estimate_then_launch_a_chain_run(
    pam_client, project, fake_edenai, broker, django_capture_on_commit_callbacks
):
    route = edenai_route(fake_edenai, name="cheap", usd_per_call=Decimal("0.002"))
    chain = make_chain(project, [route])
    ImageFactory.create_batch(5, project=project)
    form = {
        "kind": "chain",
        "chain": chain.pk,
        "selection": "all",
        "prompt": "Describe.",
        "params": "",
        "budget_usd": "1.00",
        "use_cache": "on",
        "apply_rules": "on",
    }

    estimate = pam_client.post(run_url("run-create", project), {**form, "action": "estimate"})
    assert estimate.status_code == 200
    plan = estimate.context["plan"]
    assert plan.new_requests == 5 and plan.total == Decimal("0.01")
    assert b"Estimated cost: $0.0100" in estimate.content
    assert b'value="launch"' in estimate.content
    assert not CaptionRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        launched = pam_client.post(run_url("run-create", project), {**form, "action": "launch"})
    run = CaptionRun.objects.get()
    assert launched.status_code == 302 and launched["Location"] == reverse(
        "routing:run-detail", args=[run.pk]
    )
    assert (run.caption_count, run.budget_usd, run.estimated_usd) == (
        5,
        Decimal("1.00"),
        Decimal("0.01"),
    )
    assert run.captions.filter(status="pending", chain=chain).count() == 5
    assert len(broker.messages("api")) == 5


def test_comparison_sample_of_images(
    pam_client, project, fake_edenai, broker, django_capture_on_commit_callbacks
):
    routes = [edenai_route(fake_edenai, name=n) for n in ("left", "right")]
    ImageFactory.create_batch(10, project=project)
    form = {
        "kind": "comparison",
        "routes": [r.pk for r in routes],
        "selection": "sample",
        "sample_size": "4",
        "seed": "7",
        "prompt": "Describe.",
        "action": "launch",
    }

    with django_capture_on_commit_callbacks(execute=True):
        pam_client.post(run_url("run-create", project), form)

    run = CaptionRun.objects.get()
    captions = run.captions.all()
    assert captions.count() == 8
    images = {c.image_id for c in captions}
    assert len(images) == 4
    for image_id in images:
        assert {c.target_route.name for c in captions if c.image_id == image_id} == {
            "left",
            "right",
        }
    assert {(m[0], tuple(m[1])) for m in broker.messages("api")} == {
        ("routing.tasks.caption_image", ("caption_id",))
    }
    assert len(broker.messages("api")) == 8


def test_relaunching_skips_requests_that_already_have_a_caption(pam_client, project, fake_edenai):
    route = edenai_route(fake_edenai, name="one")
    ImageFactory.create_batch(3, project=project)
    form = {
        "kind": "comparison",
        "routes": [route.pk],
        "selection": "all",
        "prompt": "Describe.",
        "action": "launch",
    }
    pam_client.post(run_url("run-create", project), form)
    pam_client.post(run_url("run-create", project), form)
    second = CaptionRun.objects.order_by("-id").first()
    assert (second.caption_count, second.skipped, second.status) == (0, 3, "finished")
    assert Caption.objects.count() == 3


def test_risky_images_go_to_the_rules_chain(pam_client, project, fake_edenai):
    cheap = make_chain(project, [edenai_route(fake_edenai, name="cheap")], name="cheap")
    careful = make_chain(
        project, [edenai_route(fake_edenai, name="careful")], name="careful", is_default=False
    )
    ChainRule.objects.create(project=project, category="chart", min_score=0.5, chain=careful)
    plain, chart = ImageFactory(project=project), ImageFactory(project=project)
    RiskFlag.objects.create(
        image=chart, category="chart", score=0.9, flagged=True, analyser_version="t"
    )
    pam_client.post(
        run_url("run-create", project),
        {
            "kind": "chain",
            "chain": cheap.pk,
            "apply_rules": "on",
            "selection": "all",
            "prompt": "Describe.",
            "action": "launch",
        },
    )
    assert Caption.objects.get(image=plain).chain == cheap
    assert Caption.objects.get(image=chart).chain == careful


def test_run_page_polls_progress_until_the_run_is_over(pam_client, project, fake_edenai):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    images = ImageFactory.create_batch(2, project=project)
    for image in images:
        Caption.objects.create(image=image, target_route=route, run=run, prompt="x")
    page = pam_client.get(reverse("routing:run-detail", args=[run.pk]))
    assert b'hx-trigger="every 2s"' in page.content and b"0 / 2 settled" in page.content

    for caption in run.captions.all():
        caption_execute(caption_id=caption.pk, where="inline")

    partial = pam_client.get(reverse("routing:run-progress", args=[run.pk]))
    assert b"2 / 2 settled" in partial.content
    assert b"hx-trigger" not in partial.content  # finished: polling stops
    assert b"<html" not in partial.content
    assert b"$0.0008" in partial.content  # 2 x 0.00042 spent


def test_a_run_without_captions_says_so_instead_of_a_full_progress_bar(pam_client, project):
    run = CaptionRun.objects.create(project=project, kind="comparison")

    page = pam_client.get(reverse("routing:run-detail", args=[run.pk])).content.decode()

    assert "No captions yet." in page
    assert "settled" not in page and "100%" not in page
    assert 'role="progressbar"' not in page

    CaptionRun.objects.filter(pk=run.pk).update(status=CaptionRun.Status.FINISHED, skipped=3)
    partial = pam_client.get(reverse("routing:run-progress", args=[run.pk])).content.decode()
    assert "This run has no captions (3 asked for were already there)." in partial
    assert "No captions yet." not in partial and "100%" not in partial


def test_pause_resume_cancel_from_the_run_page(
    pam_client, project, fake_edenai, broker, django_capture_on_commit_callbacks
):
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    captions = [
        Caption.objects.create(
            image=ImageFactory(project=project), target_route=route, run=run, prompt="x"
        )
        for _ in range(3)
    ]

    def action(name, **data):
        return pam_client.post(reverse("routing:run-action", args=[run.pk, name]), data)

    action("pause")
    run.refresh_from_db()
    assert run.status == "paused"
    assert caption_execute(caption_id=captions[0].pk) == "paused"
    assert fake_edenai.requests == [] and run.captions.filter(status="pending").count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        action("resume")
    run.refresh_from_db()
    assert run.status == "running"
    assert sorted(m[1]["caption_id"] for m in broker.messages("api")) == [c.pk for c in captions]
    assert caption_execute(caption_id=captions[0].pk) == "succeeded"

    assert b"Cancel run" in action("cancel").content  # asks first
    run.refresh_from_db()
    assert run.status == "running"
    action("cancel", confirm="1")
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert list(run.captions.order_by("id").values_list("status", flat=True)) == [
        "succeeded",
        "cancelled",
        "cancelled",
    ]
    assert caption_execute(caption_id=captions[1].pk) == "skipped"
    assert len(fake_edenai.requests) == 1


def test_failed_caption_keeps_its_error_and_is_retried_from_the_ui(
    pam_client, project, fake_edenai, broker, django_capture_on_commit_callbacks
):
    fake_edenai.script(["401"])
    route = edenai_route(fake_edenai, name="keyless")
    run = CaptionRun.objects.create(project=project, kind="comparison")
    caption = Caption.objects.create(
        image=ImageFactory(project=project), target_route=route, run=run, prompt="x"
    )
    assert caption_execute(caption_id=caption.pk) == "failed"
    caption.refresh_from_db()
    assert caption.error.startswith("keyless: auth_error")

    listing = pam_client.get(reverse("routing:run-captions", args=[run.pk]) + "?status=failed")
    assert b"keyless: auth_error" in listing.content
    detail = pam_client.get(reverse("routing:caption-detail", args=[caption.pk]))
    assert b"auth_error" in detail.content and b"401" in detail.content

    with django_capture_on_commit_callbacks(execute=True):
        pam_client.post(reverse("routing:caption-retry", args=[caption.pk]))
    caption.refresh_from_db()
    run.refresh_from_db()
    assert caption.status == "pending" and run.status == "running"
    assert broker.messages("api") == [("routing.tasks.caption_image", {"caption_id": caption.pk})]
    assert caption_execute(caption_id=caption.pk) == "succeeded"
    assert ModelCall.objects.filter(caption=caption).count() == 2  # the log keeps both attempts


def test_vendor_text_is_escaped_everywhere(pam_client, project, fake_edenai):
    evil = '<script>alert("x")</script>'
    fake_edenai.script([Reply.success(evil)])
    route = edenai_route(fake_edenai)
    run = CaptionRun.objects.create(project=project, kind="comparison")
    image = ImageFactory(project=project, original_name="<img src=x onerror=alert(1)>.png")
    caption = Caption.objects.create(image=image, target_route=route, run=run, prompt="x")
    caption_execute(caption_id=caption.pk)
    failed = Caption.objects.create(
        image=ImageFactory(project=project),
        target_route=route,
        run=run,
        prompt="y",
        status="failed",
        error=evil,
    )

    for url in [
        reverse("routing:run-captions", args=[run.pk]),
        reverse("routing:caption-detail", args=[caption.pk]),
        reverse("routing:caption-detail", args=[failed.pk]),
    ]:
        content = pam_client.get(url).content
        assert b"<script>alert" not in content and b"<img src=x" not in content
        assert b"&lt;script&gt;" in content or b"&lt;img" in content


# --- route status partial -------------------------------------------------------------------


def test_route_status_says_what_is_usable_and_what_to_configure(settings, fake_edenai):
    settings.EDENAI_API_KEY = ""
    settings.REPLICATE_API_TOKEN = ""
    Route.objects.create(name="edenai-gpt-4o", provider="edenai", model="openai/gpt-4o")
    edenai_route(fake_edenai, name="local-fake")
    overview = routes_usable()
    by_name = {s.route.name: s for s in overview.routes}
    assert not by_name["edenai-gpt-4o"].usable
    assert "EDENAI_API_KEY" in by_name["edenai-gpt-4o"].detail
    assert by_name["local-fake"].usable
    assert any("REPLICATE_API_TOKEN" in hint for hint in overview.hints)

    from django.template.loader import render_to_string

    html = render_to_string("routing/_route_status.html", {"route_status": overview})
    assert "not usable" in html and "Set EDENAI_API_KEY" in html and "1 usable" in html


def test_routes_ensure_defaults_creates_what_the_environment_allows(settings):
    from routing.services import routes_ensure_defaults

    settings.EDENAI_API_KEY = ""
    settings.REPLICATE_API_TOKEN = "r8_test"
    created = {r.name for r in routes_ensure_defaults()}
    assert "replicate-blip2" in created and "edenai-gpt-4o" not in created
    settings.EDENAI_API_KEY = "key"
    assert {r.name for r in routes_ensure_defaults()} == {"edenai-gpt-4o"}
    assert routes_ensure_defaults() == []  # idempotent, never edits existing routes
    replicate = Route.objects.get(name="replicate-blip2")
    assert replicate.config["version"].startswith("f677695e")
    assert replicate.usd_per_second is not None
