"""Adjudication as an admin sees it: who said what, in words; the edits' differences; using a
reviewer's text; saving moves on to the next dispute; by keyboard in Chromium."""

from __future__ import annotations

import re
import uuid

import pytest

from review.models import Adjudication, ReviewItem
from review.services import queue
from review.services.verdict import verdict_submit
from review.textdiff import text_diff
from tests.review.test_people_browser import _log_in, chromium


def _serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [v["id"] for v in violations if v["impact"] in ("serious", "critical")]


MODEL_TEXTS = ["A bar chart of rain.", "A pie chart.", "A line chart of prices."]


def _disputes(project, make_items, make_reviewers):
    """Three risky items; two reviewers edit the first differently and disagree on the others."""
    items = make_items(project, 3, risky=True, texts=MODEL_TEXTS)
    a, b = make_reviewers(project, 2)
    for n in range(3):
        lease_a = queue.lease_claim_next(project=project, reviewer=a)
        lease_b = queue.lease_claim_next(project=project, reviewer=b)
        if n == 0:
            verdict_submit(
                lease=lease_a,
                reviewer=a,
                decision="edit",
                text="A bar chart of monthly rain.",
                idempotency_key=uuid.uuid4(),
            )
            verdict_submit(
                lease=lease_b,
                reviewer=b,
                decision="edit",
                text="A bar chart of yearly snow.",
                idempotency_key=uuid.uuid4(),
            )
        else:
            verdict_submit(
                lease=lease_a, reviewer=a, decision="accept", idempotency_key=uuid.uuid4()
            )
            verdict_submit(
                lease=lease_b,
                reviewer=b,
                decision="reject",
                reasons=["wrong_subject", "hallucinated_detail"],
                idempotency_key=uuid.uuid4(),
            )
    assert set(ReviewItem.objects.values_list("state", flat=True)) == {"adjudication"}
    return items, a, b


def test_text_diff_marks_removed_and_added_words():
    segments = text_diff("A red tram on a bridge.", "A blue tram on a long bridge.")
    removed = [s.text for s in segments if s.op == "removed"]
    added = [s.text for s in segments if s.op == "added"]
    assert removed == ["red"] and added == ["blue", "long "]
    assert "".join(s.text for s in segments if s.op != "added") == "A red tram on a bridge."


@pytest.mark.django_db
def test_the_list_shows_thumbnails_and_each_reviewers_decision_in_words(
    client, project, admin, make_items, make_reviewers
):
    items, a, b = _disputes(project, make_items, make_reviewers)
    client.force_login(admin)
    page = client.get(f"/review/projects/{project.slug}/adjudication/").content.decode()
    assert page.count(f"/images/{items[1].image_id}/thumb/small/") == 1
    row = page[page.index(f'data-item="{items[1].pk}"') :]
    row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row[: row.index("</tr>")]))
    assert f"{a.username} : Accept" in row
    assert f"{b.username} : Reject Wrong subject Hallucinated detail" in row
    assert "wrong_subject" not in page


@pytest.mark.django_db
def test_the_item_page_diffs_the_edits_and_starts_from_a_chosen_text(
    client, project, admin, make_items, make_reviewers
):
    items, a, b = _disputes(project, make_items, make_reviewers)
    client.force_login(admin)
    url = f"/review/items/{items[0].pk}/adjudicate/"
    page = client.get(url).content.decode()
    assert "A bar chart of <ins>monthly </ins>rain." in page
    assert "A bar chart of <del>rain.</del><ins>yearly snow.</ins>" in page
    # One edit against the other.
    assert "<del>monthly</del><ins>yearly</ins> <del>rain.</del><ins>snow.</ins>" in page
    verdict_b = items[0].verdicts.get(reviewer=b)
    chosen = client.get(f"{url}?use={verdict_b.pk}").content.decode()
    assert re.search(r"<textarea[^>]*>\s*A bar chart of yearly snow\.</textarea>", chosen)
    model = client.get(f"{url}?use=model").content.decode()
    assert re.search(r"<textarea[^>]*>\s*A bar chart of rain\.</textarea>", model)


@pytest.mark.django_db
def test_saving_opens_the_next_dispute_and_the_last_returns_to_the_list(
    client, project, admin, make_items, make_reviewers
):
    items, _, _ = _disputes(project, make_items, make_reviewers)
    client.force_login(admin)
    first = client.post(
        f"/review/items/{items[0].pk}/adjudicate/", {"decision": "approve", "text": "Rain."}
    )
    assert first["Location"] == f"/review/items/{items[1].pk}/adjudicate/"
    client.post(first["Location"], {"decision": "reject", "text": ""})
    last = client.post(
        f"/review/items/{items[2].pk}/adjudicate/", {"decision": "approve", "text": "Prices."}
    )
    assert last["Location"] == f"/review/projects/{project.slug}/adjudication/"
    assert Adjudication.objects.count() == 3


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_settles_disputes_by_keyboard(
    live_server, project, admin, make_items, make_reviewers
):
    items, a, b = _disputes(project, make_items, make_reviewers)
    with chromium() as page:
        _log_in(page, live_server.url, "ada-admin", "admin-pass-123")
        page.goto(f"{live_server.url}/review/projects/{project.slug}/adjudication/")
        assert _serious_violations(page) == []
        page.keyboard.press("Enter")
        page.wait_for_selector(f"h1:has-text('Decide item #{items[0].pk}')")
        page.screenshot(path="test-artifacts/people/adjudicate.png", full_page=True)
        assert _serious_violations(page) == []
        page.keyboard.press("2")  # reviewer 2's text
        assert page.input_value("textarea[name=text]") == "A bar chart of yearly snow."
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"h1:has-text('Decide item #{items[1].pk}')")
        page.keyboard.press("r")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"h1:has-text('Decide item #{items[2].pk}')")
        page.keyboard.press("m")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("text=No disputes left.")
    decided = dict(Adjudication.objects.values_list("item_id", "decision"))
    assert decided == {items[0].pk: "approve", items[1].pk: "reject", items[2].pk: "approve"}
    assert ReviewItem.objects.get(pk=items[0].pk).final_text == "A bar chart of yearly snow."
    assert ReviewItem.objects.get(pk=items[2].pk).final_text == MODEL_TEXTS[2]
