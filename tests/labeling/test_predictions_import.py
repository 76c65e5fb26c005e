"""Captions that models wrote elsewhere come in for review: Label Studio tasks with predictions (our
own export included: the round trip) and plain JSON Lines, with the images in a zip or next to the
file. Every image passes the one ingestion service; bad lines are reported by number and never
stop the rest."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import ImportBatch, ImportItem, Project
from review.models import ReviewItem
from routing.models import Caption, Route
from tests.conftest import wait_until
from tests.labeling import export_story
from tests.labeling.export_story import CAFE, LINES, RTL


def _imported(project: Project) -> dict[str, list[str]]:
    """model -> texts of the project's imported captions, in image order."""
    found: dict[str, list[str]] = {}
    for model, text in (
        Caption.objects.filter(image__project=project, origin=Caption.Origin.IMPORTED)
        .order_by("image_id", "id")
        .values_list("model_name", "text")
    ):
        found.setdefault(model, []).append(text)
    return found


def test_a_label_studio_export_comes_back_as_predictions_to_review(db, admin, project, tmp_path):
    """The tasks name images by this site's URLs; the bundle's files are found by image id."""
    export_story.build(project, admin)
    bundle = tmp_path / "tasks.zip"
    call_command(
        "export", "--project", project.slug, "--format", "labelstudio", "--images", "bundle",
        "--include", "reviewed", "--base-url", "https://cd.example", "--out", str(bundle),
    )  # fmt: skip
    elsewhere = Project.objects.create(name="Elsewhere", slug="elsewhere")
    out = io.StringIO()
    call_command("import_predictions", str(bundle), "--project", "elsewhere", stdout=out)
    assert "6 captions imported, 0 already there, 0 lines rejected" in out.getvalue()

    assert _imported(elsewhere) == {
        "blip2-opt-2.7b": [CAFE, "A cat on a sofa.", "A bar chart.", LINES],
        "openai/gpt-4o": ["A café.", RTL],
    }
    # One disabled "imported" route per model, so comparisons can group by it.
    routes = Route.objects.filter(captions__image__project=elsewhere).distinct()
    assert sorted((r.name, r.enabled, r.config) for r in routes) == [
        ("imported-blip2-opt-27b", False, {"imported": True}),
        ("imported-openaigpt-4o", False, {"imported": True}),
    ]
    items = ReviewItem.objects.filter(project=elsewhere)
    assert items.count() == 6 and set(items.values_list("state", flat=True)) == {"open"}
    assert elsewhere.images.count() == 5  # the image with two predictions came in once

    again = io.StringIO()
    call_command("import_predictions", str(bundle), "--project", "elsewhere", stdout=again)
    assert "0 captions imported, 6 already there" in again.getvalue()
    assert Caption.objects.filter(image__project=elsewhere).count() == 6


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def predictions_zip(make_image_bytes) -> bytes:
    lines = [
        {"image": "photos/harbour.jpg", "caption": "Boats in a harbour at dawn.", "model": "llava"},
        {"image": "harbour.jpg", "caption": "A harbour.", "model": "florence-2"},
        "{not json",
        {"image": "photos/tram.png", "model": "llava"},
        {"image": "photos/missing.jpg", "caption": "A ghost.", "model": "llava"},
        {"image": "photos/notes.png", "caption": "Text.", "model": "llava"},
        {
            "data": {"image": "https://example.invalid/x/tram.png"},
            "predictions": [
                {
                    "model_version": "blip2",
                    "score": 0.71,
                    "result": [
                        {
                            "from_name": "caption",
                            "to_name": "image",
                            "type": "textarea",
                            "value": {"text": ['A tram, "line 5", in the rain 🚋']},
                        }
                    ],
                }
            ],
        },
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    return _zip(
        {
            "predictions.jsonl": text.encode(),
            "photos/harbour.jpg": make_image_bytes("JPEG", size=(120, 90), seed=5),
            "photos/tram.png": make_image_bytes("PNG", size=(90, 120), seed=6),
            "photos/notes.png": b"just some text",
        }
    )


@pytest.mark.worker
def test_an_admin_uploads_predictions_and_sees_each_bad_line_with_its_number(
    celery_worker_process, client, admin, project, predictions_zip
):
    celery_worker_process(queues="default")
    client.force_login(admin)
    page = client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert reverse("labeling:import-predictions", args=[project.slug]) in page
    upload = io.BytesIO(predictions_zip)
    upload.name = "from-elsewhere.zip"
    response = client.post(
        reverse("labeling:import-predictions", args=[project.slug]), {"file": upload}
    )
    batch = ImportBatch.objects.get(project=project, kind=ImportBatch.Kind.PREDICTIONS)
    assert response.url == reverse("labeling:batch-detail", args=[batch.pk])
    wait_until(lambda: ImportBatch.objects.filter(pk=batch.pk, status="done").exists(), timeout=60)

    reasons = dict(batch.items.values_list("source", "reason"))
    assert reasons["line 3: "].startswith("line 3: not valid JSON")
    assert reasons["line 4: photos/tram.png"] == "line 4: no caption"
    assert reasons["line 5: photos/missing.jpg"].startswith("image not found")
    assert reasons["line 6: photos/notes.png"].startswith("not an image")
    # The Label Studio line names its image by URL; the zip has a file of that name.
    assert batch.items.get(source__startswith="line 7").status == ImportItem.Status.IMPORTED
    assert _imported(project) == {
        "llava": ["Boats in a harbour at dawn."],
        "florence-2": ["A harbour."],
        "blip2": ['A tram, "line 5", in the rain 🚋'],
    }
    assert Caption.objects.get(model_name="blip2").params == {"score": 0.71}
    detail = client.get(reverse("labeling:batch-detail", args=[batch.pk])).content.decode()
    assert "line 4: no caption" in detail and "not an image" in detail


def test_plain_json_lines_name_images_by_path_from_the_command_line(
    db, project, tmp_path, make_image_bytes
):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "kite.png").write_bytes(make_image_bytes("PNG", seed=9))
    listing = tmp_path / "captions.jsonl"
    listing.write_text(
        json.dumps({"image": "img/kite.png", "caption": "Ein Drachen — قطة", "model": "kosmos-2"})
        + "\n"
        + json.dumps({"image": "img/kite.png", "caption": "A kite.", "model": "blip2"})
        + "\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    call_command(
        "import_predictions", str(listing), "--project", project.slug, "--json", stdout=out
    )
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["line"], r["status"], r["captions"]) for r in results] == [
        (1, "imported", 1),
        (2, "duplicate", 1),
    ]
    assert _imported(project) == {"kosmos-2": ["Ein Drachen — قطة"], "blip2": ["A kite."]}
    with pytest.raises(CommandError, match="expected a JSON array"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text("image,caption\n", encoding="utf-8")
        call_command("import_predictions", str(bad), "--project", project.slug)
