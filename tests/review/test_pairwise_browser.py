"""Blind pairwise review in Chromium: the keys answer (they used to send no side), and the
"single-key shortcuts" setting the review screen uses (WCAG 2.1.4) turns them off here too; the
buttons keep working."""

from __future__ import annotations

import pytest

from review.models import PairwiseJudgement
from review.services import pairwise
from tests.review.metrics_fixture import build
from tests.review.test_people_browser import ARTIFACTS, PHONE, _log_in, chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


_NEW_PAIR = (
    "prev => { const el = document.getElementById('pairwise');"
    " return el && el.dataset.lease !== prev; }"
)


def _judgements(reviewer) -> int:
    return PairwiseJudgement.objects.filter(reviewer=reviewer).count()


def test_pairwise_keys_follow_the_single_key_setting(live_server, project, admin):
    fx = build(project, admin)
    pairwise.pairwise_tasks_create(project=fx.project, run_id=fx.run.pk)
    rita = fx.reviewers[0]
    rita.set_password("rita-pass-123")
    rita.save()
    url = f"{live_server.url}/review/projects/{project.slug}/pairwise/"
    with chromium() as page:
        _log_in(page, live_server.url, rita.username, "rita-pass-123")
        page.goto(url)
        page.wait_for_load_state("load")
        page.keyboard.press("Enter")  # Start: not a single character key, always on
        page.wait_for_selector("#pairwise-form")
        page.wait_for_load_state("load")
        first = page.get_attribute("#pairwise", "data-lease")
        page.keyboard.press("1")
        page.wait_for_function(_NEW_PAIR, arg=first)
        page.wait_for_load_state("load")
        assert "Pick left" not in page.inner_text("main")  # the key sent its side
        lease = page.get_attribute("#pairwise", "data-lease")

        page.uncheck("#single-key-shortcuts")
        page.locator("#pairwise").click(position={"x": 5, "y": 5})  # focus off the checkbox
        for key in ("2", "b", "p", "4"):
            page.keyboard.press(key)
        page.wait_for_timeout(600)
        assert page.get_attribute("#pairwise", "data-lease") == lease
        page.reload()
        assert not page.is_checked("#single-key-shortcuts")
        page.screenshot(path=str(ARTIFACTS / "pairwise-shortcuts-off-1440.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(ARTIFACTS / "pairwise-shortcuts-off-390.png"), full_page=True)
        page.click("button[data-key='2']")
        page.wait_for_function(_NEW_PAIR, arg=lease)
    assert _judgements(rita) == 2
