"""What a script does with the API, end to end, through the same services as the pages."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import Image, Membership
from review.models import ReviewItem, Verdict
from routing.models import Caption, CaptionRun
from tests.factories import ImageFactory, RouteFactory


def test_an_admin_uploads_files_and_gets_each_files_outcome(
    project, admin, client_for, make_image_bytes
):
    api = client_for(admin)
    files = [
        SimpleUploadedFile("pier.png", make_image_bytes("PNG", seed=1), "image/png"),
        SimpleUploadedFile("gull.jpg", make_image_bytes("JPEG", seed=2), "image/jpeg"),
        SimpleUploadedFile("notes.png", b"not an image at all" * 20, "image/png"),
    ]
    response = api.post(
        reverse("api:image-list", args=[project.slug]), {"files": files}, format="multipart"
    )
    assert response.status_code == 201, response.data
    outcomes = {r["source"]: (r["status"], r["reason"]) for r in response.data["results"]}
    assert outcomes["pier.png"][0] == "imported"
    assert outcomes["gull.jpg"][0] == "imported"
    assert outcomes["notes.png"] == ("rejected", outcomes["notes.png"][1])
    assert "not an image" in outcomes["notes.png"][1]
    batch = response.data["batch"]
    assert (batch["status"], batch["imported"], batch["rejected"]) == ("done", 2, 1)

    listed = api.get(reverse("api:image-list", args=[project.slug]), {"batch": batch["id"]})
    assert sorted(i["original_name"] for i in listed.data["results"]) == ["gull.jpg", "pier.png"]
    items = api.get(reverse("api:batch-items", args=[batch["id"]]), {"status": "rejected"})
    assert [i["source"] for i in items.data["results"]] == ["notes.png"]


def test_an_annotator_reviews_from_a_script_and_a_retried_verdict_counts_once(
    world, annotator, client_for
):
    api = client_for(annotator)
    lease = api.post(reverse("api:claim-next", args=[world.project.slug])).data
    assert lease["id"] == world.lease.pk
    assert lease["item"]["caption_text"] == "A red bicycle against a wall."

    body = {
        "decision": "edit",
        "text": "A red bicycle leaning on a brick wall.",
        "idempotency_key": str(uuid.uuid4()),
    }
    url = reverse("api:lease-verdict", args=[lease["id"]])
    first = api.post(url, body, format="json")
    again = api.post(url, body, format="json")  # the network dropped the first answer
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.data["id"] == again.data["id"]
    assert Verdict.objects.filter(lease_id=lease["id"]).count() == 1

    item = api.get(reverse("api:review-item-detail", args=[lease["item"]["id"]])).data
    assert (item["state"], item["final_text"]) == ("approved", body["text"])
    image = api.get(reverse("api:image-detail", args=[item["image_id"]])).data
    assert [a["text"] for a in image["approved"]] == [body["text"]]
    # Nothing left for this annotator.
    assert api.post(reverse("api:claim-next", args=[world.project.slug])).status_code == 204


def test_a_verdict_that_breaks_the_rules_is_refused_with_the_reason(world, annotator, client_for):
    api = client_for(annotator)
    response = api.post(
        reverse("api:lease-verdict", args=[world.lease.pk]),
        {"decision": "reject", "idempotency_key": str(uuid.uuid4())},
        format="json",
    )
    assert response.status_code == 400
    assert "reason" in str(response.data)
    assert ReviewItem.objects.get(pk=world.item.pk).state == ReviewItem.State.OPEN


def test_an_admin_estimates_launches_pauses_and_cancels_a_run(project, admin, client_for):
    api = client_for(admin)
    route = RouteFactory(name="cheap-route", usd_per_call=Decimal("0.002"))
    for _ in range(3):
        ImageFactory(project=project)
    request = {"kind": "comparison", "routes": [route.pk], "prompt": "What is shown?"}

    estimate = api.post(reverse("api:run-estimate", args=[project.slug]), request, format="json")
    assert estimate.status_code == 200, estimate.data
    assert (estimate.data["image_count"], estimate.data["new_requests"]) == (3, 3)
    assert Decimal(estimate.data["total_usd"]) == Decimal("0.006")
    assert not CaptionRun.objects.exists()

    launched = api.post(
        reverse("api:run-list", args=[project.slug]),
        {**request, "budget_usd": "1.00"},
        format="json",
    )
    assert launched.status_code == 201, launched.data
    run_id = launched.data["id"]
    assert launched.data["caption_count"] == 3
    assert launched.data["progress"]["pending"] == 3

    paused = api.post(reverse("api:run-pause", args=[run_id]))
    assert paused.data["status"] == "paused"
    again = api.post(reverse("api:run-pause", args=[run_id]))
    assert again.status_code == 400 and "Only a running run" in str(again.data)

    cancelled = api.post(reverse("api:run-cancel", args=[run_id]))
    assert cancelled.data["status"] == "cancelled"
    assert cancelled.data["progress"]["cancelled"] == 3
    assert not Caption.objects.filter(run_id=run_id, status="pending").exists()


def test_a_run_request_the_run_page_would_refuse_is_refused(project, admin, client_for):
    api = client_for(admin)
    response = api.post(
        reverse("api:run-list", args=[project.slug]), {"kind": "chain"}, format="json"
    )
    assert response.status_code == 400
    assert "Choose a chain" in str(response.data["chain"])


def test_an_admin_manages_members(project, admin, outsider, client_for):
    api = client_for(admin)
    url = reverse("api:member-list", args=[project.slug])
    added = api.post(url, {"username": outsider.username, "role": "annotator"}, format="json")
    assert added.status_code == 201
    assert Membership.objects.filter(project=project, user=outsider).exists()
    unknown = api.post(url, {"username": "nobody-here", "role": "annotator"}, format="json")
    assert unknown.status_code == 400 and "No user named" in str(unknown.data)
    api.delete(reverse("api:member-detail", args=[project.slug, outsider.pk]))
    assert not Membership.objects.filter(project=project, user=outsider).exists()
    # The removed user's token no longer reaches the project.
    assert (
        client_for(outsider).get(reverse("api:project-detail", args=[project.slug])).status_code
        == 404
    )


def test_pages_stay_stable_while_images_arrive(project, annotator, client_for):
    """A client walking the list with cursors sees every image once, whatever is inserted."""
    api = client_for(annotator)
    originals = [ImageFactory(project=project).pk for _ in range(7)]
    url = reverse("api:image-list", args=[project.slug])
    page = api.get(url, {"page_size": 3}).data
    seen = [i["id"] for i in page["results"]]
    while page["next"]:
        ImageFactory(project=project)  # new uploads land ahead of the cursor
        ImageFactory(project=project)
        page = api.get(page["next"]).data
        seen += [i["id"] for i in page["results"]]
    assert seen == sorted(originals, reverse=True)


def test_filters_are_an_allow_list(project, annotator, client_for):
    api = client_for(annotator)
    ImageFactory(project=project, status=Image.Status.APPROVED, original_name="kept.png")
    ImageFactory(project=project, status=Image.Status.NEW, original_name="new.png")
    url = reverse("api:image-list", args=[project.slug])
    approved = api.get(url, {"status": "approved"}).data["results"]
    assert [i["original_name"] for i in approved] == ["kept.png"]
    raw_lookup = api.get(url, {"original_name__startswith": "k"})
    assert raw_lookup.status_code == 400
    assert "original_name__startswith" in raw_lookup.data
    assert api.get(url, {"status": "bogus"}).status_code == 400


def test_an_admin_exports_approved_captions_and_downloads_the_file(world, admin, client_for):
    from labeling.models import Export
    from labeling.services.export.jobs import export_run

    api = client_for(admin)
    created = api.post(
        reverse("api:export-list", args=[world.project.slug]),
        {"format": "jsonl", "provenance": True},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["status"] == "pending" and created.data["download_url"] is None
    export = Export.objects.get(pk=created.data["id"])
    export_run(export=export)  # what the worker does with the queued task

    detail = api.get(reverse("api:export-detail", args=[export.pk])).data
    assert detail["status"] == "done" and detail["rows"] == 1
    download = api.get(detail["download_url"])
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode()
    assert world.verdict.final_text in body  # the one approved caption


def test_a_bad_export_request_gets_the_pages_answer(world, admin, client_for):
    api = client_for(admin)
    response = api.post(
        reverse("api:export-list", args=[world.project.slug]),
        {"format": "parquet"},
        format="json",
    )
    assert response.status_code == 400 and "format" in response.data


def test_metrics_follow_the_review_policy(world, admin, annotator, client_for):
    from review.models import ReviewPolicy

    url = reverse("api:metrics", args=[world.project.slug])
    table = client_for(admin).get(url).data
    assert table["group_by"] == "route" and table["same_images"] is False
    rows = {row["key"]: row for row in table["rows"]}
    # The run's caption on its route (the other caption was imported, from no route).
    assert rows["gpt4o-eden"]["produced"] == 1
    assert rows["gpt4o-eden"]["spend_usd"] == pytest.approx(0.002)
    assert rows["gpt4o-eden"]["accepted_rate"]["n"] == rows["gpt4o-eden"]["reviewed"]
    assert client_for(annotator).get(url).status_code == 403
    ReviewPolicy.objects.update_or_create(
        project=world.project, defaults={"annotators_see_metrics": True}
    )
    assert client_for(annotator).get(url).status_code == 200
    compare = client_for(admin).get(url, {"compare": "true", "routes": [world.route.pk]})
    assert compare.status_code == 400  # a comparison needs two routes, as on the page


def test_an_admin_builds_a_chain_and_estimates_a_run_on_it(project, admin, client_for):
    api = client_for(admin)
    primary = RouteFactory(name="fast-route", usd_per_call=Decimal("0.001"))
    fallback = RouteFactory(name="strong-route", usd_per_call=Decimal("0.01"))
    ImageFactory(project=project)
    made = api.post(
        reverse("api:chain-list", args=[project.slug]),
        {"name": "cheap first", "routes": [primary.pk, fallback.pk], "is_default": True},
        format="json",
    )
    assert made.status_code == 201, made.data
    assert made.data["routes"] == ["fast-route", "strong-route"] and made.data["is_default"]
    twice = api.post(
        reverse("api:chain-list", args=[project.slug]),
        {"name": "dup", "routes": [primary.pk, primary.pk]},
        format="json",
    )
    assert twice.status_code == 400 and "only once" in str(twice.data)

    estimate = api.post(
        reverse("api:run-estimate", args=[project.slug]),
        {"kind": "chain", "chain": made.data["id"]},
        format="json",
    ).data
    assert Decimal(estimate["total_usd"]) == Decimal("0.001")
    # Worst case: every try of both routes (3 attempts each by default).
    assert Decimal(estimate["worst_case_usd"]) == 3 * (Decimal("0.001") + Decimal("0.01"))


def test_an_admin_imports_a_zip_from_a_script(project, admin, client_for, make_image_bytes):
    import io
    import zipfile

    from labeling.models import ImportBatch
    from labeling.services.batches import batch_process_payload

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", make_image_bytes("PNG", seed=5))
        zf.writestr("b.png", make_image_bytes("PNG", seed=6))
        zf.writestr("readme.txt", b"not an image")
    archive = SimpleUploadedFile("shots.zip", buf.getvalue(), "application/zip")
    api = client_for(admin)
    response = api.post(
        reverse("api:batch-list", args=[project.slug]), {"archive": archive}, format="multipart"
    )
    assert response.status_code == 202, response.data
    assert (response.data["kind"], response.data["status"]) == ("zip", "pending")
    batch_process_payload(batch=ImportBatch.objects.get(pk=response.data["id"]))  # the worker
    done = api.get(reverse("api:batch-detail", args=[response.data["id"]])).data
    assert (done["imported"], done["rejected"]) == (2, 1)
    neither = api.post(reverse("api:batch-list", args=[project.slug]), {}, format="json")
    assert neither.status_code == 400


def test_an_admin_stops_a_stuck_caption_then_retries_it(world, admin, client_for):
    from routing.models import Caption

    stuck = Caption.objects.create(
        image=world.image,
        origin=Caption.Origin.MODEL,
        run=world.run,
        target_route=world.route,
        status=Caption.Status.RUNNING,
        request_key="stuck-caption",
    )
    api = client_for(admin)
    stopped = api.post(reverse("api:caption-stop", args=[stuck.pk]))
    assert stopped.status_code == 200 and stopped.data["status"] == "failed"
    assert "stopped by ada-admin" in stopped.data["error"]
    retried = api.post(reverse("api:caption-retry", args=[stuck.pk]))
    assert retried.status_code == 200 and retried.data["status"] == "pending"


def test_image_detail_shows_flags_and_captions_but_not_the_risk_question(
    world, annotator, client_for
):
    from review.models import RiskFlag
    from review.risk.captions import RISK_QUESTION
    from tests.factories import CaptionFactory

    RiskFlag.objects.create(
        image=world.image,
        category="chart",
        score=0.93,
        flagged=True,
        reason="Axes and bars found.",
        analyser_version="test",
    )
    CaptionFactory(image=world.image, task="question", prompt=RISK_QUESTION, text="chart")
    detail = client_for(annotator).get(reverse("api:image-detail", args=[world.image.pk])).data
    assert [c["text"] for c in detail["captions"]] == ["Fishing boats in a harbour at dusk."]
    assert [(f["category"], f["reason"]) for f in detail["flags"]] == [
        ("chart", "Axes and bars found.")
    ]


def test_annotators_see_model_names_only_where_the_policy_shows_them(
    world, annotator, admin, client_for
):
    from review.models import ReviewPolicy

    url = reverse("api:image-detail", args=[world.image.pk])
    assert client_for(annotator).get(url).data["captions"][0]["model_name"] == ""  # blind review
    assert client_for(admin).get(url).data["captions"][0]["model_name"] == "blip2-opt-2.7b"
    ReviewPolicy.objects.update_or_create(project=world.project, defaults={"show_model_name": True})
    assert client_for(annotator).get(url).data["captions"][0]["model_name"] == "blip2-opt-2.7b"


def test_an_admin_changes_the_review_policy_and_corrects_a_risk_flag(
    world, admin, annotator, client_for
):
    api = client_for(admin)
    url = reverse("api:review-policy", args=[world.project.slug])
    policy = api.get(url).data
    assert policy["annotators_see_metrics"] is False
    changed = api.put(
        url,
        {**policy, "annotators_see_metrics": True, "risk_thresholds": {"chart": 0.7}},
        format="json",
    )
    assert changed.status_code == 200, changed.data
    assert changed.data["risk_thresholds"] == {"chart": 0.7}
    metrics = client_for(annotator).get(reverse("api:metrics", args=[world.project.slug]))
    assert metrics.status_code == 200
    too_many = api.put(url, {**policy, "approvals_required": 99}, format="json")
    assert too_many.status_code == 400

    corrected = api.post(
        reverse("api:risk-correction", args=[world.image.pk]),
        {"category": "medical", "flagged": True, "note": "An X-ray of a hand."},
        format="json",
    )
    assert corrected.status_code == 201
    flags = api.get(reverse("api:image-detail", args=[world.image.pk])).data["flags"]
    assert [(f["category"], f["corrected"]) for f in flags] == [("medical", True)]
