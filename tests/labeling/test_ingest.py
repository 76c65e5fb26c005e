"""Ingestion: good files import, every bad file is rejected with its reason, nothing escapes."""

from __future__ import annotations

import io

import pytest
from django.test import override_settings
from PIL import Image as PILImage

from labeling.models import Image, ImportBatch, ImportItem
from labeling.services.derivatives import image_display_file, image_make_derivatives
from labeling.services.ingest import Candidate, batch_create, batch_ingest, image_ingest_one
from tests.labeling.conftest import EXPECTED_REASONS

pytestmark = pytest.mark.django_db


def _ingest(project, files: dict[str, bytes], origin=Image.Source.UPLOAD, inline=False):
    batch = batch_create(project=project, kind=ImportBatch.Kind.UPLOAD)
    candidates = [Candidate(source=n, name=n, origin=origin, data=d) for n, d in files.items()]
    outcomes = {
        o.source: o
        for o in batch_ingest(batch=batch, candidates=candidates, thumbnails_inline=inline)
    }
    batch.refresh_from_db()
    return batch, outcomes


def test_bad_files_mixed_with_good_ones_reject_one_by_one(project, make_image_bytes, bad_files):
    good = {
        "a.jpg": make_image_bytes("JPEG", seed=1),
        "b.png": make_image_bytes("PNG", seed=2),
        "c.webp": make_image_bytes("WEBP", seed=3),
        "d.bmp": make_image_bytes("BMP", seed=4),
        "e.tif": make_image_bytes("TIFF", seed=5),
        "f.gif": make_image_bytes("GIF", seed=6, mode="P"),
    }
    files = {}
    for (gname, gdata), (bname, bdata) in zip(
        good.items(), list(bad_files.items()) + [("", b"")] * 3, strict=False
    ):
        files[gname] = gdata
        if bname:
            files[bname] = bdata
    for bname, bdata in bad_files.items():
        files.setdefault(bname, bdata)

    batch, outcomes = _ingest(project, files)

    for name in good:
        assert outcomes[name].status == "imported", (name, outcomes[name].reason)
    for name, expected in EXPECTED_REASONS.items():
        assert outcomes[name].status == "rejected", name
        assert expected.lower() in outcomes[name].reason.lower(), (name, outcomes[name].reason)
    assert batch.status == ImportBatch.Status.DONE
    assert (batch.imported, batch.rejected, batch.total) == (6, len(bad_files), len(files))
    assert Image.objects.filter(project=project).count() == 6
    assert ImportItem.objects.filter(batch=batch, status="rejected").count() == len(bad_files)
    formats = set(Image.objects.values_list("format", flat=True))
    assert formats == {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"}


def test_oversized_file_is_refused_by_size_before_decoding(project, make_image_bytes):
    data = make_image_bytes("PNG", size=(200, 200))
    with override_settings(INGEST_MAX_BYTES=len(data) - 1):
        _, outcomes = _ingest(project, {"big.png": data})
    assert outcomes["big.png"].status == "rejected"
    assert "too large" in outcomes["big.png"].reason


def test_pixel_limit_is_configurable(project, make_image_bytes):
    data = make_image_bytes("PNG", size=(200, 100))
    with override_settings(INGEST_MAX_PIXELS=19_999):
        _, outcomes = _ingest(project, {"wide.png": data})
    assert "decompression bomb" in outcomes["wide.png"].reason
    assert "20,000" in outcomes["wide.png"].reason


def test_exact_duplicate_reports_the_first_image(project, make_image_bytes):
    data = make_image_bytes("JPEG", seed=7)
    _, first = _ingest(project, {"one.jpg": data})
    batch, second = _ingest(project, {"copy-of-one.jpg": data})
    first_id = first["one.jpg"].image_id
    assert second["copy-of-one.jpg"].status == "duplicate"
    assert second["copy-of-one.jpg"].image_id == first_id
    assert f"#{first_id}" in second["copy-of-one.jpg"].reason
    assert batch.duplicates == 1
    assert Image.objects.filter(project=project).count() == 1


def test_same_file_in_another_project_is_not_a_duplicate(project, make_image_bytes):
    from labeling.models import Project

    other = Project.objects.create(name="Other", slug="other")
    data = make_image_bytes("JPEG", seed=8)
    _ingest(project, {"x.jpg": data})
    _, outcomes = _ingest(other, {"x.jpg": data})
    assert outcomes["x.jpg"].status == "imported"


def test_near_duplicate_is_recorded_and_shown(project, make_image_bytes, client, admin):
    original = make_image_bytes("PNG", size=(320, 240), seed=11)
    img = PILImage.open(io.BytesIO(original)).convert("RGB").resize((160, 120))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    unrelated = make_image_bytes("PNG", size=(320, 240), seed=12)

    _, outcomes = _ingest(
        project, {"orig.png": original, "small.jpg": buf.getvalue(), "other.png": unrelated}
    )

    near = outcomes["small.jpg"]
    assert near.status == "imported"
    assert near.near_duplicate_of == outcomes["orig.png"].image_id
    assert outcomes["other.png"].near_duplicate_of is None
    image = Image.objects.get(pk=near.image_id)
    assert image.near_duplicate_distance is not None and image.near_duplicate_distance <= 5
    client.force_login(admin)
    page = client.get(f"/projects/{project.slug}/?near=on").content.decode()
    assert f"near-duplicate of #{outcomes['orig.png'].image_id}" in page
    assert "other.png" not in page


def _jpeg_with_exif(*, orientation: int, gps: bool) -> bytes:
    # A landscape picture whose left half is red and right half blue, stored "rotated".
    img = PILImage.new("RGB", (80, 40), "blue")
    img.paste((255, 0, 0), (0, 0, 40, 40))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "CameraMaker"
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("inline", [False, True], ids=["thumbnail-task", "bulk-inline"])
def test_exif_orientation_applied_and_gps_stripped_from_everything_served(project, inline):
    data = _jpeg_with_exif(orientation=6, gps=True)  # 6 = rotate 90° clockwise to display
    assert PILImage.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the file really has GPS
    _, outcomes = _ingest(project, {"phone.jpg": data}, inline=inline)
    image = Image.objects.get(pk=outcomes["phone.jpg"].image_id)
    assert (image.width, image.height) == (40, 80)  # as displayed
    assert bool(image.thumb_large) == inline  # a bulk import made them from its own decode

    image_make_derivatives(image=image)
    image_display_file(image=image)
    image.refresh_from_db()
    for field, fmt in (
        (image.thumb_small, "WEBP"),
        (image.thumb_large, "JPEG"),
        (image.display, "WEBP"),
    ):
        served = PILImage.open(field.open("rb"))
        assert served.format == fmt
        assert served.size == (40, 80)
        exif = served.getexif()
        assert not exif.get_ifd(0x8825) and 0x010F not in exif, field.name
        assert "exif" not in served.info and "xmp" not in served.info
        # Rotated clockwise: the red half is now on top.
        top = served.convert("RGB").getpixel((20, 5))
        bottom = served.convert("RGB").getpixel((20, 75))
        assert top[0] > 200 and top[2] < 60, top
        assert bottom[2] > 200 and bottom[0] < 60, bottom
    # The original bytes are kept untouched for export.
    assert image.file.open("rb").read() == data


@pytest.mark.parametrize(
    "mode,fmt",
    [("CMYK", "JPEG"), ("I;16", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("1", "BMP")],
)
@pytest.mark.parametrize("inline", [False, True], ids=["thumbnail-task", "bulk-inline"])
def test_odd_modes_get_browser_friendly_derivatives(project, make_image_bytes, mode, fmt, inline):
    if mode == "I;16":
        import numpy as np

        arr = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, "PNG")
        data = buf.getvalue()
    else:
        data = make_image_bytes(fmt, mode=mode, seed=hash(mode) % 1000)
    _, outcomes = _ingest(project, {f"odd.{fmt.lower()}": data}, inline=inline)
    outcome = next(iter(outcomes.values()))
    assert outcome.status == "imported", outcome.reason
    image = Image.objects.get(pk=outcome.image_id)
    if not inline:
        image_make_derivatives(image=image)
    image.refresh_from_db()
    thumb = PILImage.open(image.thumb_small.open("rb"))
    assert thumb.mode in ("RGB", "RGBA", "L")
    if mode == "I;16":
        # 16-bit range is scaled, not clipped to white.
        assert thumb.convert("L").getextrema()[0] < 30


def test_animated_gif_imports_its_first_frame(project):
    frames = [PILImage.new("RGB", (30, 30), c) for c in ("green", "red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    _, outcomes = _ingest(project, {"anim.gif": buf.getvalue()})
    image = Image.objects.get(pk=outcomes["anim.gif"].image_id)
    image_make_derivatives(image=image)
    image.refresh_from_db()
    r, g, b = PILImage.open(image.thumb_small.open("rb")).convert("RGB").getpixel((5, 5))
    assert g > 100 and r < 50


def test_storage_name_never_comes_from_the_file_name(project, make_image_bytes):
    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(
            source="../../etc/passwd.png",
            name="../../etc/\x00pass\x1bwd.png",
            origin=Image.Source.UPLOAD,
            data=make_image_bytes("PNG", seed=21),
        ),
    )
    image = Image.objects.get(pk=outcome.image_id)
    assert ".." not in image.file.name and "passwd" not in image.file.name
    assert image.original_name == "passwd.png"


def test_unreadable_candidate_is_rejected_with_its_error(project):
    batch = batch_create(project=project, kind=ImportBatch.Kind.PATH)
    outcomes = list(
        batch_ingest(
            batch=batch,
            candidates=[
                Candidate(
                    source="/nope.jpg",
                    name="nope.jpg",
                    origin="path",
                    error="no such file or folder",
                )
            ],
        )
    )
    assert outcomes[0].status == "rejected" and outcomes[0].reason == "no such file or folder"


def test_bulk_import_makes_thumbnails_itself_and_queues_no_thumbnail_task(
    project, make_image_bytes
):
    from labeling import tasks

    sent = []
    real = tasks.image_make_derivatives.delay_on_commit
    tasks.image_make_derivatives.delay_on_commit = lambda **kw: sent.append(kw)
    try:
        _, bulk = _ingest(
            project, {"big.jpg": make_image_bytes("JPEG", size=(2400, 1200))}, inline=True
        )
        _, upload = _ingest(project, {"up.png": make_image_bytes("PNG", seed=77)})
    finally:
        tasks.image_make_derivatives.delay_on_commit = real
    assert sent == [{"image_id": upload["up.png"].image_id}]
    image = Image.objects.get(pk=bulk["big.jpg"].image_id)
    assert (image.width, image.height) == (2400, 1200)  # the header's size, not the decode's
    assert PILImage.open(image.thumb_large.open("rb")).size == (1024, 512)
    assert PILImage.open(image.thumb_small.open("rb")).size == (256, 128)


def test_the_large_thumbnail_keeps_transparency_as_webp(project, make_image_bytes):
    """JPEG for speed, except where it would paint a transparent background black."""
    data = make_image_bytes("PNG", size=(300, 200), mode="RGBA")
    rgba = PILImage.open(io.BytesIO(data))
    pixels = rgba.copy()
    pixels.putalpha(PILImage.new("L", rgba.size, 0))
    buf = io.BytesIO()
    pixels.save(buf, "PNG")
    _, outcomes = _ingest(project, {"logo.png": buf.getvalue()}, inline=True)
    image = Image.objects.get(pk=outcomes["logo.png"].image_id)
    image_make_derivatives(image=image)
    assert image.thumb_large.name.endswith("-l.webp")
    assert PILImage.open(image.thumb_large.open("rb")).mode == "RGBA"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "inside-atomic"])
def test_the_same_bytes_imported_at_the_same_moment_make_one_image(
    project, make_image_bytes, monkeypatch, in_transaction
):
    """A bulk import stores the file and both thumbnails before its INSERT. When another import
    of the same bytes commits in between, the unique constraint refuses ours: it becomes a
    duplicate of theirs, our three files are deleted (not theirs), and the connection (or the
    caller's transaction) goes on working."""
    from django.core.files.storage import default_storage
    from django.db import transaction

    from labeling.services import derivatives

    data = make_image_bytes("JPEG", seed=11)
    theirs = {}
    real_encode = derivatives.thumbnails_encode

    def encode_while_another_import_commits(pixels):
        if not theirs:
            theirs["busy"] = True  # their import encodes too: only ours runs this once
            _, outcomes = _ingest(project, {"theirs.jpg": data}, inline=True)
            theirs["image"] = Image.objects.get(pk=outcomes["theirs.jpg"].image_id)
        return real_encode(pixels)

    monkeypatch.setattr(derivatives, "thumbnails_encode", encode_while_another_import_commits)
    saved = []
    real_save = default_storage.save
    monkeypatch.setattr(
        default_storage,
        "save",
        lambda name, *a, **k: saved.append(real_save(name, *a, **k)) or saved[-1],
    )

    def ours():
        return image_ingest_one(
            project=project,
            candidate=Candidate(source="ours.jpg", name="ours.jpg", origin="path", data=data),
            thumbnails_inline=True,
        )

    if in_transaction:
        with transaction.atomic():
            outcome = ours()
            assert Image.objects.filter(project=project).count() == 1  # still usable
    else:
        outcome = ours()
    first = theirs["image"]
    assert outcome.status == ImportItem.Status.DUPLICATE and outcome.image_id == first.pk
    assert Image.objects.filter(project=project).count() == 1
    kept = {first.file.name, first.thumb_large.name, first.thumb_small.name}
    assert all(default_storage.exists(name) for name in kept)
    ours_files = [name for name in saved if name not in kept]
    assert len(ours_files) == 3 and not any(default_storage.exists(n) for n in ours_files)
