"""An admin captions a project's images from the browser: route status on the project page, the
run form with its cost estimate, then the run page updating itself while a real worker captions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from routing.fakes import Reply
from tests.factories import ImageFactory
from tests.review.test_browser import chromium_page
from tests.routing.conftest import edenai_route

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "routing"


def test_admin_launches_a_comparison_run_and_watches_it_finish(
    live_server,
    celery_worker_process,
    project,
    admin,
    make_image_bytes,
    fake_edenai,
    fake_edenai_b,
):
    celery_worker_process(queues="api", pool="threads", concurrency=4)
    fake_edenai.set_default(Reply.success("A <b>bold</b> claim about a tram.", latency_ms=400))
    fake_edenai_b.set_default("402")
    edenai_route(fake_edenai, name="gpt-4o-fake", usd_per_call=Decimal("0.002"))
    edenai_route(fake_edenai_b, name="broke-route")
    for i in range(3):
        ImageFactory(
            project=project,
            file=ContentFile(make_image_bytes("PNG", size=(320, 240), seed=i), name=f"t{i}.png"),
            original_name=f"tram-{i}.png",
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{live_server.url}/login/?next=/projects/{project.slug}/")
        page.fill("#id_username", "ada-admin")
        page.fill("#id_password", "admin-pass-123")
        page.keyboard.press("Enter")
        page.wait_for_selector("#route-status-title")
        assert "gpt-4o-fake" in page.inner_text(".route-status")
        page.click("text=Caption images")

        page.check("input[name=kind][value=comparison]")
        page.check("label:has-text('gpt-4o-fake') input")
        page.check("label:has-text('broke-route') input")
        page.click("button[value=estimate]")
        estimate = page.inner_text("#estimate")
        assert "3 images → 6 new captions" in estimate
        assert "unknown price" in estimate  # broke-route has no price configured
        page.click("button[value=launch]")

        page.wait_for_selector("text=6 / 6 settled", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "run-finished.png"), full_page=True)
        progress = page.inner_text("#run-progress")
        assert "Finished" in progress
        assert page.inner_text("[data-stat=succeeded]") == "3"
        assert page.inner_text("[data-stat=failed]") == "3"
        assert "$0.0013" in page.inner_text("[data-stat=spent]")  # 3 x 0.00042 reported

        page.click("text=Failed captions")
        assert page.locator("text=broke-route: out_of_credits").count() == 3
        page.click("text=← Run #")
        page.click("text=All captions")
        # Vendor text is shown as text, never as markup.
        assert page.locator("b", has_text="bold").count() == 0
        assert "A <b>bold</b> claim about a tram." in page.inner_text("table")
