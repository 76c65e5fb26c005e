"""Risk signal (c): a project that opts in asks its default chain, once per image, what kind of
image it is; the answer, when it comes back through the real execute path, moves the flags."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile

from review import tasks as review_tasks
from review.models import ReviewItem, ReviewPolicy, RiskFlag
from review.risk import analyse
from review.risk.captions import MODEL_ANSWER_WEIGHT, RISK_QUESTION, _logit
from review.services.items import review_items_sync
from routing.fakes import Reply
from routing.models import Caption, ModelCall
from routing.services.execute import caption_execute
from tests.factories import ImageFactory
from tests.review import risk_samples
from tests.routing.conftest import edenai_route, make_chain
from tests.routing.test_execute import chain_caption

pytestmark = pytest.mark.django_db(transaction=True)

ASK = "routing.tasks.caption_image"
RECOMPUTE = "review.tasks.risk_flags_compute"


def stored(project, picture, name):
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return ImageFactory(project=project, file=ContentFile(buf.getvalue(), name=name))


@pytest.fixture
def chat_image(project):
    """A phone chat screen the size of a thumbnail (a fifth: 216x444): screenshot about 0.35
    from pixels alone (risk-2.3; a quarter, 0.19, fell under the floor), under the default 0.5:
    borderline, so a project that opted in asks about it."""
    chat = risk_samples.phone_chat_png()
    picture = chat.resize((chat.width // 5, chat.height // 5))
    screenshot = analyse(picture).scores["screenshot"]
    assert 0.2 <= screenshot < 0.5, f"the sample is no longer borderline ({screenshot})"
    return stored(project, picture, "chat.png")


@pytest.fixture
def full_chat_image(project):
    """The full-size chat screen: a flagged screenshot that leans a little toward chart."""
    return stored(project, risk_samples.phone_chat_png(), "chat-full.png")


@pytest.fixture
def opted_in(project):
    return ReviewPolicy.objects.create(project=project, risk_ask_model=True)


def questions(image):
    return list(Caption.objects.filter(image=image, task="question", prompt=RISK_QUESTION))


def flags(image):
    return {f.category: f for f in RiskFlag.objects.filter(image=image)}


def answered(image, fake, broker, text):
    """Import-time flags ask the question (of every image: what matters here is what the answer
    does); the fake answers ``text`` through caption_execute; the recompute that success asks for
    runs. Returns the flags before and after."""
    ReviewPolicy.objects.filter(project=image.project).update(
        risk_ask_scope=ReviewPolicy.AskScope.ALL
    )
    review_tasks.risk_flags_compute(image.pk)
    before = flags(image)
    (question,) = questions(image)
    broker.clear()
    fake.script([Reply.success(text)])
    assert caption_execute(caption_id=question.pk) == "succeeded"
    message = {"image_id": image.pk, "reanalyse": False}
    assert broker.messages("default") == [(RECOMPUTE, message)]
    review_tasks.risk_flags_compute(**message)
    return before, flags(image)


def test_without_the_opt_in_nothing_is_asked(project, chat_image, fake_edenai, broker):
    make_chain(project, [edenai_route(fake_edenai)])
    ReviewPolicy.objects.create(project=project)  # the default: off
    review_tasks.risk_flags_compute(chat_image.pk)
    assert questions(chat_image) == [] and broker.messages("api") == []
    assert fake_edenai.requests == []


def test_a_borderline_image_is_asked_once_on_the_default_chain(
    project, chat_image, opted_in, fake_edenai, broker
):
    make_chain(project, [edenai_route(fake_edenai)], name="other", is_default=False)
    default = make_chain(project, [edenai_route(fake_edenai)])
    review_tasks.risk_flags_compute(chat_image.pk)

    (question,) = questions(chat_image)
    assert (question.chain, question.status, question.params) == (default, "pending", {})
    assert broker.messages("api") == [(ASK, {"caption_id": question.pk})]
    assert broker.messages("default") == []

    # A second analysis (a retried task, a new analyser version) neither asks nor pays again.
    review_tasks.risk_flags_compute(chat_image.pk)
    assert questions(chat_image) == [question]
    assert broker.messages("api") == [(ASK, {"caption_id": question.pk})]
    # ... nor does the recompute after an ordinary caption.
    review_tasks.risk_flags_compute(chat_image.pk, reanalyse=False)
    assert len(questions(chat_image)) == 1 and fake_edenai.requests == []


def test_images_far_from_every_threshold_are_asked_only_with_scope_all(
    project, opted_in, fake_edenai, broker
):
    make_chain(project, [edenai_route(fake_edenai)])
    plain = stored(project, risk_samples.photo(), "photo.png")
    review_tasks.risk_flags_compute(plain.pk)
    assert questions(plain) == []

    opted_in.risk_ask_scope = ReviewPolicy.AskScope.ALL
    opted_in.save()
    review_tasks.risk_flags_compute(plain.pk)
    assert len(questions(plain)) == 1


def test_without_a_default_chain_nothing_is_asked(project, chat_image, opted_in, broker):
    flagged = review_tasks.risk_flags_compute(chat_image.pk)
    assert questions(chat_image) == [] and broker.messages("api") == []
    assert flagged == sum(f.flagged for f in flags(chat_image).values())


def test_a_chart_answer_lifts_the_chart_flag_and_is_quoted(
    project, full_chat_image, opted_in, fake_edenai, broker
):
    make_chain(project, [edenai_route(fake_edenai)])
    before, after = answered(full_chat_image, fake_edenai, broker, "Chart.")

    # The vendor was asked the question itself, and the call is logged and costed like any.
    (request,) = fake_edenai.requests
    assert RISK_QUESTION in json.dumps(request.json)
    (question,) = questions(full_chat_image)
    assert ModelCall.objects.filter(caption=question, status="succeeded").count() == 1

    assert not before["chart"].flagged and after["chart"].flagged
    assert after["chart"].score > before["chart"].score + 0.3
    assert after["chart"].image_score == before["chart"].image_score  # not analysed again
    assert "model answered \u201cChart.\u201d" in after["chart"].reason
    assert after["screenshot"].score < before["screenshot"].score


def test_a_photo_answer_lowers_every_score(project, full_chat_image, opted_in, fake_edenai, broker):
    make_chain(project, [edenai_route(fake_edenai)])
    before, after = answered(full_chat_image, fake_edenai, broker, "photo")
    for category in ("chart", "screenshot"):
        assert after[category].score < before[category].score
        assert "model answered \u201cphoto\u201d" in after[category].reason
    # one piece of evidence, not a veto: the screenshot (0.74 from its pixels) loses the answer's
    # weight in log-odds, half of MODEL_ANSWER_WEIGHT, and no more (scores have 3 places)
    drop = _logit(before["screenshot"].score) - _logit(after["screenshot"].score)
    assert abs(drop - 0.5 * MODEL_ANSWER_WEIGHT) < 0.2, drop
    assert after["medical"].score <= before["medical"].score


def test_an_answer_that_names_no_kind_changes_nothing(
    project, full_chat_image, opted_in, fake_edenai, broker
):
    make_chain(project, [edenai_route(fake_edenai)])
    before, after = answered(full_chat_image, fake_edenai, broker, "Mostly green and white.")
    for category, flag in after.items():
        assert (flag.score, flag.flagged) == (before[category].score, before[category].flagged)
        assert "model answered" not in flag.reason


def test_the_question_never_enters_the_review_queue(
    project, full_chat_image, opted_in, fake_edenai, broker
):
    chain = make_chain(project, [edenai_route(fake_edenai)])
    answered(full_chat_image, fake_edenai, broker, "chart")
    fake_edenai.script([Reply.success("A chat between two friends on a phone.")])
    caption = chain_caption(full_chat_image, chain)
    assert caption_execute(caption_id=caption.pk) == "succeeded"

    assert review_items_sync(project=project) == 1
    assert list(ReviewItem.objects.values_list("caption_id", flat=True)) == [caption.pk]
    # A project whose own task is a question still gets its questions reviewed.
    own = Caption.objects.create(
        image=full_chat_image,
        chain=chain,
        task="question",
        prompt="What app is this?",
        status="succeeded",
        text="WhatsApp",
    )
    assert review_items_sync(project=project) == 1
    assert ReviewItem.objects.filter(caption=own).exists()
