"""The people's side in a real Chromium: finding the work, the team, the review screen on a laptop
and a phone, and an accessibility check. Screenshots land in test-artifacts/people/."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from labeling.models import Membership
from review.models import RiskFlag, Verdict
from review.services.items import review_items_sync
from tests.factories import CaptionFactory, ImageFactory
from tests.review.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "people"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
GUIDELINES = "## What to check\n\n* Name the **main subject** first.\n* Reject invented text."


@contextmanager
def chromium(viewport=DESKTOP, *, mobile: bool = False):
    """A headless Debian Chromium page. No ORM calls inside (see tests/review/test_browser.py)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport=viewport,
                is_mobile=mobile,
                has_touch=mobile,
                device_scale_factor=1,
                # Playwright's string predicates use eval, which the app's CSP refuses.
                bypass_csp=True,
            )
            yield context.new_page()
        finally:
            browser.close()


def _log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Projects')")


def _wait_for_new_item(page, previous: str | None) -> str | None:
    page.wait_for_function(
        "prev => { const el = document.getElementById('review-item');"
        " return el && el.dataset.ready && (el.dataset.lease || null) !== prev; }",
        arg=previous,
    )
    return page.get_attribute("#review-item", "data-lease")


def _queue(project, make_image_bytes, texts, *, models=1, size=(800, 560)):
    """Images with one caption per model each, queued for review."""
    for i, text in enumerate(texts):
        image = ImageFactory(
            project=project,
            file=ContentFile(make_image_bytes("PNG", size=size, seed=i), name=f"p{i}.png"),
            width=size[0],
            height=size[1],
            original_name=f"street-{i}.png",
        )
        for m in range(models):
            CaptionFactory(image=image, text=f"{text}" if m == 0 else f"{text} (model {m})")
    review_items_sync(project=project)


def test_an_annotator_goes_from_login_to_a_first_verdict_without_typing_a_url(
    live_server, project, annotator, make_image_bytes
):
    project.guidelines = GUIDELINES
    project.save()
    # A 256 px scan, captioned by two models.
    _queue(project, make_image_bytes, ["An MRI slice of a knee."], models=2, size=(256, 256))
    with chromium() as page:
        _log_in(page, live_server.url, "ann", "annotator-pass-123")
        page.click(f"text={project.name}")
        page.screenshot(path=str(ARTIFACTS / "annotator-1-project.png"), full_page=True)
        assert page.locator("text=Model routes").count() == 0
        page.click("text=Review captions")
        page.wait_for_selector("#start-button")
        # The guidelines are on the start screen.
        assert "Name the main subject first." in page.inner_text("#review-item")
        page.screenshot(path=str(ARTIFACTS / "annotator-2-start.png"))

        # The focus bug: ? opens the keys, Esc closes them, and Enter still starts.
        assert page.evaluate("document.activeElement.id") == "start-button"
        page.keyboard.press("?")
        assert page.get_attribute("#review-help", "open") is not None
        page.keyboard.press("Escape")
        assert page.get_attribute("#review-help", "open") is None
        assert page.evaluate("document.activeElement.id") == "start-button"
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, None)
        assert "caption 1 of 2 for this image" in page.inner_text("#review-item")
        # The counts follow the claim: this caption is now in progress.
        page.wait_for_function(
            "document.getElementById('count-in-progress').textContent.trim() === '1'"
        )

        # Small images fill the viewer.
        page.wait_for_function("document.getElementById('review-image').naturalWidth > 0")
        shown = page.evaluate(
            "(() => { const r = document.getElementById('review-image').getBoundingClientRect();"
            " return Math.min(r.width, r.height); })()"
        )
        assert shown > 500, shown
        page.screenshot(path=str(ARTIFACTS / "annotator-3-item.png"))

        # The guidelines are one key away while reviewing.
        page.keyboard.press("g")
        assert page.is_visible("#guidelines-panel .guidelines >> text=Reject invented text.")
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        _wait_for_new_item(page, lease)
        assert "caption 2 of 2 for this image" in page.inner_text("#review-item")
        page.wait_for_function(
            "document.getElementById('my-progress').textContent.includes('1 today')"
        )
    assert Verdict.objects.get().decision == "accept"


def test_undoing_a_skip_says_so_and_offers_no_older_verdict(
    live_server, project, annotator, make_image_bytes
):
    _queue(project, make_image_bytes, ["A tram.", "Two dogs.", "A cat."])
    with chromium() as page:
        _log_in(page, live_server.url, "ann", "annotator-pass-123")
        page.goto(f"{live_server.url}/review/projects/{project.slug}/")
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, None)
        page.keyboard.press("a")
        lease = _wait_for_new_item(page, lease)
        skipped = lease
        page.keyboard.press("s")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, lease)
        assert "Saved skip" in page.inner_text(".undo-bar")
        page.keyboard.press("u")
        lease = _wait_for_new_item(page, lease)
        assert lease == skipped
        notice = page.inner_text("#review-notice")
        assert re.search(r"Undone: your skip of item #\d+\. It is yours again\.", notice)
        # The accept before the skip is not offered for undoing.
        assert page.locator(".undo-bar").count() == 0
        page.screenshot(path=str(ARTIFACTS / "undo-skip.png"))

        # My verdicts: the accept is listed; it is no longer the last thing, so no undo.
        page.click("text=My verdicts")
        page.wait_for_selector("#history")
        assert page.locator("#history tbody tr").count() == 1
        assert page.locator("#history-undo").count() == 0
    assert list(Verdict.objects.values_list("decision", flat=True)) == ["accept"]


def test_a_verdict_can_be_taken_back_from_the_history_page(
    live_server, project, annotator, make_image_bytes
):
    _queue(project, make_image_bytes, ["A tram.", "Two dogs."])
    with chromium() as page:
        _log_in(page, live_server.url, "ann", "annotator-pass-123")
        page.goto(f"{live_server.url}/review/projects/{project.slug}/")
        page.keyboard.press("Enter")
        lease = _wait_for_new_item(page, None)
        first = lease
        page.keyboard.press("r")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        _wait_for_new_item(page, lease)
        page.click("text=My verdicts")
        assert "Wrong subject" in page.inner_text("#history")
        page.screenshot(path=str(ARTIFACTS / "history.png"))
        page.click("#history-undo")
        lease = _wait_for_new_item(page, "none")
        assert lease == first
        assert "Undone: your rejection" in page.inner_text(".messages")
    assert not Verdict.objects.exists()


def test_single_key_shortcuts_can_be_turned_off(live_server, project, annotator, make_image_bytes):
    _queue(project, make_image_bytes, ["A tram."])
    with chromium() as page:
        _log_in(page, live_server.url, "ann", "annotator-pass-123")
        page.goto(f"{live_server.url}/review/projects/{project.slug}/")
        page.keyboard.press("Enter")
        _wait_for_new_item(page, None)
        page.click("#review-help summary")
        page.uncheck("#single-key-shortcuts")
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        page.wait_for_timeout(500)
        # Still on the same item; the button works.
        assert page.locator("#accept-button").count() == 1
        page.reload()
        assert not page.is_checked("#single-key-shortcuts")
        page.click("#accept-button")
        page.wait_for_selector("text=Nothing left for you to review")
    assert Verdict.objects.count() == 1


def test_an_admin_creates_invites_adds_and_cannot_remove_the_last_admin(
    live_server, project, django_user_model
):
    pam = django_user_model.objects.create_user(username="pam", password="project-admin-123")
    Membership.objects.create(project=project, user=pam, role="admin")
    django_user_model.objects.create_user(username="otto", password="outsider-pass-123")
    with chromium() as page:
        _log_in(page, live_server.url, "pam", "project-admin-123")
        page.click(f"text={project.name}")
        page.click("text=Team")
        page.wait_for_selector("h1:has-text('Team')")

        page.fill("#id_create-username", "bea")
        page.fill("#id_create-email", "bea@example.com")
        assert page.input_value("#id_create-role") == "annotator"
        page.click("#create-user button[type=submit]")
        page.wait_for_selector("#invitation-url")
        assert "/invitations/" in page.input_value("#invitation-url")
        assert page.is_visible("#members tr[data-user=bea] >> text=no password yet")

        page.fill("#id_invite-email", "cy@example.com")
        page.click("#invite-member button[type=submit]")
        page.wait_for_selector("#invitations >> text=cy@example.com")
        page.screenshot(path=str(ARTIFACTS / "team-desktop.png"), full_page=True)

        page.fill("#id_username", "otto")
        assert page.input_value("#add-member select[name=role]") == "annotator"
        page.click("#add-member button[type=submit]")
        page.wait_for_selector("#members tr[data-user=otto]")

        # Removing anyone else asks first ...
        page.click("#members tr[data-user=otto] button:has-text('Remove')")
        page.wait_for_selector("h1:has-text('Remove otto')")
        page.screenshot(path=str(ARTIFACTS / "team-confirm.png"))
        page.click("text=Keep it")
        # ... and the last admin is refused at once.
        page.click("#members tr[data-user=pam] button:has-text('Remove')")
        page.wait_for_selector(".messages >> text=pam is the last admin of Street photos")
        page.screenshot(path=str(ARTIFACTS / "team-refused.png"))
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {"pam": "admin", "bea": "annotator", "otto": "annotator"}


def _overflow(page) -> int:
    """How far the page is wider than the screen (0 when nothing sticks out)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_on_a_phone_the_caption_and_accept_are_on_the_first_screen_for_every_item(
    live_server, project, annotator, make_image_bytes
):
    texts = [
        "A red tram crossing a bridge at dusk, seen from the river bank: " * 6,
        "Two dogs playing on a beach while a long caption wraps over several lines of a "
        "narrow phone screen, as real captions of busy scenes often do.",
        "A bar chart showing sales.",
        "A tall portrait photo.",
    ]
    _queue(project, make_image_bytes, texts[:3])
    _queue(project, make_image_bytes, texts[3:], size=(400, 1200))
    RiskFlag.objects.create(
        image=project.images.order_by("id")[2],
        category="chart",
        score=0.93,
        flagged=True,
        reason="axis-like lines and tick labels",
        analyser_version="t",
    )
    with chromium(PHONE, mobile=True) as page:
        _log_in(page, live_server.url, "ann", "annotator-pass-123")
        assert _overflow(page) == 0
        page.goto(f"{live_server.url}/review/")
        assert _overflow(page) == 0
        page.screenshot(path=str(ARTIFACTS / "phone-queue.png"), full_page=True)
        page.goto(f"{live_server.url}/projects/{project.slug}/")
        assert _overflow(page) == 0
        page.screenshot(path=str(ARTIFACTS / "phone-project.png"), full_page=True)
        page.goto(f"{live_server.url}/review/projects/{project.slug}/")
        page.click("#start-button")
        lease = _wait_for_new_item(page, None)
        for n in range(4):
            for selector in ("#caption-text", "#accept-button"):
                box = page.locator(selector).bounding_box()
                assert box and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (
                    n,
                    selector,
                    box,
                )
            assert _overflow(page) == 0
            page.screenshot(path=str(ARTIFACTS / f"phone-item-{n + 1}.png"))
            page.locator("#accept-button").tap()
            lease = _wait_for_new_item(page, lease)
        assert "Nothing left" in page.inner_text("#review-item")
    assert Verdict.objects.filter(decision="accept").count() == 4


def test_main_pages_have_no_serious_accessibility_violations(
    live_server, project, annotator, admin, make_image_bytes
):
    from axe_playwright_python.sync_playwright import Axe

    project.guidelines = GUIDELINES
    project.save()
    _queue(project, make_image_bytes, ["A tram.", "Two dogs."])
    axe = Axe()
    found: dict[str, list[str]] = {}

    def check(page, name: str) -> None:
        results = axe.run(page)
        bad = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            found[name] = bad

    base = live_server.url
    with chromium() as page:
        page.goto(base + "/login/")
        check(page, "login")
        _log_in(page, base, "ann", "annotator-pass-123")
        for name, path in (
            ("projects", "/projects/"),
            ("project", f"/projects/{project.slug}/"),
            ("queues", "/review/"),
            ("guidelines", f"/projects/{project.slug}/guidelines/"),
            ("review-start", f"/review/projects/{project.slug}/"),
            ("not-found", "/projects/nope/"),
        ):
            page.goto(base + path)
            check(page, name)
        page.goto(f"{base}/review/projects/{project.slug}/")
        page.click("#start-button")
        _wait_for_new_item(page, None)
        check(page, "review-item")
        page.keyboard.press("a")
        page.wait_for_selector(".undo-bar")
        page.goto(f"{base}/review/projects/{project.slug}/history/")
        check(page, "history")
        page.emulate_media(color_scheme="dark")
        page.goto(f"{base}/review/projects/{project.slug}/")
        check(page, "review-dark")
        page.screenshot(path=str(ARTIFACTS / "dark-review.png"))
        page.emulate_media(color_scheme="light")
        page.context.clear_cookies()
        _log_in(page, base, "ada-admin", "admin-pass-123")
        for name, path in (
            ("project-admin", f"/projects/{project.slug}/"),
            ("team", f"/projects/{project.slug}/members/"),
        ):
            page.goto(base + path)
            check(page, name)
    assert found == {}


def test_on_a_phone_an_admins_pages_fit_the_screen(live_server, project, admin, make_image_bytes):
    from tests.factories import RouteFactory

    RouteFactory(name="gpt-4o-via-eden-ai-with-a-long-name", model="openai/gpt-4o-2024-08-06")
    _queue(project, make_image_bytes, ["A tram.", "Two dogs.", "A cat."])
    wide: dict[str, int] = {}
    with chromium(PHONE, mobile=True) as page:
        _log_in(page, live_server.url, "ada-admin", "admin-pass-123")
        for name, path in (
            ("project", f"/projects/{project.slug}/"),
            ("team", f"/projects/{project.slug}/members/"),
            ("routes", "/routing/routes/"),
            ("runs", f"/routing/p/{project.slug}/runs/"),
            ("queues", "/review/"),
        ):
            page.goto(live_server.url + path)
            if _overflow(page):
                wide[name] = _overflow(page)
            page.screenshot(path=str(ARTIFACTS / f"phone-admin-{name}.png"), full_page=True)
    assert wide == {}


def test_an_admin_filters_the_grid_by_risk_and_corrects_flags_in_bulk(
    live_server, project, admin, make_image_bytes
):
    from review.models import RiskCorrection

    wide = ImageFactory(
        project=project,
        file=ContentFile(make_image_bytes("PNG", size=(1200, 300), seed=7), name="wide.png"),
        width=1200,
        height=300,
        original_name="wide-chart.png",
    )
    RiskFlag.objects.create(
        image=wide, category="chart", score=0.97, flagged=True, analyser_version="t"
    )
    for i in range(3):
        image = ImageFactory(
            project=project,
            file=ContentFile(make_image_bytes("PNG", size=(300, 500), seed=i), name=f"s{i}.png"),
            width=300,
            height=500,
            original_name=f"screen-{i}.png",
        )
        RiskFlag.objects.create(
            image=image,
            category="screenshot",
            score=0.42 + i * 0.02,
            flagged=False,
            analyser_version="t",
        )
    with chromium() as page:
        _log_in(page, live_server.url, "ada-admin", "admin-pass-123")
        page.click(f"text={project.name}")
        page.wait_for_selector("#image-grid")
        # The wide chart is letterboxed, not cropped: its tile shows the whole width.
        page.wait_for_function(
            "Array.from(document.querySelectorAll('#image-grid img')).every(i => i.complete)"
        )
        fit = page.evaluate("getComputedStyle(document.querySelector('#image-grid img')).objectFit")
        assert fit == "contain"
        assert page.locator(".tile[data-image] .badge.risk").count() == 1
        page.screenshot(path=str(ARTIFACTS / "grid-desktop.png"), full_page=True)

        page.check("#id_threshold")
        page.click("form.filters:has(#id_threshold) button[type=submit]")
        page.wait_for_url("**threshold=on**")
        assert page.locator("#image-grid .tile").count() == 3
        page.click("#pick-all")
        page.select_option("#bulk-risk select[name=category]", "screenshot")
        page.select_option("#bulk-risk select[name=flagged]", "1")
        page.click("#bulk-risk button[type=submit]")
        page.wait_for_selector(".messages >> text=Screenshot: 3 images marked flagged.")
        assert "threshold=on" in page.url
        page.select_option("#id_risk", "screenshot")
        page.uncheck("#id_threshold")
        page.click("form.filters:has(#id_threshold) button[type=submit]")
        page.wait_for_url("**risk=screenshot**")
        assert page.locator("#image-grid .tile").count() == 3
        assert page.locator("#image-grid .badge.risk:has-text('Screenshot')").count() == 3
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(ARTIFACTS / "grid-phone.png"), full_page=True)
        assert _overflow(page) == 0
    assert RiskCorrection.objects.filter(category="screenshot", flagged=True).count() == 3
