"""An admin exports the approved captions of a reviewed project with `manage.py export` and loads
each file into the tool that reads that format: Python's csv and pandas, pycocotools, Hugging
Face `datasets`, pyarrow and Label Studio's own SDK. Captions with accents, CJK, emoji,
right-to-left text, quotes, commas, tabs, backslashes and line breaks come back unchanged."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.labeling import export_story
from tests.labeling.export_story import CAFE, EMOJI, LINES, QUOTES, RTL

BASE = "https://captions.example.org"


@pytest.fixture
def story(db, admin, project):
    return export_story.build(project, admin)


@pytest.fixture
def export(project, tmp_path):
    """export("jsonl", "--provenance", ...) -> path of the file written for the project."""

    def run(fmt: str, *options: str, name: str = "") -> str:
        out = tmp_path / (name or f"out-{fmt}-{abs(hash(options))}")
        call_command(
            "export", "--project", project.slug, "--format", fmt, "--out", str(out), *options
        )
        return str(out)

    return run


def test_jsonl_has_one_line_per_approved_caption_with_its_exact_text(story, export):
    path = export("jsonl", "--base-url", BASE)
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    assert [r["caption"] for r in rows] == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert [r["image_id"] for r in rows] == [story.images[i].pk for i in range(5)]
    assert {r["state"] for r in rows} == {"approved"}
    emoji = rows[1]
    assert (emoji["edited"], emoji["model_caption"], emoji["model"], emoji["route"]) == (
        True,
        "A cat on a sofa.",
        "blip2-opt-2.7b",
        "blip",
    )
    assert rows[3]["model"] == "openai/gpt-4o" and rows[3]["edited"] is False
    # Images are referenced through the permission-checked page, never a public media URL.
    assert rows[0]["image_url"] == f"{BASE}/images/{story.images[0].pk}/display/"
    assert "provenance" not in rows[0]


def test_csv_survives_a_round_trip_through_csv_and_pandas(story, export):
    import pandas as pd

    path = export("csv")
    raw = Path(path).read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") >= 6  # RFC 4180 line ends
    assert b'"A bar chart, ""sales by month"", with' in raw  # quotes doubled inside quotes
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["caption"] for r in rows] == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert [r["edited"] for r in rows] == ["false", "true", "true", "false", "false"]
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert frame["caption"].tolist() == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert frame["model_caption"].tolist()[1] == "A cat on a sofa."


def test_coco_captions_load_in_pycocotools(story, export):
    from pycocotools.coco import COCO

    coco = COCO(export("coco", "--base-url", BASE))
    image_ids = sorted(coco.getImgIds())
    assert image_ids == [story.images[i].pk for i in range(5)]  # img6 was never decided
    first = coco.loadImgs(image_ids[0])[0]
    assert (first["width"], first["height"]) == (32, 24)
    assert first["file_name"] == f"{image_ids[0]:08d}.webp"
    assert first["coco_url"].startswith(f"{BASE}/images/")
    captions = [[a["caption"] for a in coco.loadAnns(coco.getAnnIds(imgIds=i))] for i in image_ids]
    assert captions == [[CAFE], [EMOJI], [QUOTES], [RTL], [LINES]]


def test_hugging_face_imagefolder_loads_with_its_images(story, export, tmp_path):
    from datasets import load_dataset

    bundle = export("hf", "--images", "bundle")
    folder = tmp_path / "hf"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        zf.extractall(folder)
    assert names[0] == "metadata.jsonl"
    assert sorted(names[1:]) == [f"images/{story.images[i].pk:08d}.webp" for i in range(5)]
    dataset = load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "c"))
    train = dataset["train"].sort("image_id")
    assert train["caption"] == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert train["captions"][3] == [RTL]
    picture = train[0]["image"]
    assert (picture.format, picture.size) == ("WEBP", (32, 24))


def test_hugging_face_parquet_metadata_loads_in_pyarrow_and_datasets(story, export, tmp_path):
    import pyarrow.parquet as pq
    from datasets import load_dataset

    bundle = export("hf", "--parquet")
    folder = tmp_path / "hfp"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    table = pq.read_table(folder / "metadata.parquet")
    assert table.column("caption").to_pylist() == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert table.column("edited").to_pylist()[1] == [True]
    dataset = load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "c"))
    train = dataset["train"].sort("image_id")
    assert train["caption"] == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert train[4]["image"].size == (32, 24)


def test_label_studio_tasks_pass_the_sdk_and_convert_with_its_converter(story, export, tmp_path):
    from label_studio_sdk.converter import Converter
    from label_studio_sdk.label_interface import LabelInterface

    from labeling.services.export.formats import LABEL_STUDIO_CONFIG

    path = export("labelstudio", "--include", "reviewed", "--base-url", BASE)
    tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    interface = LabelInterface(LABEL_STUDIO_CONFIG)
    for task in tasks:
        # (the SDK's validate_task trips over tasks with annotations, so data is checked alone)
        assert interface.validate_task({"data": task["data"]})
        for prediction in task["predictions"]:
            assert interface.validate_prediction(prediction, return_errors=True) == []
        for annotation in task["annotations"]:
            assert interface.validate_annotation(annotation)
    first = tasks[0]
    assert first["data"]["image"] == f"{BASE}/images/{story.images[0].pk}/display/"
    # Both models' captions of img1 are predictions; only the approved one is an annotation.
    assert [p["model_version"] for p in first["predictions"]] == ["blip2-opt-2.7b", "openai/gpt-4o"]
    assert [p["result"][0]["value"]["text"] for p in first["predictions"]] == [[CAFE], ["A café."]]
    assert [a["result"][0]["value"]["text"] for a in first["annotations"]] == [[CAFE]]

    converter = Converter(LABEL_STUDIO_CONFIG, project_dir=str(tmp_path))
    converter.convert_to_json_min(path, str(tmp_path / "min"), is_dir=False)
    converted = json.loads((tmp_path / "min" / "result.json").read_text(encoding="utf-8"))
    assert [r["caption"] for r in converted] == [CAFE, EMOJI, QUOTES, RTL, LINES]


def test_filters_pick_the_captions_a_user_asked_for(story, export):
    def captions(*options: str) -> list[str]:
        with open(export("jsonl", *options), encoding="utf-8") as fh:
            return [json.loads(line)["caption"] for line in fh]

    def states(*options: str) -> list[tuple[str, str]]:
        with open(export("jsonl", *options), encoding="utf-8") as fh:
            return [(r["state"], r["model_caption"]) for r in map(json.loads, fh)]

    assert captions("--route", "gpt") == [RTL]
    assert captions("--model", "blip2-opt-2.7b") == [CAFE, EMOJI, QUOTES, LINES]
    assert captions("--decision", "edited") == [EMOJI, QUOTES]
    assert captions("--decision", "accepted") == [CAFE, RTL, LINES]
    assert captions("--risk", "chart") == [QUOTES]
    assert captions("--risk", "any") == [QUOTES]
    assert captions("--batch", str(story.batch.pk)) == [LINES]
    assert captions("--run", str(story.run.pk)) == [CAFE, EMOJI, QUOTES, RTL, LINES]
    assert captions("--run", str(story.run.pk + 1000)) == []
    assert captions("--from", "2000-01-01", "--to", "2000-12-31") == []
    assert len(captions("--from", "2000-01-01")) == 5
    assert states("--decision", "rejected") == [("rejected", "A café.")]
    assert len(states("--include", "reviewed")) == 6


def test_provenance_tells_who_decided_what_without_naming_reviewers(story, export, admin):
    from review.models import RiskCorrection

    # An admin says img3 is not a chart after all: the export shows the correction.
    RiskCorrection.objects.create(
        image=story.images[2], category="chart", flagged=False, corrected_by=admin
    )
    with open(export("jsonl", "--provenance"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    chart = rows[2]["provenance"]
    assert [v["decision"] for v in chart["verdicts"]] == ["accept", "edit"]
    reviewers = {v["reviewer"] for v in chart["verdicts"]}
    assert len(reviewers) == 2 and all(len(r) == 16 for r in reviewers)
    text = json.dumps(rows)
    for user in story.reviewers:
        assert user.username not in text
    assert chart["adjudication"]["decision"] == "approve"
    assert chart["adjudication"]["text"] == QUOTES
    assert chart["risk_flags"] == [
        {
            "category": "chart",
            "score": 0.97,
            "analyser_flagged": True,
            "flagged": False,
            "corrected_by_admin": True,
            "analyser_version": "test",
        }
    ]
    emoji = rows[1]["provenance"]
    assert (emoji["route"], emoji["provider"], emoji["prompt"]) == (
        "blip",
        "local",
        export_story.PROMPT,
    )
    assert (emoji["cost_usd"], emoji["latency_ms"], emoji["run_id"]) == (
        "0.00300000",
        1200,
        story.run.pk,
    )
    assert emoji["edit"]["word_distance"] > 0 and emoji["edit"]["char_effort"] > 0
    # The same reviewer has the same pseudonym on every row.
    assert rows[0]["provenance"]["verdicts"][0]["reviewer"] in reviewers


@pytest.mark.parametrize(
    "fmt,options",
    [
        ("jsonl", ("--images", "bundle", "--provenance")),
        ("csv", ("--images", "bundle", "--provenance")),
        ("coco", ("--images", "bundle", "--variant", "original")),
        ("hf", ("--parquet",)),
        ("labelstudio", ("--images", "bundle", "--include", "reviewed")),
    ],
)
def test_an_unchanged_selection_exports_byte_for_byte_the_same(story, export, fmt, options):
    first = Path(export(fmt, *options, name="first")).read_bytes()
    second = Path(export(fmt, *options, name="second")).read_bytes()
    assert len(first) > 500
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_bundles_carry_the_served_copy_by_default_and_the_original_on_request(
    db, admin, project, export, make_image_bytes
):
    """A phone photo with GPS in its EXIF: the default bundle has the stripped served copy."""
    from PIL import Image as PILImage

    from labeling.services.ingest import Candidate, image_ingest_one
    from review.models import ReviewItem
    from tests.factories import CaptionFactory

    exif = PILImage.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 18.0)}
    exif[0x010F] = "PhoneMaker"
    photo = make_image_bytes("JPEG", size=(80, 60), seed=3, exif=exif.tobytes())
    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(source="phone.jpg", name="phone.jpg", origin="upload", data=photo),
    )
    caption = CaptionFactory(image_id=outcome.image_id, text="A street at dusk.")
    ReviewItem.objects.create(
        caption=caption,
        image_id=outcome.image_id,
        project=project,
        state=ReviewItem.State.APPROVED,
        queued_at=caption.created_at,
        final_text="A street at dusk.",
        edited=False,
    )
    name = f"images/{outcome.image_id:08d}"
    with zipfile.ZipFile(export("jsonl", "--images", "bundle")) as zf:
        served = zf.read(f"{name}.webp")
    with zipfile.ZipFile(export("jsonl", "--images", "bundle", "--variant", "original")) as zf:
        original = zf.read(f"{name}.jpg")
        line = json.loads(zf.read("captions.jsonl"))
    assert original == photo
    assert PILImage.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    shown = PILImage.open(io.BytesIO(served))
    assert shown.format == "WEBP" and not shown.getexif()
    assert line["file_name"] == f"{name}.jpg" and line["caption"] == "A street at dusk."


def test_the_command_explains_what_it_cannot_do(story, export):
    with pytest.raises(CommandError, match="No project"):
        call_command("export", "--project", "nope", "--format", "jsonl", "--out", "/tmp/x")
    with pytest.raises(CommandError, match="approved captions only"):
        export("coco", "--include", "reviewed")
    with pytest.raises(CommandError, match="Unknown risk category"):
        export("jsonl", "--risk", "cats")


@pytest.mark.parametrize(
    "fmt,options",
    [
        ("jsonl", ("--base-url", BASE, "--include", "reviewed")),
        ("jsonl", ("--images", "bundle", "--variant", "original")),
        ("coco", ("--base-url", BASE)),
    ],
)
def test_rows_built_by_postgresql_are_the_bytes_python_writes(
    story, export, settings, fmt, options
):
    """Without provenance PostgreSQL builds the JSON (fast); elsewhere Python does: same file."""
    by_database = Path(export(fmt, *options, name="sql")).read_bytes()
    settings.EXPORT_SQL_JSON = False
    by_python = Path(export(fmt, *options, name="python")).read_bytes()
    assert len(by_python) > 300
    assert by_database == by_python
