"""The review pages: roles, CSRF, the no-JavaScript flow and the htmx flow."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Membership
from review.models import Lease, ReviewItem, ReviewPolicy, Verdict
from review.services import queue
from review.services.verdict import verdict_submit
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def work_url(project):
    return reverse("review:work", kwargs={"slug": project.slug})


def verdict_post(client, lease, decision="accept", key=None, htmx=False, **fields):
    data = {"decision": decision, "idempotency_key": str(key or uuid.uuid4()), **fields}
    return client.post(
        reverse("review:verdict", kwargs={"pk": lease.pk}), data, **(HTMX if htmx else {})
    )


def test_every_page_needs_a_login(client, project):
    for url in [
        reverse("review:queue-list"),
        work_url(project),
        reverse("review:leases", kwargs={"slug": project.slug}),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.post(reverse("review:next", kwargs={"slug": project.slug})).status_code == 302


def test_annotators_see_only_their_projects(client_for, project, annotator, outsider, make_items):
    other = ProjectFactory(name="Hidden project", slug="hidden")
    make_items(project, 1)
    make_items(other, 1)

    page = client_for(annotator).get(reverse("review:queue-list")).content.decode()
    assert "Street photos" in page and "Hidden project" not in page
    assert client_for(annotator).get(work_url(other)).status_code == 404
    assert (
        client_for(annotator).post(reverse("review:next", kwargs={"slug": "hidden"})).status_code
        == 404
    )
    assert client_for(outsider).get(work_url(project)).status_code == 404


def test_nobody_can_act_on_someone_elses_lease(client_for, project, make_items, make_reviewers):
    make_items(project, 1)
    owner, other = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=owner)
    client = client_for(other)

    assert verdict_post(client, lease).status_code == 404
    assert client.post(reverse("review:heartbeat", kwargs={"pk": lease.pk})).status_code == 404
    assert client.post(reverse("review:lease-release", kwargs={"pk": lease.pk})).status_code == 403
    assert Verdict.objects.count() == 0
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.ACTIVE


def test_admin_pages_are_for_admins(client_for, project, annotator, admin, make_items):
    make_items(project, 1)
    urls = [
        reverse("review:leases", kwargs={"slug": project.slug}),
        reverse("review:adjudication", kwargs={"slug": project.slug}),
        reverse("review:policy", kwargs={"slug": project.slug}),
    ]
    for url in urls:
        assert client_for(annotator).get(url).status_code == 403
    for url in urls:
        assert client_for(admin).get(url).status_code == 200
    # A project admin (not a site admin) manages their own project only.
    lead = Membership.objects.create(
        project=project,
        user=admin.__class__.objects.create_user("lead", password="x" * 12),
        role=Membership.Role.ADMIN,
    ).user
    assert client_for(lead).get(urls[0]).status_code == 200


def test_posts_need_a_csrf_token(project, annotator, make_items):
    make_items(project, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post(reverse("review:next", kwargs={"slug": project.slug})).status_code == 403
    assert Lease.objects.count() == 0


def test_the_screen_works_without_javascript(client_for, project, annotator, make_items):
    first, second = make_items(
        project, 2, texts=["<script>alert(1)</script> a cat", "A tram at night."]
    )
    client = client_for(annotator)

    start = client.get(work_url(project)).content.decode()
    assert "Start reviewing" in start and 'method="post"' in start

    response = client.post(reverse("review:next", kwargs={"slug": project.slug}))
    assert response.status_code == 302
    page = client.get(work_url(project)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a cat" in page
    assert "<script>alert(1)" not in page
    assert "Model hidden for this project" in page
    # The thumbnail paints first; the full-size copy is named for the script to swap in.
    thumb = reverse("labeling:image-thumb", kwargs={"pk": first.image_id, "size": "large"})
    assert f'src="{thumb}"' in page
    assert f'data-full="{reverse("labeling:image-display", kwargs={"pk": first.image_id})}"' in page
    lease = Lease.objects.get(reviewer=annotator)

    response = verdict_post(client, lease, "edit", text="A cat on a sofa.", time_spent_ms="1500")
    assert response.status_code == 302 and response["Location"] == work_url(project)
    page = client.get(work_url(project)).content.decode()
    assert "A tram at night." in page  # the next item is already there
    assert "Undo" in page
    verdict = Verdict.objects.get()
    assert (verdict.decision, verdict.final_text, verdict.time_spent_ms) == (
        "edit",
        "A cat on a sofa.",
        1500,
    )

    # Reopening the page shows the same lease, not a new item.
    current = Lease.objects.get(reviewer=annotator, state="active")
    assert current.item == second
    assert f'data-lease="{current.pk}"' in client.get(work_url(project)).content.decode()
    assert Lease.objects.filter(reviewer=annotator, state="active").count() == 1


def test_htmx_gets_the_next_item_in_place(client_for, project, annotator, make_items):
    make_items(project, 2, texts=["A red kite.", "A blue boat."])
    client = client_for(annotator)
    response = client.post(reverse("review:next", kwargs={"slug": project.slug}), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("{#") is False and 'id="review-item"' in body
    assert "<html" not in body and "A red kite." in body
    lease = Lease.objects.get(reviewer=annotator)

    response = verdict_post(client, lease, "reject", htmx=True, reasons=["wrong_subject", "unsafe"])
    body = response.content.decode()
    assert response.status_code == 200 and response["HX-Trigger"] == "verdict-saved"
    assert "A blue boat." in body and "Undo" in body
    assert Verdict.objects.get().reasons == ["wrong_subject", "unsafe"]


def test_a_double_submitted_form_saves_once(client_for, project, annotator, make_items):
    make_items(project, 3)
    client = client_for(annotator)
    lease = queue.lease_claim_next(project=project, reviewer=annotator)
    key = uuid.uuid4()

    first = verdict_post(client, lease, key=key, htmx=True)
    second = verdict_post(client, lease, key=key, htmx=True)

    assert first.status_code == second.status_code == 200
    assert Verdict.objects.count() == 1
    assert Lease.objects.filter(reviewer=annotator).count() == 2  # this one and the next


def test_an_invalid_verdict_keeps_what_was_typed(client_for, project, annotator, make_items):
    make_items(project, 1)
    client = client_for(annotator)
    lease = queue.lease_claim_next(project=project, reviewer=annotator)

    response = verdict_post(client, lease, "reject", note="half a thought <b>")
    body = response.content.decode()
    assert response.status_code == 400
    assert "Pick at least one reason" in body and "half a thought &lt;b&gt;" in body
    assert Verdict.objects.count() == 0


def test_a_lost_lease_shows_the_text_back(client_for, project, make_items, make_reviewers):
    make_items(project, 1)
    slow, fast = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=slow)
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    other = queue.lease_claim_next(project=project, reviewer=fast)
    verdict_submit(lease=other, reviewer=fast, decision="accept", idempotency_key=uuid.uuid4())

    response = verdict_post(client_for(slow), lease, "edit", text="My <i>precious</i> words.")

    body = response.content.decode()
    assert response.status_code == 409
    assert "Your verdict was not saved" in body
    assert "My &lt;i&gt;precious&lt;/i&gt; words." in body
    assert Verdict.objects.filter(reviewer=slow).count() == 0


def test_heartbeat_and_undo_through_the_pages(client_for, project, annotator, make_items):
    first, _ = make_items(project, 2)
    client = client_for(annotator)
    lease = queue.lease_claim_next(project=project, reviewer=annotator)

    beat = client.post(reverse("review:heartbeat", kwargs={"pk": lease.pk}), **HTMX)
    assert beat.status_code == 200 and "no longer reserved" not in beat.content.decode()

    verdict_post(client, lease, htmx=True)
    verdict = Verdict.objects.get()
    response = client.post(reverse("review:undo", kwargs={"pk": verdict.pk}), **HTMX)
    assert response.status_code == 200
    assert Verdict.objects.count() == 0
    assert ReviewItem.objects.get(pk=first.pk).state == "open"
    assert f'data-lease="{lease.pk}"' in response.content.decode()

    Lease.objects.filter(pk=lease.pk).update(state=Lease.State.RELEASED)
    beat = client.post(reverse("review:heartbeat", kwargs={"pk": lease.pk}), **HTMX)
    assert "no longer reserved" in beat.content.decode()


def test_admins_release_and_reassign_from_the_leases_page(
    client_for, project, admin, make_items, make_reviewers
):
    item = make_items(project, 1)[0]
    a, b = make_reviewers(project, 2)
    lease = queue.lease_claim_next(project=project, reviewer=a)
    client = client_for(admin)

    page = client.get(reverse("review:leases", kwargs={"slug": project.slug})).content.decode()
    assert a.username in page

    response = client.post(
        reverse("review:lease-reassign", kwargs={"pk": lease.pk}), {"reviewer": b.pk}
    )
    assert response.status_code == 302
    moved = Lease.objects.get(state="active")
    assert (moved.reviewer, moved.item) == (b, item)

    client.post(reverse("review:lease-release", kwargs={"pk": moved.pk}))
    assert not Lease.objects.filter(state="active").exists()


def test_adjudication_and_policy_pages(client_for, project, admin, make_items, make_reviewers):
    item = make_items(project, 1, risky=True, texts=["A line chart."])[0]
    a, b = make_reviewers(project, 2)
    for reviewer, text in [(a, "A line chart of prices."), (b, "A line chart of costs.")]:
        lease = queue.lease_claim_next(project=project, reviewer=reviewer)
        verdict_submit(
            lease=lease,
            reviewer=reviewer,
            decision="edit",
            text=text,
            idempotency_key=uuid.uuid4(),
        )
    client = client_for(admin)

    listing = client.get(reverse("review:adjudication", kwargs={"slug": project.slug}))
    assert "A line chart." in listing.content.decode()
    url = reverse("review:adjudicate", kwargs={"pk": item.pk})
    page = client.get(url).content.decode()
    assert "A line chart of prices." in page and "A line chart of costs." in page
    response = client.post(url, {"decision": "approve", "text": "A line chart of fuel prices."})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.final_text) == ("approved", "A line chart of fuel prices.")

    response = client.post(
        reverse("review:policy", kwargs={"slug": project.slug}),
        {
            "approvals_required": "2",
            "risky_approvals_required": "3",
            "risky_categories": ["chart", "medical"],
            "risky_first": "on",
        },
    )
    assert response.status_code == 302
    policy = ReviewPolicy.objects.get(project=project)
    assert (policy.approvals_required, policy.risky_approvals_required) == (2, 3)
    assert policy.risky_categories == ["chart", "medical"] and not policy.show_model_name
    bad = client.post(
        reverse("review:policy", kwargs={"slug": project.slug}),
        {"approvals_required": "9", "risky_approvals_required": "1"},
    )
    assert bad.status_code == 200 and ReviewPolicy.objects.get().approvals_required == 2
