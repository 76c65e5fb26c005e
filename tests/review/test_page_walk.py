"""A walk through the main pages as an annotator and as a site admin with a long user name, on a
laptop (1440x900) and a phone (390x844): nothing is wider than the screen, and the top bar's user
name and log-out button stay on it. Screenshots land in test-artifacts/walk/."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from labeling.models import Membership
from routing.models import CaptionRun, RouteTest
from tests.factories import RouteFactory
from tests.review.test_people_browser import DESKTOP, PHONE, _queue, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "walk"
LONG_NAME = "margarethe.van-den-bergh-lindqvist@example.org"

# What sticks out: the page's own horizontal overflow, and the top bar's items outside the screen.
_MEASURE = """() => {
  const doc = document.documentElement;
  const out = [];
  for (const el of document.querySelectorAll('.topbar a, .topbar button, .topbar .muted')) {
    const r = el.getBoundingClientRect();
    if (r.right > doc.clientWidth + 0.5 || r.left < -0.5) out.push(el.textContent.trim());
  }
  return {overflow: doc.scrollWidth - doc.clientWidth, topbar: out};
}"""


def _log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Projects')")


def _walk(page, base: str, who: str, size: str, paths) -> dict[str, object]:
    problems: dict[str, object] = {}
    for name, path in paths:
        response = page.goto(base + path)
        assert response is not None and response.status < 400, (name, path, response.status)
        seen = page.evaluate(_MEASURE)
        if seen["overflow"] > 0 or seen["topbar"]:
            problems[f"{who} {size} {name}"] = seen
        page.screenshot(path=str(ARTIFACTS / f"{who}-{name}-{size}.png"), full_page=True)
    return problems


def test_main_pages_fit_a_laptop_and_a_phone(
    live_server, project, annotator, django_user_model, make_image_bytes
):
    boss = django_user_model.objects.create_superuser(
        username=LONG_NAME, email="m@example.org", password="boss-pass-123"
    )
    Membership.objects.create(project=project, user=boss, role=Membership.Role.ADMIN)
    route = RouteFactory(
        name="gpt-4o-via-eden-ai-with-a-long-name",
        model="openai/gpt-4o-2024-08-06",
        usd_per_call=Decimal("0.002"),
    )
    RouteTest.objects.create(
        route=route,
        status="succeeded",
        image_name="coffee.jpg",
        text="A cup of coffee on a saucer, " * 8,
        latency_ms=812,
        cost_usd=Decimal("0.002"),
        lease_until=timezone.now(),
    )
    _queue(project, make_image_bytes, ["A red tram on a bridge.", "Two dogs on a beach."], models=2)
    image = project.images.order_by("id").first()
    run = CaptionRun.objects.create(project=project, kind="comparison", created_by=boss)
    run.routes.add(route)
    slug = project.slug
    annotator_pages = [
        ("projects", "/projects/"),
        ("project", f"/projects/{slug}/"),
        ("queues", "/review/"),
        ("review", f"/review/projects/{slug}/"),
        ("history", f"/review/projects/{slug}/history/"),
        ("pairwise", f"/review/projects/{slug}/pairwise/"),
        ("guidelines", f"/projects/{slug}/guidelines/"),
        ("image", f"/images/{image.pk}/"),
        ("tokens", "/account/api-tokens/"),
    ]
    admin_pages = [
        ("project", f"/projects/{slug}/"),
        ("team", f"/projects/{slug}/members/"),
        ("adjudication", f"/review/projects/{slug}/adjudication/"),
        ("policy", f"/review/projects/{slug}/policy/"),
        ("compare", f"/review/projects/{slug}/compare/"),
        ("dashboard", f"/review/projects/{slug}/dashboard/"),
        ("pairwise-results", f"/review/projects/{slug}/pairwise/results/"),
        ("image", f"/images/{image.pk}/"),
        ("routes", "/routing/routes/"),
        ("route-test", f"/routing/routes/{route.pk}/test/"),
        ("route-edit", f"/routing/routes/{route.pk}/"),
        ("chains", f"/routing/p/{slug}/chains/"),
        ("runs", f"/routing/p/{slug}/runs/"),
        ("run", f"/routing/runs/{run.pk}/"),
        ("run-form", f"/routing/p/{slug}/runs/new/"),
        ("import", f"/projects/{slug}/import/"),
        ("export", f"/projects/{slug}/export/"),
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, object] = {}
    base = live_server.url
    for viewport, size, mobile in ((DESKTOP, "1440", False), (PHONE, "390", True)):
        with chromium(viewport, mobile=mobile) as page:
            _log_in(page, base, "ann", "annotator-pass-123")
            problems |= _walk(page, base, "annotator", size, annotator_pages)
            page.context.clear_cookies()
            _log_in(page, base, LONG_NAME, "boss-pass-123")
            problems |= _walk(page, base, "admin", size, admin_pages)
    assert problems == {}


def test_an_admins_pages_with_figures_fit_a_laptop_and_a_phone(live_server, project, admin):
    """The same walk over a project with two routes' captions, verdicts, a dispute and calls."""
    from review.models import ReviewItem
    from tests.review.metrics_fixture import build

    fx = build(project, admin)
    dispute = ReviewItem.objects.get(caption=fx.captions[(3, "a")])  # accept vs edit, settled
    caption = fx.captions[(1, "a")]
    slug = project.slug
    pages = [
        ("adjudication-list", f"/review/projects/{slug}/adjudication/"),
        ("adjudicate", f"/review/items/{dispute.pk}/adjudicate/"),
        ("compare-data", f"/review/projects/{slug}/compare/?run={fx.run.pk}"),
        ("side-by-side", f"/review/projects/{slug}/compare/images/?run={fx.run.pk}"),
        ("dashboard-data", f"/review/projects/{slug}/dashboard/"),
        ("run-data", f"/routing/runs/{fx.run.pk}/"),
        ("run-captions", f"/routing/runs/{fx.run.pk}/captions/"),
        ("caption", f"/routing/captions/{caption.pk}/"),
        ("image-data", f"/images/{caption.image_id}/"),
        ("leases", f"/review/projects/{slug}/leases/"),
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, object] = {}
    for viewport, size, mobile in ((DESKTOP, "1440", False), (PHONE, "390", True)):
        with chromium(viewport, mobile=mobile) as page:
            _log_in(page, live_server.url, "ada-admin", "admin-pass-123")
            problems |= _walk(page, live_server.url, "admin", size, pages)
    assert problems == {}
