"""Testing a route from its page: one call on one image, made by a real worker of the route's
queue against the fake vendors, shown with its answer, latency and cost (or its error, escaped);
logged as a call of the route but never a caption, so no review queue or metric sees it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from labeling.models import Membership
from review.metrics import Scope, route_metrics
from review.models import ReviewItem
from routing.fakes import Reply
from routing.models import Caption, ModelCall, Route, RouteTest
from routing.services import route_tests
from routing.services.route_tests import RouteTestBusy, RouteTestImage, route_test_start
from tests.conftest import wait_until
from tests.factories import RouteFactory
from tests.routing.conftest import edenai_route

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "routing"


def _settled(test_id: int) -> RouteTest | None:
    test = RouteTest.objects.get(pk=test_id)
    return None if test.is_live else test


@pytest.mark.worker
@pytest.mark.slow
def test_a_site_admin_tests_an_edenai_route_on_a_real_worker(
    celery_worker_process, client, admin, project, annotator, fake_edenai
):
    celery_worker_process(queues="api", pool="threads", concurrency=2)
    fake_edenai.set_default(
        Reply.success("A cup of coffee on a saucer.", cost="0.0004", latency_ms=120)
    )
    route = edenai_route(fake_edenai, name="gpt-4o-fake")
    client.force_login(admin)

    page = client.get(reverse("routing:route-list"))
    assert reverse("routing:route-test", args=[route.pk]).encode() in page.content
    response = client.post(reverse("routing:route-test", args=[route.pk]), {"sample": "coffee.jpg"})
    assert response.status_code == 302
    test = RouteTest.objects.get()
    assert test.image_name == "coffee.jpg" and test.created_by == admin

    done = wait_until(lambda: _settled(test.pk), timeout=60)
    assert done.status == "succeeded"
    assert done.text == "A cup of coffee on a saucer."
    assert done.cost_usd == Decimal("0.0004")
    assert done.latency_ms is not None and done.latency_ms >= 100
    assert len(fake_edenai.requests) == 1  # one call: no retry, no cache

    [call] = ModelCall.objects.all()
    assert call.route_test_id == test.pk and call.caption_id is None and call.run_id is None
    assert call.status == "succeeded" and call.cost_usd == Decimal("0.0004")
    assert call.trigger == "route_test"

    result = client.get(reverse("routing:route-test-result", args=[test.pk]))
    assert b"A cup of coffee on a saucer." in result.content
    assert b"$0.000400" in result.content and b"hx-get" not in result.content
    # The routes page shows the test as the route's last call.
    assert b"Succeeded" in client.get(reverse("routing:route-list")).content

    # Not a caption: nothing to review, nothing measured, nothing in the project's pages.
    assert not Caption.objects.exists() and not ReviewItem.objects.exists()
    table = route_metrics(scope=Scope(project=project, route_ids=(route.pk,)))
    assert all(row.produced == 0 for row in table.rows)
    client.force_login(annotator)
    counts = client.get(reverse("review:work", args=[project.slug]))
    assert counts.status_code == 200 and b"A cup of coffee" not in counts.content


@pytest.mark.worker
@pytest.mark.slow
def test_a_failing_replicate_route_shows_its_error_escaped(
    celery_worker_process, client, admin, fake_replicate, make_image_bytes
):
    celery_worker_process(queues="api", pool="threads", concurrency=2)
    fake_replicate.set_default(Reply.error(422, message="<script>alert('x')</script> bad input"))
    route = RouteFactory(
        name="replicate-blip2",
        provider=Route.Provider.REPLICATE,
        model="andreasjansson/blip-2",
        base_url=fake_replicate.url,
        usd_per_second=Decimal("0.001"),
        config={"poll_interval_s": 0.05},
    )
    client.force_login(admin)
    upload = make_image_bytes("PNG", size=(64, 48))
    response = client.post(
        reverse("routing:route-test", args=[route.pk]),
        {"sample": "coffee.jpg", "image": SimpleUploadedFile("mine.png", upload, "image/png")},
    )
    assert response.status_code == 302
    test = RouteTest.objects.get()
    assert test.image_name == "mine.png" and test.image.name.endswith(".png")

    done = wait_until(lambda: _settled(test.pk), timeout=60)
    assert done.status == "failed"
    assert "bad input" in done.error and done.error_class
    assert len(fake_replicate.requests) == 1  # one call: no retry, no fallback
    [call] = ModelCall.objects.all()
    assert call.route_test_id == test.pk and call.status == "failed"

    page = client.get(reverse("routing:route-test", args=[route.pk]))
    assert b"&lt;script&gt;alert(" in page.content
    assert b"<script>alert(" not in page.content
    assert not Caption.objects.exists()


@pytest.mark.django_db
def test_one_live_test_per_route_and_a_lost_one_is_failed(client, admin):
    route = RouteFactory(name="steady")
    first = route_test_start(route=route, user=admin, image=RouteTestImage(name="coffee.jpg"))
    with pytest.raises(RouteTestBusy):
        route_test_start(route=route, user=admin, image=RouteTestImage(name="rocket.jpg"))
    client.force_login(admin)
    page = client.post(
        reverse("routing:route-test", args=[route.pk]), {"sample": "rocket.jpg"}, follow=True
    )
    assert b"already running" in page.content
    assert RouteTest.objects.count() == 1
    # The page polls the live test, and its button is disabled meanwhile.
    assert b"hx-get" in page.content and b"disabled" in page.content

    # No worker took it before its lease ran out: failed, saying which queue, and the route can
    # be tested again.
    RouteTest.objects.filter(pk=first.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert route_tests.route_tests_expire() == 1
    first.refresh_from_db()
    assert first.status == "failed" and "api queue" in first.error
    second = route_test_start(route=route, user=admin, image=RouteTestImage(name="rocket.jpg"))
    assert second.is_live


@pytest.mark.django_db
def test_a_lost_call_is_closed_at_its_estimate(admin):
    route = RouteFactory(name="priced", usd_per_call=Decimal("0.003"))
    test = route_test_start(route=route, user=admin, image=RouteTestImage(name="coffee.jpg"))
    RouteTest.objects.filter(pk=test.pk).update(status="running")
    ModelCall.objects.create(
        route_test=test,
        route=route,
        attempt=1,
        trigger="route_test",
        started_at=timezone.now(),
        estimate_usd=Decimal("0.003"),
    )
    RouteTest.objects.filter(pk=test.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    assert route_tests.route_tests_expire(route_id=route.pk) == 1

    call = ModelCall.objects.get()
    assert call.status == "lost" and call.cost_usd == Decimal("0.003")
    test.refresh_from_db()
    assert test.status == "failed" and test.cost_usd == Decimal("0.003")


@pytest.mark.django_db
def test_a_local_route_is_tested_on_the_gpu_queue(
    admin, broker, django_capture_on_commit_callbacks, fake_edenai
):
    local = RouteFactory(name="blip2-local", provider=Route.Provider.LOCAL, model="/models/none")
    hosted = edenai_route(fake_edenai, name="hosted")
    with django_capture_on_commit_callbacks(execute=True):
        on_gpu = route_test_start(route=local, user=admin, image=RouteTestImage(name="coffee.jpg"))
        on_api = route_test_start(route=hosted, user=admin, image=RouteTestImage(name="coffee.jpg"))
    assert broker.messages("gpu") == [
        ("routing.tasks.caption_route_test_gpu", {"test_id": on_gpu.pk})
    ]
    assert broker.messages("api") == [("routing.tasks.caption_route_test", {"test_id": on_api.pk})]


@pytest.mark.django_db
def test_a_bad_upload_is_refused_with_the_reason(client, admin):
    route = RouteFactory(name="any")
    client.force_login(admin)
    page = client.post(
        reverse("routing:route-test", args=[route.pk]),
        {"image": SimpleUploadedFile("x.png", b"<html><script>1</script></html>", "image/png")},
        follow=True,
    )
    assert b"This file cannot be used" in page.content
    assert not RouteTest.objects.exists()


@pytest.mark.django_db
def test_only_site_admins_test_routes(client, project, annotator, django_user_model):
    route = RouteFactory(name="shared")
    test = RouteTest.objects.create(route=route, lease_until=timezone.now())
    boss = django_user_model.objects.create_user(username="boss", password="boss-pass-123")
    Membership.objects.create(project=project, user=boss, role=Membership.Role.ADMIN)
    urls = [
        reverse("routing:route-test", args=[route.pk]),
        reverse("routing:route-test-result", args=[test.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    for user in (annotator, boss):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 403
        assert client.post(urls[0], {"sample": "coffee.jpg"}).status_code == 403
    assert RouteTest.objects.count() == 1


@pytest.mark.django_db
def test_deleting_an_unused_route_takes_its_tests_along(admin):
    from routing.services.routes import route_delete

    route = RouteFactory(name="tried-once")
    test = route_test_start(route=route, user=admin, image=RouteTestImage(name="coffee.jpg"))
    ModelCall.objects.create(
        route_test=test, route=route, attempt=1, trigger="route_test", started_at=timezone.now()
    )
    route_delete(route=route)
    assert not Route.objects.filter(pk=route.pk).exists()
    assert not ModelCall.objects.exists() and not RouteTest.objects.exists()


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.slow
def test_an_admin_tests_a_route_in_chromium_and_sees_the_answer(
    live_server, celery_worker_process, admin, fake_edenai, fake_edenai_b
):
    from tests.review.test_browser import chromium_page

    celery_worker_process(queues="api", pool="threads", concurrency=2)
    fake_edenai.set_default(
        Reply.success("A <b>cup</b> of coffee on a white saucer.", cost="0.0004", latency_ms=1500)
    )
    fake_edenai_b.set_default(Reply.error(401, message="Invalid <api> key & no access"))
    edenai_route(fake_edenai, name="gpt-4o-fake")
    edenai_route(fake_edenai_b, name="broken-key")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(f"{live_server.url}/login/?next=/routing/routes/")
        page.fill("#id_username", "ada-admin")
        page.fill("#id_password", "admin-pass-123")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Model routes")
        page.click("tr:has-text('gpt-4o-fake') >> text=Test")
        page.wait_for_selector("h1:has-text('Test route gpt-4o-fake')")
        page.select_option("#id_sample", "astronaut.jpg")
        page.click("button:has-text('Test this route')")
        # The page shows the test waiting or running (polling), then the answer.
        page.wait_for_selector("[data-test-status=pending], [data-test-status=running]")
        page.wait_for_selector("[data-test-status=succeeded]", timeout=30_000)
        assert page.inner_text("[data-test-text]") == "A <b>cup</b> of coffee on a white saucer."
        assert page.inner_text("[data-test-cost]") == "$0.000400"
        assert page.inner_text("[data-test-latency]").endswith(" ms")
        from axe_playwright_python.sync_playwright import Axe

        serious = [
            f"{v['id']}: {v['help']}"
            for v in Axe().run(page).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
        page.screenshot(path=str(ARTIFACTS / "route-test-1440.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "route-test-390.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the route test page is {width} px wide at 390 px"

        page.goto(f"{live_server.url}/routing/routes/")
        page.click("tr:has-text('broken-key') >> text=Test")
        page.click("button:has-text('Test this route')")
        page.wait_for_selector("[data-test-status=failed]", timeout=30_000)
        error = page.inner_text("[data-test-error]")
        assert "Invalid <api> key & no access" in error
        page.screenshot(path=str(ARTIFACTS / "route-test-error-390.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})
        page.screenshot(path=str(ARTIFACTS / "route-test-error-1440.png"), full_page=True)


@pytest.mark.django_db
def test_the_site_admin_lists_route_tests_and_their_calls(client, admin):
    route = RouteFactory(name="listed")
    test = route_test_start(route=route, user=admin, image=RouteTestImage(name="coffee.jpg"))
    ModelCall.objects.create(
        route_test=test, route=route, attempt=1, trigger="route_test", started_at=timezone.now()
    )
    client.force_login(admin)
    for url in ("/admin/routing/routetest/", "/admin/routing/modelcall/"):
        assert client.get(url).status_code == 200
    assert client.get(f"/admin/routing/routetest/{test.pk}/change/").status_code == 200


@pytest.mark.worker
@pytest.mark.slow
def test_a_local_route_is_tested_by_a_gpu_worker_and_the_web_side_loads_no_model(
    celery_worker_process, client, admin, tmp_path
):
    """A tiny random BLIP-2 saved by another process: the test process (the web side here) never
    imports torch; the worker of the gpu queue loads the model and answers."""
    import importlib.util
    import subprocess
    import sys

    if not all(importlib.util.find_spec(name) for name in ("torch", "transformers")):
        pytest.skip("the gpu extra (torch, transformers) is not installed")

    build = (
        "import sys; from routing.providers.tiny import build_tiny; "
        "m, p = build_tiny('blip2', seed=0); m.save_pretrained(sys.argv[1]); "
        "p.save_pretrained(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", build, str(tmp_path)], check=True, timeout=300)
    torch_before = "torch" in sys.modules
    celery_worker_process(queues="gpu", pool="solo", concurrency=1)
    route = RouteFactory(
        name="local-tiny",
        provider=Route.Provider.LOCAL,
        model=str(tmp_path),
        params={"max_new_tokens": 6, "min_new_tokens": 3},
        config={"device": "cpu", "family": "blip2"},
        gpu_hour_usd=Decimal("3.60"),
        timeout_s=120,
    )
    client.force_login(admin)
    page = client.get(reverse("routing:route-test", args=[route.pk]))
    assert b"<strong>gpu</strong> queue" in page.content
    response = client.post(reverse("routing:route-test", args=[route.pk]), {"sample": "rocket.jpg"})
    assert response.status_code == 302

    test = RouteTest.objects.get()
    done = wait_until(lambda: _settled(test.pk), timeout=240, interval=0.5)
    assert done.status == "succeeded", done.error
    assert done.text and done.served_model
    assert done.cost_usd is not None and done.cost_usd > 0  # GPU seconds x $3.60 per hour
    [call] = ModelCall.objects.all()
    assert call.route_test_id == test.pk and call.caption_id is None
    if not torch_before:
        assert "torch" not in sys.modules and "transformers" not in sys.modules


@pytest.mark.worker
@pytest.mark.slow
def test_a_site_admin_tests_a_route_through_the_api_and_polls_the_answer(
    celery_worker_process, admin, annotator, fake_edenai, make_image_bytes
):
    """POST /api/routes/<id>/tests/ answers 202 with the test; a real worker of the api queue
    makes the one call; GET /api/route-tests/<id>/ gives the answer, latency and cost."""
    from rest_framework.test import APIClient

    from integrations.services.tokens import api_token_create

    celery_worker_process(queues="api", pool="threads", concurrency=2)
    fake_edenai.set_default(
        Reply.success("A cup of coffee on a saucer.", cost="0.0004", latency_ms=120)
    )
    route = edenai_route(fake_edenai, name="gpt-4o-fake-api")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=admin, name='nb').secret}")
    start_url = reverse("api:route-test-list", args=[route.pk])

    started = api.post(start_url, {"sample": "coffee.jpg"}, format="json")
    assert started.status_code == 202, started.data
    assert started.data["status"] == "pending" and started.data["image_name"] == "coffee.jpg"
    assert started.data["queue"] == "api" and started.data["created_by"] == admin.username
    poll_url = reverse("api:route-test-detail", args=[started.data["id"]])

    def answered():
        body = api.get(poll_url).data
        return body if body["status"] in ("succeeded", "failed") else None

    done = wait_until(answered, timeout=60)
    assert done["status"] == "succeeded", done
    assert done["text"] == "A cup of coffee on a saucer."
    assert Decimal(done["cost_usd"]) == Decimal("0.0004")
    assert done["latency_ms"] is not None and done["latency_ms"] >= 100
    assert len(fake_edenai.requests) == 1  # one call: no retry, no cache
    [call] = ModelCall.objects.all()
    assert call.route_test_id == started.data["id"] and call.caption_id is None
    assert not Caption.objects.exists()

    # An uploaded image (multipart), as the page takes; a file that is not an image is refused
    # with the reason, and a second test while one is live is a 409 (the call takes 1.5 s).
    fake_edenai.set_default(Reply.success("A small image.", cost="0.0004", latency_ms=1500))
    upload = SimpleUploadedFile("mine.png", make_image_bytes("PNG", size=(64, 48)), "image/png")
    second = api.post(start_url, {"image": upload}, format="multipart")
    assert second.status_code == 202 and second.data["image_name"] == "mine.png"
    busy = api.post(start_url, {"sample": "coffee.jpg"}, format="json")
    assert busy.status_code == 409 and "already running" in str(busy.data)
    junk = SimpleUploadedFile("junk.png", b"not an image", "image/png")
    refused = api.post(start_url, {"image": junk}, format="multipart")
    assert refused.status_code == 400 and "cannot be used" in str(refused.data)
    assert api.post(start_url, {"sample": "nope.jpg"}, format="json").status_code == 400
    second_url = reverse("api:route-test-detail", args=[second.data["id"]])
    assert wait_until(lambda: api.get(second_url).data["status"] == "succeeded", timeout=60)
    listed = api.get(start_url).data["results"]
    assert [t["id"] for t in listed] == [second.data["id"], started.data["id"]]

    # Site admins only: a project annotator is refused, and an unknown test is a 404.
    other = APIClient()
    other.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=annotator, name='nb').secret}"
    )
    assert other.post(start_url, {"sample": "coffee.jpg"}, format="json").status_code == 403
    assert other.get(poll_url).status_code == 403
    assert api.get(reverse("api:route-test-detail", args=[10**9])).status_code == 404
