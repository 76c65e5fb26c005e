"""Flags stored per image: computed from the file and captions, recomputed on a new analyser
version, corrected by admins, and driving the review queue."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from review.models import ReviewItem, RiskFlag
from review.risk import ANALYSER_VERSION, analyse
from review.services import risk
from review.services.items import review_items_sync
from review.tasks import risk_flags_compute as compute_task
from tests.factories import CaptionFactory, ImageFactory, ProjectFactory, UserFactory

from . import risk_samples

pytestmark = pytest.mark.django_db


def stored(project, pil_image, name="img.png"):
    buf = io.BytesIO()
    pil_image.save(buf, format="PNG")
    return ImageFactory(project=project, file=ContentFile(buf.getvalue(), name=name))


def flags_of(image):
    return {f.category: f for f in RiskFlag.objects.filter(image=image)}


def test_a_stored_chart_gets_three_rows_with_version_and_only_chart_flagged():
    image = stored(ProjectFactory(), risk_samples.chart_png("bar"))
    risk.risk_flags_compute(image=image)
    rows = flags_of(image)
    assert set(rows) == {"chart", "screenshot", "medical"}
    assert [c for c, f in rows.items() if f.flagged] == ["chart"]
    assert all(f.analyser_version == ANALYSER_VERSION for f in rows.values())
    assert rows["chart"].score >= 0.8 and rows["chart"].reason


def test_computing_twice_keeps_one_row_per_category_and_the_task_reports_flags():
    image = stored(ProjectFactory(), risk_samples.ct_slice())
    assert compute_task(image.pk) == 1
    assert compute_task(image.pk) == 1
    assert RiskFlag.objects.filter(image=image).count() == 3
    assert flags_of(image)["medical"].flagged
    assert compute_task(999_999_999) == 0  # a deleted image is not an error


def test_captions_are_read_after_captioning_and_can_tip_a_borderline_image():
    project = ProjectFactory()
    image = stored(project, risk_samples.ct_slice())
    risk.risk_flags_compute(image=image, thresholds={"medical": 0.99})
    before = flags_of(image)["medical"]
    assert not before.flagged  # scores about 0.98 from pixels alone
    CaptionFactory(image=image, text="a ct scan of the chest showing the lungs")
    risk.risk_flags_compute(image=image, thresholds={"medical": 0.99})
    after = flags_of(image)["medical"]
    assert after.score > before.score
    assert after.flagged
    assert "caption says" in after.reason


@override_settings(RISK_THRESHOLDS={"screenshot": 0.99, "medical": "nonsense"})
def test_thresholds_come_from_settings_and_ignore_invalid_values():
    project = ProjectFactory()
    assert risk.risk_thresholds_for(project=project) == {
        "chart": 0.5,
        "screenshot": 0.99,
        "medical": 0.5,
    }
    # a terminal window: flagged as a screenshot at the default 0.5, not at the setting's 0.99
    terminal = risk_samples.terminal_png()
    score = analyse(terminal).scores["screenshot"]
    assert 0.5 <= score < 0.99, f"the sample no longer sits between the two thresholds ({score})"
    image = stored(project, terminal)
    risk.risk_flags_compute(image=image)
    assert not flags_of(image)["screenshot"].flagged


def test_an_unreadable_file_gets_unflagged_rows_saying_why():
    image = ImageFactory(project=ProjectFactory(), file=ContentFile(b"junk", name="x.png"))
    risk.risk_flags_compute(image=image)
    rows = flags_of(image)
    assert not any(f.flagged for f in rows.values())
    assert "could not be analysed" in rows["chart"].reason


@pytest.fixture
def enqueued(monkeypatch):
    """What the refresh enqueues, instead of publishing it: a list of image-id lists."""
    from django.core.cache import cache

    from review import tasks

    cache.delete(risk.REFRESH_CURSOR)
    sent: list[list[int]] = []
    monkeypatch.setattr(
        tasks.risk_flags_compute_many,
        "delay_on_commit",
        lambda *, image_ids: sent.append(list(image_ids)),
    )
    yield sent
    cache.delete(risk.REFRESH_CURSOR)


def test_flags_from_an_older_analyser_version_are_found_and_recomputed(enqueued):
    from review.tasks import risk_flags_compute_many

    project = ProjectFactory()
    fresh = stored(project, risk_samples.photo())
    old = stored(project, risk_samples.screenshot_png())
    never = stored(project, risk_samples.chart_png("bar"))
    risk.risk_flags_compute(image=fresh)
    risk.risk_flags_compute(image=old)
    RiskFlag.objects.filter(image=old).update(analyser_version="risk-0.1")
    assert risk.risk_flags_stale() == [old.pk, never.pk]
    assert risk.risk_flags_stale(after_id=old.pk) == [never.pk]
    assert risk.risk_flags_refresh_stale() == 2
    assert enqueued == [[old.pk, never.pk]]  # one message for the batch
    # what the worker does with it: the images are analysed again by this version
    risk_flags_compute_many(image_ids=enqueued[0])
    assert risk.risk_flags_stale() == []
    assert flags_of(old)["screenshot"].flagged
    assert flags_of(old)["screenshot"].analyser_version == ANALYSER_VERSION


def test_the_refresh_carries_on_after_the_last_image_it_enqueued(enqueued, monkeypatch):
    # ticks that come before earlier messages are done do not enqueue the same images again;
    # past the last image the refresh starts over, which picks up any message that was lost
    monkeypatch.setattr(risk, "REFRESH_CHUNK", 1)
    project = ProjectFactory()
    a, b, c = (stored(project, risk_samples.photo(), f"{n}.png") for n in "abc")
    assert risk.risk_flags_refresh_stale(limit=2) == 2
    assert enqueued == [[a.pk], [b.pk]]
    assert risk.risk_flags_refresh_stale(limit=2) == 1
    assert enqueued[2:] == [[c.pk]]
    assert risk.risk_flags_refresh_stale(limit=2) == 2  # nothing after c: from the start again
    assert enqueued[3:] == [[a.pk], [b.pk]]
    for image in (a, b, c):
        risk.risk_flags_compute(image=image)
    assert risk.risk_flags_refresh_stale(limit=2) == 0
    assert len(enqueued) == 5


@override_settings(RISK_REFRESH_PER_TICK=1)
def test_the_batch_per_tick_comes_from_settings(enqueued):
    project = ProjectFactory()
    stored(project, risk_samples.photo(), "a.png")
    stored(project, risk_samples.photo(), "b.png")
    assert risk.risk_flags_refresh_stale() == 1


def test_a_flagged_image_is_served_first_and_needs_the_stricter_review():
    project = ProjectFactory()
    plain = stored(project, risk_samples.photo(), "cat.png")
    chart = stored(project, risk_samples.chart_png("bar"), "chart.png")
    CaptionFactory(image=plain, text="a cat looking at the camera")
    CaptionFactory(image=chart, text="a picture with some colours")
    review_items_sync(project=project)
    item = ReviewItem.objects.get(image=chart)
    assert not item.risky and item.priority == 0
    risk.risk_flags_compute(image=plain)
    risk.risk_flags_compute(image=chart)
    item.refresh_from_db()
    assert item.risky and item.priority > 0 and item.required >= 2
    first = ReviewItem.objects.filter(project=project).order_by("-priority", "queued_at", "id")[0]
    assert first.image_id == chart.pk
    assert not ReviewItem.objects.get(image=plain).risky


def test_admin_corrections_override_the_analyser_are_kept_and_counted():
    project = ProjectFactory()
    admin = UserFactory(username="risk-admin")
    chart = stored(project, risk_samples.chart_png("bar"))
    cat = stored(project, risk_samples.photo())
    CaptionFactory(image=chart, text="a picture")
    review_items_sync(project=project)
    risk.risk_flags_compute(image=chart)
    risk.risk_flags_compute(image=cat)
    assert ReviewItem.objects.get(image=chart).risky

    risk.risk_flag_correct(image=chart, category="chart", flagged=False, by=admin, note="logo")
    assert not ReviewItem.objects.get(image=chart).risky  # the queue follows the admin
    assert flags_of(chart)["chart"].flagged  # the analyser's own view is kept for comparison
    risk.risk_flag_correct(image=cat, category="medical", flagged=True, by=admin)
    risk.risk_flag_correct(image=chart, category="chart", flagged=True, by=admin)

    counts = risk.risk_corrections_count(project=project)
    assert counts["chart"] == {"added": 0, "removed": 1, "confirmed": 1}
    assert counts["medical"] == {"added": 1, "removed": 0, "confirmed": 0}
    assert counts["screenshot"] == {"added": 0, "removed": 0, "confirmed": 0}
    with pytest.raises(ValueError):
        risk.risk_flag_correct(image=cat, category="photo", flagged=True, by=admin)
