"""The admin pages from a script: routes (create, edit, enable, disable, delete), the team
(accounts and roles, with the last-admin rule), review leases and bulk corrections, a reviewer's
own verdicts and queue counts, closing an import batch. Each write goes through the same form and
service as its page."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from labeling.models import Membership
from routing.models import Route


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


# --- routes ---------------------------------------------------------------------------------


def test_a_site_admin_creates_edits_disables_and_deletes_a_route(admin, project_admin, client_for):
    api = client_for(admin)
    created = api.post(
        reverse("api:route-list"),
        {
            "name": "llava-13b",
            "provider": "replicate",
            "model": "yorickvp/llava-13b",
            "usd_per_call": "0.0040",
            "timeout_s": 45,
            "max_attempts": 3,
            "expected_seconds": 4.0,
        },
        format="json",
    )
    assert created.status_code == 201, created.data
    pk = created.data["id"]
    assert created.data["enabled"] is True

    # PATCH keeps what it does not name, as the page's edit does.
    edited = api.patch(
        reverse("api:route-detail", args=[pk]), {"usd_per_call": "0.0050"}, format="json"
    )
    assert edited.status_code == 200, edited.data
    route = Route.objects.get(pk=pk)
    assert str(route.usd_per_call).startswith("0.005")
    assert route.timeout_s == 45 and route.model == "yorickvp/llava-13b" and route.enabled

    disabled = api.post(reverse("api:route-disable", args=[pk]))
    assert disabled.status_code == 200 and disabled.data["enabled"] is False
    # What the routes page says of it.
    assert (disabled.data["usable"], disabled.data["usable_detail"]) == (False, "Disabled.")
    assert Route.objects.get(pk=pk).enabled is False
    assert api.post(reverse("api:route-disable", args=[pk])).data["enabled"] is False
    enabled = api.post(reverse("api:route-enable", args=[pk]))
    assert enabled.status_code == 200 and Route.objects.get(pk=pk).enabled is True

    # A project's admin reads the routes (to build chains from their ids), as the routes page
    # shows them, but cannot change a shared route.
    other = client_for(project_admin)
    assert pk in [r["id"] for r in other.get(reverse("api:route-list")).data["results"]]
    assert other.get(reverse("api:route-detail", args=[pk])).data["name"] == "llava-13b"
    refused = other.patch(reverse("api:route-detail", args=[pk]), {"timeout_s": 5}, format="json")
    assert refused.status_code == 403 and "site admins" in str(refused.data)
    for response in (
        other.post(reverse("api:route-disable", args=[pk])),
        other.delete(reverse("api:route-detail", args=[pk])),
    ):
        assert response.status_code == 403
    assert Route.objects.get(pk=pk).enabled is True

    assert api.delete(reverse("api:route-detail", args=[pk])).status_code == 204
    assert not Route.objects.filter(pk=pk).exists()
    assert api.delete(reverse("api:route-detail", args=[pk])).status_code == 404
    assert api.post(reverse("api:route-enable", args=[pk])).status_code == 404


def test_a_used_route_is_not_deleted_and_the_409_says_why(admin, client_for):
    from tests.factories import CaptionFactory, RouteFactory

    route = RouteFactory(name="used-once")
    CaptionFactory(route=route)
    response = client_for(admin).delete(reverse("api:route-detail", args=[route.pk]))
    assert response.status_code == 409
    assert "disable" in response.data["detail"].lower()
    assert Route.objects.filter(pk=route.pk).exists()


# --- team -----------------------------------------------------------------------------------


def test_an_admin_creates_accounts_with_a_password_or_a_link_shown_once(
    project, project_admin, client_for, django_user_model
):
    from django.core import mail

    from labeling.services.team import invitation_find

    api = client_for(project_admin)
    url = reverse("api:account-list", args=[project.slug])
    with_password = api.post(
        url,
        {"username": "olga", "role": "annotator", "password": "long-and-unusual-42"},
        format="json",
    )
    assert with_password.status_code == 201, with_password.data
    assert with_password.data["set_password_link"] is None
    assert "password" not in with_password.data
    olga = django_user_model.objects.get(username="olga")
    assert olga.check_password("long-and-unusual-42")
    assert Membership.objects.get(project=project, user=olga).role == "annotator"

    with_link = api.post(
        url, {"username": "piet", "email": "piet@example.org", "role": "admin"}, format="json"
    )
    assert with_link.status_code == 201, with_link.data
    link = with_link.data["set_password_link"]
    assert link.startswith("http://testserver/invitations/")
    assert with_link.data["email_status"] == "sent" and link in mail.outbox[-1].body
    piet = django_user_model.objects.get(username="piet")
    assert not piet.has_usable_password()
    invitation = invitation_find(token=link.rstrip("/").rsplit("/", 1)[-1])
    assert invitation is not None and invitation.user == piet
    assert Membership.objects.get(project=project, user=piet).role == "admin"

    # What the team page refuses, the API refuses, with the reason; nothing is created.
    taken = api.post(url, {"username": "olga", "password": "another-long-one-7"}, format="json")
    assert taken.status_code == 400 and "taken" in str(taken.data)
    weak = api.post(url, {"username": "quinn", "password": "123"}, format="json")
    assert weak.status_code == 400
    assert not django_user_model.objects.filter(username="quinn").exists()


def test_roles_change_but_the_last_admin_stays(project, project_admin, annotator, client_for):
    api = client_for(project_admin)
    member = reverse("api:member-detail", args=[project.slug, annotator.pk])
    promoted = api.patch(member, {"role": "admin"}, format="json")
    assert promoted.status_code == 200 and promoted.data["role"] == "admin"
    assert Membership.objects.get(project=project, user=annotator).role == "admin"
    # Two admins: one may step down; then the other is the last and may not.
    me = reverse("api:member-detail", args=[project.slug, project_admin.pk])
    assert api.patch(me, {"role": "annotator"}, format="json").status_code == 200
    last = client_for(annotator)
    refused = last.patch(member, {"role": "annotator"}, format="json")
    assert refused.status_code == 400 and "last admin" in str(refused.data)
    removed = last.delete(member)
    assert removed.status_code == 400 and "last admin" in str(removed.data)
    assert Membership.objects.get(project=project, user=annotator).role == "admin"
    assert last.patch(member, {"role": "owner"}, format="json").status_code == 400
    nobody = reverse("api:member-detail", args=[project.slug, 10**9])
    assert last.patch(nobody, {"role": "admin"}, format="json").status_code == 404


# --- review: leases, bulk risk correction, my verdicts, queue counts ------------------------


def test_an_admin_lists_reassigns_and_releases_leases(
    world, project_admin, annotator, other_annotator, django_user_model, client_for
):
    from review.models import Lease

    project = world.project
    bea = django_user_model.objects.create_user(username="bea", password="bea-pass-123456")
    Membership.objects.create(project=project, user=bea, role=Membership.Role.ANNOTATOR)
    api = client_for(project_admin)
    listed = api.get(reverse("api:project-leases", args=[project.slug]))
    assert listed.status_code == 200
    assert [(r["id"], r["reviewer"]) for r in listed.data["results"]] == [(world.lease.pk, "ann")]

    url = reverse("api:lease-reassign", args=[world.lease.pk])
    # Someone outside the project is not offered, as on the page.
    refused = api.post(url, {"reviewer": other_annotator.pk}, format="json")
    assert refused.status_code == 400 and "member" in str(refused.data)
    moved = api.post(url, {"reviewer": bea.pk}, format="json")
    assert moved.status_code == 200, moved.data
    assert moved.data["reviewer"] == "bea" and moved.data["item"]["id"] == world.item.pk
    world.lease.refresh_from_db()
    assert world.lease.state == Lease.State.RELEASED
    # The old lease has ended: the service's reason comes back.
    again = api.post(url, {"reviewer": bea.pk}, format="json")
    assert again.status_code == 400 and "already ended" in str(again.data)

    # An admin frees bea's lease; bea herself cannot list the leases.
    new = moved.data["id"]
    assert (
        client_for(bea).get(reverse("api:project-leases", args=[project.slug])).status_code == 403
    )
    assert client_for(annotator).post(reverse("api:lease-release", args=[new])).status_code == 403
    released = api.post(reverse("api:lease-release", args=[new]))
    assert released.status_code == 200 and released.data["state"] == "released"
    assert api.get(reverse("api:project-leases", args=[project.slug])).data["results"] == []


def test_an_admin_corrects_one_risk_for_many_images(world, project_admin, client_for):
    from review.models import RiskCorrection
    from tests.factories import ImageFactory

    project = world.project
    outsider = ImageFactory(project=world.other_project)
    second = ImageFactory(project=project)
    api = client_for(project_admin)
    url = reverse("api:bulk-risk-correction", args=[project.slug])
    refused = api.post(
        url,
        {"images": [world.image.pk, outsider.pk], "category": "chart", "flagged": True},
        format="json",
    )
    assert refused.status_code == 400 and "images" in refused.data
    assert not RiskCorrection.objects.exists()

    done = api.post(
        url,
        {
            "images": [world.image.pk, second.pk],
            "category": "medical",
            "flagged": False,
            "note": "x-ray lookalikes",
        },
        format="json",
    )
    assert done.status_code == 201, done.data
    assert done.data == {"category": "medical", "flagged": False, "corrected": 2}
    rows = RiskCorrection.objects.values_list("image_id", "category", "flagged", "note")
    assert sorted(rows) == sorted(
        [
            (world.image.pk, "medical", False, "x-ray lookalikes"),
            (second.pk, "medical", False, "x-ray lookalikes"),
        ]
    )
    assert (
        api.post(
            url, {"images": [], "category": "medical", "flagged": True}, format="json"
        ).status_code
        == 400
    )


def test_a_reviewer_reads_their_own_verdicts_and_the_queue_counts(
    world, annotator, project_admin, client_for
):
    from review import selectors

    project = world.project
    api = client_for(annotator)
    mine = api.get(reverse("api:my-verdicts", args=[project.slug]))
    assert mine.status_code == 200
    assert [(r["id"], r["decision"], r["undoable"]) for r in mine.data["results"]] == [
        (world.verdict.pk, "accept", True)
    ]
    assert mine.data["results"][0]["image_id"] == world.verdict.item.image_id
    # Someone else's verdicts are not theirs.
    assert (
        client_for(project_admin)
        .get(reverse("api:my-verdicts", args=[project.slug]))
        .data["results"]
        == []
    )

    counts = api.get(reverse("api:queue-counts", args=[project.slug]))
    assert counts.status_code == 200
    expected = selectors.queue_counts(project=project)
    assert counts.data["in_progress"] == expected.in_progress == 1
    assert counts.data["to_review"] == expected.to_review
    assert counts.data["captions_to_review"] == expected.captions_to_review
    assert counts.data["done"] == expected.done == 1
    assert (counts.data["my_total"], counts.data["my_today"], counts.data["my_skipped"]) == (
        1,
        1,
        0,
    )
    assert api.get(reverse("api:queue-counts", args=[project.slug]), {"x": 1}).status_code == 400


# --- image files ----------------------------------------------------------------------------


def test_a_member_downloads_the_pictures_the_pages_show(world, annotator, client_for):
    from PIL import Image as PILImage

    api = client_for(annotator)
    url = reverse("api:image-file", args=[world.image.pk])
    sizes = {}
    for size in ("small", "large", "display"):
        response = api.get(url, {"size": size})
        assert response.status_code == 200, size
        assert response["Content-Type"].startswith("image/")
        assert response["X-Content-Type-Options"] == "nosniff"
        picture = PILImage.open(io.BytesIO(b"".join(response.streaming_content)))
        sizes[size] = max(picture.size)
    assert sizes["small"] <= sizes["large"]
    assert api.get(url).status_code == 200  # display by default
    assert api.get(url, {"size": "huge"}).status_code == 400
    assert api.get(reverse("api:image-file", args=[10**9])).status_code == 404


# --- import batches -------------------------------------------------------------------------


def test_an_admin_closes_an_upload_batch_the_page_left_open(
    project, project_admin, annotator, other_annotator, client_for
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from labeling.models import ImportBatch
    from labeling.services import batches
    from labeling.services.ingest import batch_create
    from tests.factories import png_bytes

    # The upload page's steps: open a batch announcing three files, send one, never close.
    batch = batch_create(
        project=project, kind=ImportBatch.Kind.UPLOAD, user=project_admin, expected=3
    )
    upload = SimpleUploadedFile("pier.png", png_bytes(7), content_type="image/png")
    [outcome] = batches.batch_add_uploads(batch=batch, files=[upload])
    batch.refresh_from_db()
    assert batch.status != ImportBatch.Status.DONE and batch.finished_at is None

    url = reverse("api:batch-close", args=[batch.pk])
    assert client_for(annotator).post(url).status_code == 403
    assert client_for(other_annotator).post(url).status_code == 404
    closed = client_for(project_admin).post(url)
    assert closed.status_code == 200, closed.data
    assert closed.data["status"] == "done" and closed.data["finished_at"] is not None
    assert closed.data["imported"] == 1 and closed.data["expected"] == 3
    batch.refresh_from_db()
    finished_at = batch.finished_at
    assert batch.status == ImportBatch.Status.DONE and finished_at is not None
    # Closing again changes nothing.
    again = client_for(project_admin).post(url)
    assert again.status_code == 200
    batch.refresh_from_db()
    assert batch.finished_at == finished_at


def test_an_admin_imports_predictions_from_a_script(
    project, project_admin, annotator, client_for, make_image_bytes
):
    import io
    import json
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from labeling.models import ImportBatch
    from labeling.services.batches import batch_process_payload
    from routing.models import Caption

    lines = [
        {"image": "pier.png", "caption": "Gulls over a pier.", "model": "llava"},
        {"image": "pier.png", "model": "llava"},
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("predictions.jsonl", "\n".join(json.dumps(line) for line in lines))
        zf.writestr("pier.png", make_image_bytes("PNG", seed=11))
    url = reverse("api:batch-list", args=[project.slug])

    def upload():
        return SimpleUploadedFile("elsewhere.zip", buf.getvalue(), "application/zip")

    assert client_for(annotator).post(url, {"predictions": upload()}).status_code == 403
    api = client_for(project_admin)
    response = api.post(url, {"predictions": upload()}, format="multipart")
    assert response.status_code == 202, response.data
    assert (response.data["kind"], response.data["status"]) == ("predicted", "pending")
    batch_process_payload(batch=ImportBatch.objects.get(pk=response.data["id"]))  # the worker
    done = api.get(reverse("api:batch-detail", args=[response.data["id"]])).data
    assert (done["status"], done["imported"], done["rejected"]) == ("done", 1, 1)
    imported = Caption.objects.filter(image__project=project, origin=Caption.Origin.IMPORTED)
    assert list(imported.values_list("model_name", "text")) == [("llava", "Gulls over a pier.")]
    both = api.post(
        url,
        {"predictions": upload(), "urls": "https://images.example.org/a.jpg"},
        format="multipart",
    )
    assert both.status_code == 400 and "one of" in str(both.data)


# --- chains ---------------------------------------------------------------------------------


def test_an_admin_edits_a_chain_as_the_chains_page_does(project, project_admin, client_for):
    from routing.models import Chain
    from routing.services.chains import chain_save
    from tests.factories import RouteFactory

    fast, careful, local = (RouteFactory(name=n) for n in ("fast", "careful", "local"))
    chain = chain_save(project=project, name="default", routes=[fast, careful], is_default=True)
    other = chain_save(project=project, name="cheap", routes=[local])
    api = client_for(project_admin)
    url = reverse("api:chain-detail", args=[chain.pk])
    edited = api.put(
        url,
        {"name": "default", "routes": [careful.pk, local.pk, fast.pk], "deadline_s": 60},
        format="json",
    )
    assert edited.status_code == 200, edited.data
    assert edited.data["routes"] == ["careful", "local", "fast"]
    chain.refresh_from_db()
    assert chain.deadline_s == 60 and not chain.is_default
    assert [s.route.name for s in chain.steps.select_related("route")] == [
        "careful",
        "local",
        "fast",
    ]
    # What the page refuses: the same route twice, another chain's name.
    twice = api.put(url, {"name": "default", "routes": [fast.pk, fast.pk]}, format="json")
    assert twice.status_code == 400
    taken = api.put(url, {"name": "cheap", "routes": [fast.pk]}, format="json")
    assert taken.status_code == 400
    assert Chain.objects.get(pk=other.pk).name == "cheap"
    assert Chain.objects.get(pk=chain.pk).name == "default"


def test_a_script_uploads_in_one_batch_file_by_file_as_the_upload_page_does(
    project, project_admin, annotator, client_for
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from labeling.models import ImportBatch
    from tests.factories import png_bytes

    api = client_for(project_admin)
    opened = api.post(
        reverse("api:batch-open", args=[project.slug]), {"expected": 3}, format="json"
    )
    assert opened.status_code == 201, opened.data
    assert (opened.data["kind"], opened.data["expected"]) == ("upload", 3)
    files_url = reverse("api:batch-files", args=[opened.data["id"]])

    def send(name: str, data: bytes):
        upload = SimpleUploadedFile(name, data, content_type="image/png")
        return api.post(files_url, {"files": [upload]}, format="multipart")

    first = send("a.png", png_bytes(21))
    assert first.status_code == 200, first.data
    assert [(r["source"], r["status"]) for r in first.data] == [("a.png", "imported")]
    again = send("a-copy.png", png_bytes(21))
    assert again.data[0]["status"] == "duplicate"
    broken = send("notes.png", b"just some text")
    assert broken.data[0]["status"] == "rejected" and broken.data[0]["reason"]
    upload = SimpleUploadedFile("b.png", png_bytes(22), content_type="image/png")
    assert client_for(annotator).post(files_url, {"files": [upload]}).status_code == 403

    closed = api.post(reverse("api:batch-close", args=[opened.data["id"]]))
    assert closed.status_code == 200
    assert (closed.data["status"], closed.data["imported"], closed.data["duplicates"]) == (
        "done",
        1,
        1,
    )
    late = send("c.png", png_bytes(23))
    assert late.status_code == 409 and "no longer accepts" in str(late.data)
    assert ImportBatch.objects.get(pk=opened.data["id"]).rejected == 1


def test_the_image_list_filters_by_risk_as_the_grid_does(project, annotator, client_for):
    from review.models import RiskCorrection, RiskFlag
    from review.services.risk import risk_thresholds_for
    from tests.factories import ImageFactory

    threshold = risk_thresholds_for(project=project)["chart"]
    chart, near, plain, corrected = (ImageFactory(project=project) for _ in range(4))
    for image, score, flagged in (
        (chart, 0.99, True),
        (near, threshold + 0.02, True),
        (plain, 0.01, False),
        (corrected, 0.99, True),
    ):
        RiskFlag.objects.create(
            image=image, category="chart", score=score, flagged=flagged, analyser_version="t"
        )
    RiskCorrection.objects.create(image=corrected, category="chart", flagged=False)
    api = client_for(annotator)
    url = reverse("api:image-list", args=[project.slug])

    def ids(**params):
        response = api.get(url, params)
        assert response.status_code == 200, response.data
        return {row["id"] for row in response.data["results"]}

    assert ids(risk="chart") == {chart.pk, near.pk}  # the admin's correction wins
    assert ids(risk="any") == {chart.pk, near.pk}
    assert ids(risk="medical") == set()
    assert near.pk in ids(near_threshold="true")
    assert chart.pk not in ids(near_threshold="true", risk="chart")
    assert api.get(url, {"risk": "nonsense"}).status_code == 400
