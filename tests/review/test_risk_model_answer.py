"""Risk signal (c): reading a model's answer to the risk question, combining it with the image
and caption evidence, and the policy page where a project admin turns the question on."""

from __future__ import annotations

import pytest
from django.urls import reverse

from review.models import ReviewPolicy
from review.risk import RiskReport, combine
from review.risk.captions import model_answer_signal

CHART = {"chart": 1.0, "screenshot": -0.5, "medical": -0.5}
SCREENSHOT = {"chart": -0.5, "screenshot": 1.0, "medical": -0.5}
MEDICAL = {"chart": -0.5, "screenshot": -0.5, "medical": 1.0}
PHOTO = {"chart": -0.5, "screenshot": -0.5, "medical": -0.5}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("chart", CHART),
        ("Chart.", CHART),
        ("A bar graph", CHART),
        ("It is a screenshot.", SCREENSHOT),
        ("screenshot of a chart", SCREENSHOT),  # the kind it leads with
        ("Answer: medical", MEDICAL),
        ("This is a medical image (X-ray).", MEDICAL),
        ("an x-ray of a hand", MEDICAL),
        ("photo", PHOTO),
        ("An ordinary photograph.", PHOTO),
    ],
)
def test_an_answer_names_one_kind(answer, expected):
    assert model_answer_signal(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   ",
        "Mostly green and white.",
        "chart, screenshot, medical, photo",  # the options read back
        "a chart or a screenshot",
        "not a chart, it's a photo",
    ],
)
def test_an_answer_without_a_clear_kind_is_no_evidence(answer):
    assert model_answer_signal(answer) == {}


def report(chart=0.45, screenshot=0.55, medical=0.01):
    scores = {"chart": chart, "screenshot": screenshot, "medical": medical}
    return RiskReport(scores=scores, reasons={c: f"{c} pixels" for c in scores})


def test_without_an_answer_combine_is_unchanged():
    for captions in ([], ["A line chart of prices."]):
        assert combine(report(), captions) == combine(report(), captions, answer=None)
        assert combine(report(), captions) == combine(report(), captions, answer="no idea")
    assert combine(report()).scores == {"chart": 0.45, "screenshot": 0.55, "medical": 0.01}


def test_a_chart_answer_lifts_chart_over_the_line_and_is_quoted():
    result = combine(report(), answer="chart")
    assert result.flags == ["chart"]
    assert result.scores["chart"] == pytest.approx(0.858, abs=0.001)  # logit(0.45) + 2.0
    assert result.scores["screenshot"] < 0.5
    assert result.reasons["chart"] == "chart pixels; model answered \u201cchart\u201d"


def test_an_answer_adds_to_the_captions_and_cannot_flag_what_looks_like_nothing():
    captions = ["A line chart of prices."]
    both = combine(report(), captions, answer="chart").scores["chart"]
    assert both > combine(report(), captions).scores["chart"]
    assert combine(report(chart=0.001), answer="chart").flags == []


def test_a_photo_answer_lowers_every_score():
    plain = combine(report())
    photo = combine(report(), answer="A photo.")
    assert all(photo.scores[c] < plain.scores[c] for c in plain.scores)
    assert photo.flags == []


# --- the policy page --------------------------------------------------------------------------


def policy_url(project):
    return reverse("review:policy", kwargs={"slug": project.slug})


FORM = {"approvals_required": "1", "risky_approvals_required": "2", "risky_categories": ["chart"]}


@pytest.mark.django_db
def test_an_admin_turns_the_question_on_and_chooses_its_scope(client, project, admin):
    client.force_login(admin)
    page = client.get(policy_url(project)).content.decode()
    assert 'name="risk_ask_model"' in page and 'name="risk_ask_scope"' in page
    assert "one model call on the project's default chain" in page

    form = {**FORM, "risk_ask_model": "on", "risk_ask_scope": "all"}
    assert client.post(policy_url(project), form).status_code == 302
    policy = ReviewPolicy.objects.get(project=project)
    assert (policy.risk_ask_model, policy.risk_ask_scope) == (True, "all")

    # Unticked means off; a form without the scope keeps the stored one.
    assert client.post(policy_url(project), FORM).status_code == 302
    policy.refresh_from_db()
    assert (policy.risk_ask_model, policy.risk_ask_scope) == (False, "all")

    bad = client.post(policy_url(project), {**FORM, "risk_ask_scope": "everything"})
    assert bad.status_code == 200 and ReviewPolicy.objects.get().risk_ask_scope == "all"


@pytest.mark.django_db
def test_annotators_cannot_turn_the_question_on(client, project, annotator):
    client.force_login(annotator)
    assert client.get(policy_url(project)).status_code == 403
    form = {**FORM, "risk_ask_model": "on", "risk_ask_scope": "all"}
    assert client.post(policy_url(project), form).status_code == 403
    assert not ReviewPolicy.objects.filter(project=project, risk_ask_model=True).exists()
