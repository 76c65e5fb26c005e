"""An admin reads the comparison and the dashboards in a real Chromium, on a desktop and a phone:
the plots are drawn and the figures on screen are the selectors' figures."""

from __future__ import annotations

import pytest

from review.dashboards import accepted_rate_over_time
from review.metrics import Scope, route_metrics
from tests.review.metrics_fixture import build
from tests.review.test_browser import ARTIFACTS, chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


def _login(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "ada-admin")
    page.fill("#id_password", "admin-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")


def _overflow(page, width: int) -> list[str]:
    """Elements of the page's content that reach past the screen's right edge."""
    return page.evaluate(
        """width => [...document.querySelectorAll('main *')]
          .filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > width + 1)
          .map(e => e.tagName + '.' + e.className)""",
        width,
    )


def _cell(page, measure: str, key: str) -> float:
    """The raw figure behind one cell of the comparison table."""
    return page.evaluate(
        """([measure, key]) => {
          const table = document.getElementById('comparison-table');
          const keys = [...table.querySelectorAll('thead th')].map(th => th.dataset.key);
          const row = table.querySelector(`tr[data-measure="${measure}"]`);
          return parseFloat(row.children[keys.indexOf(key)].dataset.raw);
        }""",
        [measure, key],
    )


def test_admin_reads_comparison_and_dashboards_on_desktop_and_phone(
    live_server, project, admin, settings
):
    settings.COMPARISON_MIN_IMAGES = 3
    fx = build(project, admin)
    table = route_metrics(
        scope=Scope(
            project=project, run_id=fx.run.pk, route_ids=(fx.a.pk, fx.b.pk), same_images=True
        )
    )
    expected = {
        row.key: (row.accepted_rate.value, row.cost_per_accepted.usd, row.spend_usd)
        for row in table.rows
    }
    # The dashboards cover every output of the project, not only the shared images.
    project_cost = route_metrics(scope=Scope(project=project)).row("hosted-a").cost_per_accepted
    rate_plot = accepted_rate_over_time(Scope(project=project))
    drawn_points = sum(len(s.marks) for s in rate_plot.chart.series)
    compare_url = f"{live_server.url}/review/projects/{project.slug}/compare/?run={fx.run.pk}"
    dashboard_url = f"{live_server.url}/review/projects/{project.slug}/dashboard/"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        _login(page, live_server.url)
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})

            page.goto(compare_url)
            assert page.text_content("#compare-sample [data-images]") == "3"
            assert page.locator("#not-enough").count() == 0
            for key, (rate, cost, spend) in expected.items():
                assert _cell(page, "accepted-output-rate", key) == pytest.approx(rate, abs=1e-5)
                assert _cell(page, "cost-per-accepted-output", key) == pytest.approx(cost)
                assert _cell(page, "model-spend", key) == pytest.approx(spend)
            # Nothing on the page is wider than the screen; wide tables scroll in their box.
            assert _overflow(page, width) == []
            page.screenshot(path=str(ARTIFACTS / f"comparison-{size}.png"), full_page=True)

            page.goto(dashboard_url)
            plots = page.locator("figure.chart")
            assert plots.count() == 6
            for index in range(6):
                figure = plots.nth(index)
                box = figure.locator("svg").bounding_box()
                assert box["width"] > 200 and box["height"] > 60
                assert figure.locator(".mark").count() > 0, figure.get_attribute("data-chart")
            assert page.locator('[data-chart="rate"] circle.mark').count() == drawn_points
            hosted = page.locator('[data-chart="cost"] rect.mark title').first.text_content()
            assert hosted.startswith(f"hosted-a: ${project_cost.usd:.4f}")
            assert _overflow(page, width) == []
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{size}.png"), full_page=True)
