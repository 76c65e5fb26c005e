"""Zip archives: members import one by one; zip-slip names and zip bombs cannot hurt us."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import override_settings

from labeling.models import Image, ImportBatch
from labeling.services.ingest import batch_create, batch_ingest
from labeling.services.sources import zip_candidates
from tests.labeling.conftest import EXPECTED_REASONS, make_zip

pytestmark = pytest.mark.django_db


def _run_zip(project, data: bytes, label="photos.zip"):
    batch = batch_create(project=project, kind=ImportBatch.Kind.ZIP, label=label)
    outcomes = {
        o.source: o
        for o in batch_ingest(batch=batch, candidates=zip_candidates(io.BytesIO(data), label=label))
    }
    batch.refresh_from_db()
    return batch, outcomes


def test_zip_with_good_and_bad_members(project, make_image_bytes, bad_files, tmp_path):
    members = {
        "holiday/a.jpg": make_image_bytes("JPEG", seed=31),
        "b.png": make_image_bytes("PNG", seed=32),
    }
    members.update({f"bad/{n}": d for n, d in bad_files.items()})
    members["__MACOSX/._a.jpg"] = b"resource fork"
    members[".DS_Store"] = b"\x00\x00"
    batch, outcomes = _run_zip(project, make_zip(members))
    assert outcomes["photos.zip:holiday/a.jpg"].status == "imported"
    assert outcomes["photos.zip:b.png"].status == "imported"
    for name, reason in EXPECTED_REASONS.items():
        assert reason.lower() in outcomes[f"photos.zip:bad/{name}"].reason.lower()
    assert not any("MACOSX" in s or "DS_Store" in s for s in outcomes)
    assert (batch.imported, batch.rejected) == (2, len(bad_files))
    assert (
        Image.objects.get(pk=outcomes["photos.zip:holiday/a.jpg"].image_id).original_name == "a.jpg"
    )


def test_zip_slip_names_never_become_paths(project, make_image_bytes, tmp_path, settings):
    evil = {
        "../../../../tmp/evil.png": make_image_bytes("PNG", seed=33),
        "/abs/evil2.png": make_image_bytes("PNG", seed=34),
    }
    batch, outcomes = _run_zip(project, make_zip(evil))
    assert batch.imported == 2
    for image in Image.objects.filter(project=project):
        assert ".." not in image.file.name and not image.file.name.startswith("/")
        assert image.original_name in ("evil.png", "evil2.png")
        assert str(image.file.path).startswith(str(settings.MEDIA_ROOT))
    assert not (tmp_path / "evil.png").exists()


def test_zip_bomb_member_refused_by_ratio_and_size(project, make_image_bytes):
    zeros = b"\x00" * (30 * 1024 * 1024)  # 30 MB of zeros deflates to ~30 KB: ratio ~1000:1
    data = make_zip({"bomb.bin": zeros, "ok.jpg": make_image_bytes("JPEG", seed=35)})
    batch, outcomes = _run_zip(project, data)
    assert "zip bomb refused" in outcomes["photos.zip:bomb.bin"].reason
    assert outcomes["photos.zip:ok.jpg"].status == "imported"
    with override_settings(INGEST_MAX_BYTES=1024 * 1024):
        _, outcomes = _run_zip(project, data, label="again.zip")
    assert "too large" in outcomes["again.zip:bomb.bin"].reason


def test_member_lying_about_its_size_is_stopped_while_reading(project, make_image_bytes):
    payload = b"\x00" * (3 * 1024 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("liar.png", payload)
    raw = bytearray(buf.getvalue())
    # Patch the declared size in the central directory to 100 bytes; the member still holds 3 MB.
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    lfh = raw.find(b"PK\x03\x04")
    raw[lfh + 22 : lfh + 26] = (100).to_bytes(4, "little")
    with override_settings(INGEST_MAX_BYTES=1024 * 1024):
        _, outcomes = _run_zip(project, bytes(raw))
    outcome = outcomes["photos.zip:liar.png"]
    assert outcome.status == "rejected"
    assert (
        "zip" in outcome.reason
        or "not an image" in outcome.reason
        or "unreadable" in outcome.reason
    )


def test_too_many_members_is_refused_as_a_whole(project, make_image_bytes):
    data = make_zip({f"{i}.png": b"x" for i in range(6)})
    with override_settings(ZIP_MAX_MEMBERS=5):
        batch, outcomes = _run_zip(project, data)
    assert list(outcomes.values())[0].reason == "archive has 6 files (limit 5)"


def test_corrupt_member_is_rejected_alone(project, make_image_bytes):
    good = make_image_bytes("JPEG", seed=36)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.jpg", good)
        zf.writestr("broken.jpg", make_image_bytes("JPEG", seed=37, size=(300, 300)))
    raw = bytearray(buf.getvalue())
    # Flip bytes in the middle of the second member's compressed data.
    second = raw.find(b"PK\x03\x04", 4)
    for i in range(second + 60, second + 120):
        raw[i] ^= 0xFF
    _, outcomes = _run_zip(project, bytes(raw))
    assert outcomes["photos.zip:good.jpg"].status == "imported"
    broken = outcomes["photos.zip:broken.jpg"]
    assert broken.status == "rejected" and broken.reason


def test_not_a_zip_is_one_rejected_entry(project):
    batch, outcomes = _run_zip(project, b"definitely not a zip")
    assert list(outcomes.values())[0].reason.startswith("not a readable zip archive")
    assert batch.status == ImportBatch.Status.DONE


def test_encrypted_member_is_rejected_with_its_reason(project, make_image_bytes):
    raw = bytearray(
        make_zip({"secret.jpg": make_image_bytes("JPEG", seed=38)}, compression=zipfile.ZIP_STORED)
    )
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 8] |= 0x1  # "encrypted" flag in the central directory
    raw[raw.find(b"PK\x03\x04") + 6] |= 0x1
    _, outcomes = _run_zip(project, bytes(raw))
    assert outcomes["photos.zip:secret.jpg"].reason == "encrypted zip member"
