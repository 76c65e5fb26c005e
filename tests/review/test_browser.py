"""An annotator reviews five items in a real Chromium, by keyboard only."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from review.models import Lease, Verdict
from review.services.items import review_items_sync
from tests.factories import CaptionFactory, ImageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CAPTIONS = [
    "A red tram crossing a bridge at dusk.",
    "Two dogs playing on a beach.",
    "A bar chart showing sales.",
    "A blurry street at night.",
    "A cat asleep on a windowsill.",
]


@contextmanager
def chromium_page():
    """A headless Debian Chromium page. No ORM calls inside: Playwright's sync API runs an event
    loop here, and Django would open a separate connection for it that nothing closes."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # Playwright evaluates string predicates (wait_for_function) with eval, which the
            # app's Content-Security-Policy refuses; tests/hardening checks the policy itself.
            yield browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        finally:
            browser.close()


def _wait_for_new_item(page, previous: str | None) -> str | None:
    page.wait_for_function(
        "prev => { const el = document.getElementById('review-item');"
        " return el && el.dataset.ready && (el.dataset.lease || null) !== prev; }",
        arg=previous,
    )
    return page.get_attribute("#review-item", "data-lease")


def test_an_annotator_reviews_five_items_by_keyboard(
    live_server, project, annotator, make_image_bytes
):
    images = []
    for i, text in enumerate(CAPTIONS):
        image = ImageFactory(
            project=project,
            file=ContentFile(make_image_bytes("PNG", size=(800, 560), seed=i), name=f"p{i}.png"),
            width=800,
            height=560,
            original_name=f"street-{i}.png",
        )
        CaptionFactory(image=image, text=text)
        images.append(image)
    review_items_sync(project=project)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{live_server.url}/login/?next=/review/projects/{project.slug}/")
        page.fill("#id_username", "ann")
        page.fill("#id_password", "annotator-pass-123")
        page.keyboard.press("Enter")
        page.wait_for_selector("#start-button")
        page.keyboard.press("Enter")  # the start button has the focus
        lease = _wait_for_new_item(page, None)
        assert CAPTIONS[0] in page.inner_text("#caption-text")
        page.wait_for_function("document.getElementById('review-image').naturalWidth > 0")
        # The full-size copy replaces the thumbnail once it has loaded.
        page.wait_for_function("document.getElementById('review-image').dataset.fullLoaded === '1'")
        assert "/display/" in page.get_attribute("#review-image", "src")
        page.screenshot(path=str(ARTIFACTS / "1-item.png"))

        page.keyboard.press("?")
        assert page.get_attribute("#review-help", "open") is not None
        page.screenshot(path=str(ARTIFACTS / "2-help.png"))
        page.keyboard.press("Escape")
        assert page.get_attribute("#review-help", "open") is None
        page.keyboard.press("+")
        page.keyboard.press("+")
        assert "scale(1.5625)" in page.get_attribute("#review-image", "style")
        page.keyboard.press("0")

        # 1: accept.
        page.keyboard.press("a")
        lease = _wait_for_new_item(page, lease)
        assert CAPTIONS[1] in page.inner_text("#caption-text")
        assert page.is_visible("#undo-button")

        # 2: edit, save with Ctrl+Enter.
        page.keyboard.press("e")
        assert page.evaluate("document.activeElement.id") == "edit-text"
        page.keyboard.press("Control+a")
        page.keyboard.type("Two brown dogs chasing a ball on a beach.")
        page.screenshot(path=str(ARTIFACTS / "3-edit.png"))
        page.keyboard.press("Control+Enter")
        lease = _wait_for_new_item(page, lease)
        assert CAPTIONS[2] in page.inner_text("#caption-text")

        # 3: reject with two reasons.
        page.keyboard.press("r")
        page.keyboard.press("1")
        page.keyboard.press("3")
        page.screenshot(path=str(ARTIFACTS / "4-reject.png"))
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, lease)
        assert CAPTIONS[3] in page.inner_text("#caption-text")

        # 4: skip with a reason.
        page.keyboard.press("s")
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, lease)
        assert CAPTIONS[4] in page.inner_text("#caption-text")

        # 5: accept, think again, undo, and edit instead.
        last = lease
        page.keyboard.press("a")
        _wait_for_new_item(page, lease)
        assert "Nothing left for you to review" in page.inner_text("#review-item")
        page.keyboard.press("u")
        lease = _wait_for_new_item(page, None)
        assert lease == last and CAPTIONS[4] in page.inner_text("#caption-text")
        page.screenshot(path=str(ARTIFACTS / "5-after-undo.png"))
        page.keyboard.press("e")
        page.keyboard.press("Control+a")
        page.keyboard.type("A grey cat asleep on a sunny windowsill.")
        page.keyboard.press("Control+Enter")
        _wait_for_new_item(page, lease)
        assert "Nothing left for you to review" in page.inner_text("#review-item")
        page.wait_for_function("document.getElementById('count-done').textContent.trim() === '4'")
        page.screenshot(path=str(ARTIFACTS / "6-done.png"))

    verdicts = list(Verdict.objects.order_by("created_at").select_related("caption"))
    assert [(v.caption.text, v.decision) for v in verdicts] == list(
        zip(CAPTIONS, ["accept", "edit", "reject", "skip", "edit"], strict=True)
    )
    assert verdicts[1].final_text == "Two brown dogs chasing a ball on a beach."
    assert verdicts[2].reasons == ["wrong_subject", "wrong_count"]
    assert verdicts[3].reasons == ["unsure"]
    assert verdicts[4].final_text == "A grey cat asleep on a sunny windowsill."
    assert all(v.reviewer == annotator and v.time_spent_ms > 0 for v in verdicts)
    assert not Lease.objects.filter(state=Lease.State.ACTIVE).exists()
