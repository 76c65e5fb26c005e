"""A site admin manages the shared routes from one table: disable one (chains skip it), delete
one nobody used (after confirming), never one with history; the route form shows the prices the
provider uses, with units; the run form shows what the chosen kind of run needs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from routing.models import Caption, Route
from tests.factories import ImageFactory, RouteFactory
from tests.review.test_browser import chromium_page
from tests.routing.conftest import edenai_route, make_chain

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "routing"


@pytest.fixture
def admin_client(admin):
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.django_db
def test_the_routes_page_lists_each_route_once(admin_client, fake_edenai):
    route = edenai_route(fake_edenai, name="gpt-4o-main")
    page = admin_client.get(reverse("routing:route-list")).content.decode()
    assert page.count(">gpt-4o-main<") == 1
    assert reverse("routing:route-toggle", args=[route.pk]) in page


@pytest.mark.django_db
def test_a_disabled_route_is_skipped_and_can_be_enabled_again(admin_client, project, fake_edenai):
    route = edenai_route(fake_edenai)
    admin_client.post(reverse("routing:route-toggle", args=[route.pk]))
    route.refresh_from_db()
    assert not route.enabled
    admin_client.post(reverse("routing:route-toggle", args=[route.pk]))
    route.refresh_from_db()
    assert route.enabled


@pytest.mark.django_db
def test_only_an_unused_route_can_be_deleted_and_only_after_confirming(
    admin_client, project, fake_edenai
):
    unused = edenai_route(fake_edenai, name="never-used")
    in_chain = edenai_route(fake_edenai, name="in-a-chain")
    make_chain(project, [in_chain])
    with_history = edenai_route(fake_edenai, name="has-captions")
    Caption.objects.create(image=ImageFactory(project=project), target_route=with_history)

    url = reverse("routing:route-delete", args=[unused.pk])
    assert b"Delete route never-used?" in admin_client.post(url).content
    assert Route.objects.filter(pk=unused.pk).exists()
    admin_client.post(url, {"confirm": "1"})
    assert not Route.objects.filter(pk=unused.pk).exists()

    for route in (in_chain, with_history):
        response = admin_client.post(
            reverse("routing:route-delete", args=[route.pk]), {"confirm": "1"}, follow=True
        )
        assert Route.objects.filter(pk=route.pk).exists()
        assert b"cannot be deleted" in response.content and b"Disable it" in response.content


@pytest.mark.django_db
def test_a_project_admin_can_neither_toggle_nor_delete(client, project_admin_user, fake_edenai):
    route = edenai_route(fake_edenai)
    client.force_login(project_admin_user)
    for name in ("route-toggle", "route-delete"):
        assert (
            client.post(reverse(f"routing:{name}", args=[route.pk]), {"confirm": "1"}).status_code
            == 403
        )
    route.refresh_from_db()
    assert route.enabled


@pytest.fixture
def project_admin_user(django_user_model, project):
    from labeling.models import Membership

    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.mark.django_db
def test_run_captions_list_an_images_captions_together(admin_client, project, fake_edenai):
    from routing.models import CaptionRun

    a, b = edenai_route(fake_edenai, name="a"), edenai_route(fake_edenai, name="b")
    run = CaptionRun.objects.create(project=project, kind="comparison")
    images = [ImageFactory(project=project) for _ in range(2)]
    for route in (a, b):  # created route by route, as a run does
        for image in images:
            Caption.objects.create(image=image, target_route=route, run=run)
    page = admin_client.get(reverse("routing:run-captions", args=[run.pk])).content.decode()
    order = [page.index(f"/images/{image.pk}/thumb/small/") for image in images]
    rows = page.count("/thumb/small/")
    assert rows == 4 and order == sorted(order)
    first_image_rows = page[: page.index(f"/images/{images[1].pk}/thumb/small/")]
    assert first_image_rows.count(f"/images/{images[0].pk}/thumb/small/") == 2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_route_and_run_forms_show_what_the_choice_needs(live_server, admin, project):
    from routing.models import Chain

    RouteFactory(name="blip2", provider=Route.Provider.REPLICATE, usd_per_second=Decimal("0.001"))
    Chain.objects.create(project=project, name="main", is_default=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{live_server.url}/login/?next=/routing/routes/new/")
        page.fill("#id_username", "ada-admin")
        page.fill("#id_password", "admin-pass-123")
        page.keyboard.press("Enter")
        page.wait_for_selector("#route-form")
        page.select_option("#id_provider", "local")
        assert page.is_visible("#id_gpu_hour_usd")
        assert not page.is_visible("#id_usd_per_1k_input_tokens")
        page.select_option("#id_provider", "edenai")
        assert page.is_visible("#id_usd_per_1k_input_tokens")
        assert not page.is_visible("#id_gpu_hour_usd")
        page.screenshot(path=str(ARTIFACTS / "route-form.png"), full_page=True)

        page.goto(f"{live_server.url}/routing/routes/")
        page.screenshot(path=str(ARTIFACTS / "routes.png"), full_page=True)

        page.goto(f"{live_server.url}/routing/p/{project.slug}/runs/new/")
        page.check("input[name=kind][value=comparison]")
        assert page.is_visible("label:has-text('blip2')")
        assert not page.is_visible("#id_chain")
        page.check("input[name=kind][value=chain]")
        assert page.is_visible("#id_chain")
        assert not page.is_visible("label:has-text('blip2')")
        page.screenshot(path=str(ARTIFACTS / "run-form-chain.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}/routing/routes/")
        page.screenshot(path=str(ARTIFACTS / "routes-phone.png"), full_page=True)
