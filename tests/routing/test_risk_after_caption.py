"""A caption that succeeds asks for the image's risk flags again (after commit, one message), so
what the model wrote counts as evidence; a caption that fails asks for nothing."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile

from review import tasks as review_tasks
from review.models import ReviewPolicy, RiskFlag
from routing.fakes import Reply
from routing.services.execute import caption_execute
from tests.factories import ImageFactory
from tests.review import risk_samples
from tests.routing.conftest import edenai_route, make_chain
from tests.routing.test_execute import chain_caption

pytestmark = pytest.mark.django_db(transaction=True)

RECOMPUTE = "review.tasks.risk_flags_compute"


def ct_image(project):
    buf = io.BytesIO()
    risk_samples.ct_slice().save(buf, format="PNG")
    return ImageFactory(project=project, file=ContentFile(buf.getvalue(), name="slice.png"))


def test_a_succeeded_caption_enqueues_one_recompute_that_reads_its_text(
    project, fake_edenai, broker
):
    # Pixels alone score a CT slice about 0.98: under this project's threshold for medical.
    ReviewPolicy.objects.create(project=project, risk_thresholds={"medical": 0.99})
    image = ct_image(project)
    review_tasks.risk_flags_compute(image.pk)
    before = RiskFlag.objects.get(image=image, category="medical")
    assert not before.flagged and before.image_score == before.score

    fake_edenai.script([Reply.success("A CT scan of the chest showing both lungs.")])
    caption = chain_caption(image, make_chain(project, [edenai_route(fake_edenai)]))
    assert caption_execute(caption_id=caption.pk) == "succeeded"

    message = {"image_id": image.pk, "reanalyse": False}
    assert broker.messages("default") == [(RECOMPUTE, message)]
    assert broker.messages("api") == []  # the flags never ride on the model-call queue

    # What the worker on "default" does with that message: the stored image scores meet the
    # caption's words, and the file is not analysed again (it is not even there any more).
    image.file.delete(save=False)
    assert review_tasks.risk_flags_compute(**message) == 1
    medical = RiskFlag.objects.get(image=image, category="medical")
    assert medical.flagged and medical.score >= 0.99
    assert medical.image_score == before.image_score and medical.image_reason == before.reason
    assert "caption says" in medical.reason and "CT scan of the chest" in medical.reason


def test_without_stored_image_scores_the_file_is_analysed(project):
    image = ct_image(project)
    review_tasks.risk_flags_compute(image.pk)
    RiskFlag.objects.filter(image=image).update(image_score=None)  # rows from before they were kept
    review_tasks.risk_flags_compute(image.pk, reanalyse=False)
    medical = RiskFlag.objects.get(image=image, category="medical")
    assert medical.image_score is not None and medical.image_score == medical.score


def test_a_failed_caption_enqueues_nothing(project, fake_edenai, broker):
    image = ct_image(project)
    fake_edenai.script([], default="401")
    caption = chain_caption(image, make_chain(project, [edenai_route(fake_edenai)]))
    assert caption_execute(caption_id=caption.pk) == "failed"
    assert broker.messages("default") == []


def test_a_batch_of_captions_asks_once_for_all_its_images(project, fake_edenai, broker):
    from routing import tasks as routing_tasks

    chain = make_chain(project, [edenai_route(fake_edenai)])
    images = [ct_image(project) for _ in range(3)]
    fake_edenai.script([Reply.success("An X-ray of a hand.")] * 3)
    captions = [chain_caption(image, chain) for image in images]

    routing_tasks.caption_images(caption_ids=[c.pk for c in captions])

    ids = sorted(image.pk for image in images)
    many = "review.tasks.risk_flags_compute_many"
    assert broker.messages("default") == [(many, {"image_ids": ids, "reanalyse": False})]
    assert review_tasks.risk_flags_compute_many(image_ids=ids, reanalyse=False) == 3
