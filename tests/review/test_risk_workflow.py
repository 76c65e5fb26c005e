"""Risk flags in the workflow: admins see and correct them on the image page, the queue follows
a correction at once, corrections are counted on the project page, and per-project thresholds
re-apply to the project's flags in background chunks."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Membership
from review import tasks
from review.models import ReviewItem, ReviewPolicy, RiskCorrection, RiskFlag
from review.risk import ANALYSER_VERSION
from review.services import queue, risk
from review.services.items import review_items_sync
from review.services.verdict import verdict_submit
from tests.factories import CaptionFactory, ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(broker_space):
    """Publish to this test's own Redis key prefix and read what was enqueued:
    ``broker.messages("default")`` -> [(task name, kwargs)], oldest first."""
    return broker_space


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def store_flags(image, **scores):
    """Current-version analyser rows, flagged at the default 0.5."""
    for category in ("chart", "screenshot", "medical"):
        score = scores.get(category, 0.1)
        RiskFlag.objects.update_or_create(
            image=image,
            category=category,
            defaults={
                "score": score,
                "flagged": score >= 0.5,
                "reason": f"{category} evidence",
                "analyser_version": ANALYSER_VERSION,
            },
        )


def correct_url(image):
    return reverse("review:risk-correct", kwargs={"pk": image.pk})


def detail_url(image):
    return reverse("labeling:image-detail", kwargs={"pk": image.pk})


# --- the image page ----------------------------------------------------------------------------


def test_image_page_shows_every_category_with_score_reason_and_the_admin_correction(
    project, project_admin, annotator
):
    image = ImageFactory(project=project)
    store_flags(image, chart=0.91)
    RiskFlag.objects.filter(image=image, category="chart").update(
        reason="<b>bars</b> and axes found"
    )
    risk.risk_flag_correct(
        image=image,
        category="medical",
        flagged=True,
        by=project_admin,
        note="<script>alert(1)</script> dermatology",
    )

    page = login(project_admin).get(detail_url(image)).content.decode()
    assert "Chart" in page and "Screenshot" in page and "Medical-looking" in page
    assert "0.91" in page and "&lt;b&gt;bars&lt;/b&gt; and axes found" in page
    assert "corrected by pam" in page and "analyser said not flagged" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; dermatology" in page
    assert "<script>alert(1)" not in page
    assert page.count('action="' + correct_url(image) + '"') == 3
    assert "csrfmiddlewaretoken" in page

    seen_by_annotator = login(annotator).get(detail_url(image)).content.decode()
    assert "0.91" in seen_by_annotator and "corrected by pam" in seen_by_annotator
    assert correct_url(image) not in seen_by_annotator  # no forms for annotators


def test_only_project_admins_may_correct_and_only_by_post_with_csrf(
    project, project_admin, admin, annotator, outsider
):
    image = ImageFactory(project=project)
    store_flags(image, chart=0.9)
    data = {"category": "chart", "flagged": "0", "note": "a logo, not a chart"}

    assert login(outsider).post(correct_url(image), data).status_code == 404
    assert login(annotator).post(correct_url(image), data).status_code == 403
    assert login(project_admin).get(correct_url(image)).status_code == 405
    anonymous = Client().post(correct_url(image), data)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(project_admin)
    assert strict.post(correct_url(image), data).status_code == 403
    assert not RiskCorrection.objects.exists()

    response = login(project_admin).post(correct_url(image), data)
    assert response.status_code == 302 and response["Location"] == detail_url(image)
    correction = RiskCorrection.objects.get()
    assert (correction.category, correction.flagged, correction.note) == (
        "chart",
        False,
        "a logo, not a chart",
    )
    assert correction.corrected_by == project_admin

    login(admin).post(correct_url(image), {"category": "medical", "flagged": "1"})  # superuser
    assert RiskCorrection.objects.filter(category="medical", corrected_by=admin).exists()

    for bad in ({"category": "photo", "flagged": "1"}, {"category": "chart", "flagged": "maybe"}):
        assert login(project_admin).post(correct_url(image), bad).status_code == 302
    assert RiskCorrection.objects.count() == 2


# --- the queue follows a correction ------------------------------------------------------------


def test_an_item_corrected_to_risky_is_served_first_and_needs_two_approvals(
    project, project_admin, make_items, make_reviewers
):
    older, corrected = make_items(project, 2)
    assert (corrected.risky, corrected.required, corrected.priority) == (False, 1, 0)

    login(project_admin).post(
        correct_url(corrected.image), {"category": "medical", "flagged": "1", "note": "x-ray"}
    )
    corrected.refresh_from_db()
    assert (corrected.risky, corrected.required, corrected.priority) == (True, 2, 1)

    first, second = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=first)
    assert lease.item_id == corrected.pk  # ahead of the older, ordinary item
    verdict_submit(lease=lease, reviewer=first, decision="accept", idempotency_key=uuid.uuid4())
    corrected.refresh_from_db()
    assert corrected.state == ReviewItem.State.OPEN and corrected.reviews_done == 1

    lease = queue.lease_claim_next(project=project, reviewer=second)
    assert lease.item_id == corrected.pk
    verdict_submit(lease=lease, reviewer=second, decision="accept", idempotency_key=uuid.uuid4())
    corrected.refresh_from_db()
    assert corrected.state == ReviewItem.State.APPROVED
    older.refresh_from_db()
    assert older.state == ReviewItem.State.OPEN and not older.risky


def test_an_item_corrected_to_not_risky_is_decided_by_the_review_it_already_has(
    project, project_admin, make_items, make_reviewers
):
    [item] = make_items(project, 1, risky=True)
    assert item.required == 2
    [reviewer] = make_reviewers(project, 1)
    lease = queue.lease_claim_next(project=project, reviewer=reviewer)
    verdict_submit(lease=lease, reviewer=reviewer, decision="accept", idempotency_key=uuid.uuid4())

    login(project_admin).post(correct_url(item.image), {"category": "chart", "flagged": "0"})
    item.refresh_from_db()
    assert (item.risky, item.required, item.state) == (False, 1, ReviewItem.State.APPROVED)


# --- counted corrections on the project page ---------------------------------------------------


def test_project_page_counts_corrections_per_category_for_admins_only(
    project, project_admin, annotator
):
    charts = [ImageFactory(project=project) for _ in range(3)]
    for image in charts:
        store_flags(image, chart=0.9)
    plain = ImageFactory(project=project)
    store_flags(plain)
    for image in charts[:2]:
        risk.risk_flag_correct(image=image, category="chart", flagged=False, by=project_admin)
    risk.risk_flag_correct(image=charts[2], category="chart", flagged=True, by=project_admin)
    risk.risk_flag_correct(image=plain, category="medical", flagged=True, by=project_admin)

    url = reverse("labeling:project-detail", kwargs={"slug": project.slug})
    page = login(project_admin).get(url).content.decode()
    assert "Risk flag corrections" in page
    assert "<tr><td>Chart</td><td>0</td><td>2</td><td>1</td></tr>" in page
    assert "<tr><td>Medical-looking</td><td>1</td><td>0</td><td>0</td></tr>" in page
    assert "<tr><td>Screenshot</td><td>0</td><td>0</td><td>0</td></tr>" in page
    assert "Risk flag corrections" not in login(annotator).get(url).content.decode()


# --- per-project thresholds --------------------------------------------------------------------


def policy_post(client, project, **thresholds):
    data = {"approvals_required": "1", "risky_approvals_required": "2"}
    data["risky_categories"] = ["chart", "screenshot", "medical"]
    data["risky_first"] = "on"
    data.update({f"threshold_{k}": v for k, v in thresholds.items()})
    return client.post(reverse("review:policy", kwargs={"slug": project.slug}), data)


def test_thresholds_are_validated_saved_and_trigger_one_recompute(
    project, project_admin, annotator, broker, django_capture_on_commit_callbacks
):
    client = login(project_admin)
    page = client.get(reverse("review:policy", kwargs={"slug": project.slug})).content.decode()
    assert 'name="threshold_chart"' in page and 'placeholder="0.5"' in page

    for bad in ("1.5", "-0.1", "nan", "lots"):
        response = policy_post(client, project, chart=bad)
        assert response.status_code == 200
    assert not ReviewPolicy.objects.exists()
    assert policy_post(login(annotator), project, chart="0.9").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        assert policy_post(client, project, chart="0.95", medical="").status_code == 302
    assert ReviewPolicy.objects.get(project=project).risk_thresholds == {"chart": 0.95}
    assert risk.risk_thresholds_for(project=project)["chart"] == 0.95
    recompute = ("review.tasks.risk_flags_apply_thresholds", {"project_id": project.pk})
    assert broker.messages("default").count(recompute) == 1

    with django_capture_on_commit_callbacks(execute=True):
        policy_post(client, project, chart="0.95")  # unchanged: nothing to recompute
    assert broker.messages("default").count(recompute) == 1
    page = client.get(reverse("review:policy", kwargs={"slug": project.slug})).content.decode()
    assert 'value="0.95"' in page


def test_changed_thresholds_reapply_to_stored_scores_in_chunks_and_the_queue_follows(
    project, broker, django_capture_on_commit_callbacks
):
    images = [ImageFactory(project=project) for _ in range(3)]
    store_flags(images[0], chart=0.9)
    store_flags(images[1], chart=0.7)
    store_flags(images[2], chart=0.7)
    RiskFlag.objects.filter(image=images[2]).update(analyser_version="risk-0.1")
    never = ImageFactory(project=project)  # no flags yet
    for image in images + [never]:
        CaptionFactory(image=image, text="a picture")
    review_items_sync(project=project)
    assert ReviewItem.objects.get(image=images[1]).risky
    ReviewPolicy.objects.create(project=project, risk_thresholds={"chart": 0.8})

    with django_capture_on_commit_callbacks(execute=True):
        assert risk.risk_flags_apply_thresholds(project=project, chunk=3) == 3
    flags = {f.image_id: f.flagged for f in RiskFlag.objects.filter(category="chart")}
    assert flags[images[0].pk] is True
    assert flags[images[1].pk] is False  # 0.7 is under the project's 0.8 now
    assert flags[images[2].pk] is True  # an older analyser's row is left for a full analysis
    assert not ReviewItem.objects.get(image=images[1]).risky
    assert ReviewItem.objects.get(image=images[0]).risky
    assert broker.messages("default") == [
        ("review.tasks.risk_flags_compute", {"image_id": images[2].pk}),
        (
            "review.tasks.risk_flags_apply_thresholds",
            {"project_id": project.pk, "after_id": images[2].pk},
        ),
    ]
    # The next chunk (what the enqueued task runs) analyses the image that had no flags.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.risk_flags_apply_thresholds(project.pk, after_id=images[2].pk) == 1
    assert broker.messages("default")[-1] == (
        "review.tasks.risk_flags_compute",
        {"image_id": never.pk},
    )
    assert tasks.risk_flags_apply_thresholds(project.pk, after_id=never.pk) == 0
    assert tasks.risk_flags_apply_thresholds(999_999_999) == 0


def test_unreadable_images_stay_unflagged_even_at_a_zero_threshold(project):
    from django.core.files.base import ContentFile

    image = ImageFactory(project=project, file=ContentFile(b"junk", name="x.png"))
    risk.risk_flags_compute(image=image)
    ReviewPolicy.objects.create(project=project, risk_thresholds={"chart": 0.0})
    risk.risk_flags_apply_thresholds(project=project)
    assert not RiskFlag.objects.filter(image=image, flagged=True).exists()


def test_a_user_with_no_membership_gets_404_on_the_image_page(project, outsider):
    image = ImageFactory(project=project)
    assert login(outsider).get(detail_url(image)).status_code == 404
