"""Hostile images: one file must not take the web tier down.

The report: a 486 KB PNG of 8000x7999 16-bit RGBA zeros imported (64 M pixels, under the pixel
limit) at 490 MB in the web worker and 2.35 GB in Celery; six concurrent first requests of its
full-size copy each decoded it again (37-40 s, 2-3.5 GB each) and failed with libwebp's
"encoding error 6"; a 20000x100 PNG always failed (WebP's 16383 px side limit). Memory is
measured on real processes (peak RSS from the kernel), not estimated.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from labeling import tasks
from labeling.models import Image, ImportBatch, Membership
from labeling.services.derivatives import (
    DerivativeFailed,
    image_derivatives_failure,
    image_derivatives_failure_clear,
    image_display_file,
)
from labeling.services.ingest import Candidate, batch_create, image_ingest_one
from tests.conftest import wait_until
from tests.hardening.conftest import flat_png

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _manage_env(settings, media_root) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        MEDIA_ROOT=str(media_root),
        SECRET_KEY=settings.SECRET_KEY,
        # Queue nowhere: this measures the import itself, not a worker.
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_KEY_PREFIX="test:hardening-unconsumed:",
    )
    return env


# Runs manage.py and, at exit, prints its own peak RSS. Not ru_maxrss from wait4(): Linux
# carries the parent's high-water mark over exec, so a child of a big test process would look
# as big as its parent.
_MEASURED = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            print('PEAK_KB', line.split()[1], flush=True)\n"
    "atexit.register(peak)\n"
    "sys.argv = ['manage.py', *sys.argv[1:]]\n"
    "runpy.run_path('manage.py', run_name='__main__')\n"
)


def _import_measured(settings, media_root, path: Path, slug: str) -> tuple[dict, int]:
    """`manage.py import_images` on one file in its own process: (outcome, peak RSS bytes)."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED, "import_images", "--project", slug, "--json", str(path)],
        cwd=ROOT,
        env=_manage_env(settings, media_root),
        capture_output=True,
        text=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout + result.stderr
    peak_kb = next(
        int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("PEAK_KB")
    )
    return json.loads(lines[0]), peak_kb * 1024


def test_a_16_bit_bomb_is_refused_from_its_header_with_flat_memory(
    transactional_db, settings, project, tmp_path, bit_depth_bomb, make_image_bytes
):
    small = tmp_path / "small.png"
    small.write_bytes(make_image_bytes("PNG", size=(640, 480)))
    bomb = tmp_path / "zeros-16bit.png"
    bomb.write_bytes(bit_depth_bomb)
    assert len(bit_depth_bomb) < 600_000

    small_outcome, small_peak = _import_measured(settings, settings.MEDIA_ROOT, small, project.slug)
    bomb_outcome, bomb_peak = _import_measured(settings, settings.MEDIA_ROOT, bomb, project.slug)

    print(
        f"peak RSS: importing a photo {small_peak // MB} MB, the 16-bit bomb {bomb_peak // MB} MB"
    )
    assert small_outcome["status"] == "imported"
    assert bomb_outcome["status"] == "rejected"
    assert "decompression bomb refused" in bomb_outcome["reason"]
    assert "8000x7999" in bomb_outcome["reason"]
    assert "511,936,000 bytes" in bomb_outcome["reason"]  # 64 M pixels x 4 bands x 2 bytes
    # Refused before a pixel is decoded: the process is no bigger than one importing a photo.
    assert bomb_peak < small_peak + 48 * MB, (small_peak // MB, bomb_peak // MB)
    assert not Image.objects.filter(project=project).exclude(original_name="small.png").exists()


def _ingest(project, name: str, data: bytes) -> Image:
    batch = batch_create(project=project, kind=ImportBatch.Kind.UPLOAD)
    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(source=name, name=name, origin=Image.Source.UPLOAD, data=data),
        batch=batch,
    )
    assert outcome.status == "imported", outcome.reason
    return Image.objects.get(pk=outcome.image_id)


def test_a_20000x100_png_gets_thumbnails_and_a_served_copy_at_webps_limit(
    project, annotator, settings
):
    image = _ingest(project, "panorama.png", flat_png(20000, 100, color_type=2))
    client = Client()
    client.force_login(annotator)

    small = client.get(reverse("labeling:image-thumb", args=[image.pk, "small"]))
    assert small.status_code == 200
    assert PILImage.open(io.BytesIO(b"".join(small.streaming_content))).size == (256, 1)

    # First request: the large thumbnail stands in while a worker makes the copy.
    first = client.get(reverse("labeling:image-display", args=[image.pk]))
    assert first.status_code == 200
    assert first["Cache-Control"] == "no-store"
    assert PILImage.open(io.BytesIO(b"".join(first.streaming_content))).size == (1024, 5)

    tasks.image_make_display.run(image_id=image.pk)

    full = client.get(reverse("labeling:image-display", args=[image.pk]))
    assert full.status_code == 200
    assert full["Content-Type"] == "image/webp"
    shown = PILImage.open(io.BytesIO(b"".join(full.streaming_content)))
    # As wide as WebP allows (16383 px), the aspect ratio kept.
    assert shown.size == (16383, 81)
    assert shown.format == "WEBP"


def test_concurrent_first_requests_of_a_thumbnail_make_it_once(
    transactional_db, project, annotator, settings, make_image_bytes
):
    # A browser upload leaves the thumbnails to a task; six grid requests arrive before it.
    image = _ingest(project, "photo.jpg", make_image_bytes("JPEG", size=(3000, 2000)))
    assert not image.thumb_small
    url = reverse("labeling:image-thumb", args=[image.pk, "small"])
    statuses: list[int] = []
    gate = threading.Barrier(6)

    def fetch() -> None:
        client = Client()
        client.force_login(annotator)
        gate.wait()
        response = client.get(url)
        b"".join(response.streaming_content)
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [200] * 6
    # Storage renames a second save of one name (x-s_AbC123.webp): one file each means one making.
    made = sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "thumbs").rglob("*.*"))
    assert made == [f"{image.sha256}-l.jpg", f"{image.sha256}-s.webp"]


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_concurrent_first_requests_of_a_big_full_size_copy_queue_one_worker_job(
    transactional_db, settings, project, annotator, celery_worker_process, tmp_path
):
    # 8000x7999 8-bit RGBA zeros: 256 MB decoded, under the limit; libwebp overflows its first
    # partition on it at full size ("encoding error 6"), so the copy is scaled to 16.7 M pixels.
    path = tmp_path / "zeros-8bit.png"
    path.write_bytes(flat_png(8000, 7999, bit_depth=8, color_type=6))
    outcome, import_peak = _import_measured(settings, settings.MEDIA_ROOT, path, project.slug)
    assert outcome["status"] == "imported", outcome
    # The report's import of a 64 M pixel file cost 2.35 GB in Celery.
    assert import_peak < 800 * MB, import_peak // MB
    image = Image.objects.get(pk=outcome["image_id"])

    url = reverse("labeling:image-display", args=[image.pk])
    answers: list[tuple[int, str, int]] = []
    gate = threading.Barrier(6)

    def fetch() -> None:
        client = Client()
        client.force_login(annotator)
        gate.wait()
        response = client.get(url)
        body = b"".join(response.streaming_content)
        answers.append((response.status_code, response["Cache-Control"], len(body)))
        connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every request is answered at once with the large thumbnail; none decodes the original.
    assert [a[:2] for a in answers] == [(200, "no-store")] * 6
    image.refresh_from_db()
    assert not image.display

    worker = celery_worker_process(queues="default", concurrency=2)
    wait_until(lambda: Image.objects.get(pk=image.pk).display, timeout=120)
    peak = _peak_rss(worker.pid)
    # The report's six requests grew web workers to 2.2-3.5 GB each.
    print(f"peak RSS: import {import_peak // MB} MB, worker making the copy {peak // MB} MB")
    assert peak < 1200 * MB, peak // MB

    made = list((Path(settings.MEDIA_ROOT) / "display").rglob("*"))
    assert [p.name for p in made if p.is_file()] == [f"{image.sha256}-full.webp"]
    client = Client()
    client.force_login(annotator)
    full = client.get(url)
    assert full["Content-Type"] == "image/webp"
    assert PILImage.open(io.BytesIO(b"".join(full.streaming_content))).size == (4096, 4095)


def test_a_detailed_image_webp_refuses_at_full_size_is_served_smaller():
    import numpy as np

    from labeling import imaging

    noise = PILImage.fromarray(
        np.random.default_rng(7).integers(0, 255, (4096, 4096, 3), dtype=np.uint8)
    )
    with pytest.raises((OSError, ValueError), match="encoding error 6"):
        imaging.encode_webp(noise, max_side=None, quality=90)
    served = PILImage.open(io.BytesIO(imaging.encode_display(noise)))
    assert served.format == "WEBP"
    assert served.size == (2048, 2048)


def test_a_failed_preview_is_recorded_shown_and_not_redone(
    project, settings, make_image_bytes, django_user_model
):
    admin = django_user_model.objects.create_user(username="ida", password="ida-pass-12345")
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    image = _ingest(project, "old.png", make_image_bytes("PNG", size=(800, 600)))
    # An image imported before the decoded-size limit was lowered below it.
    settings.INGEST_MAX_DECODED_BYTES = 1000
    client = Client()
    client.force_login(admin)

    first = client.get(reverse("labeling:image-thumb", args=[image.pk, "large"]))
    assert first.status_code == 404
    assert "decodes to" in image_derivatives_failure(image=image)
    # Later requests answer from the record, even once the limit would let it through.
    settings.INGEST_MAX_DECODED_BYTES = 256 * MB
    assert client.get(reverse("labeling:image-display", args=[image.pk])).status_code == 404
    with pytest.raises(DerivativeFailed, match="decodes to"):
        image_display_file(image=image)

    page = client.get(reverse("labeling:image-detail", args=[image.pk])).content.decode()
    assert 'id="preview-failure"' in page
    assert "Could not be made: decompression bomb refused: 800x600 RGB decodes to" in page

    # The record is on the image's row, not a file beside the derivatives.
    image.refresh_from_db()
    assert image.display_error.startswith("decompression bomb refused: 800x600 RGB decodes to")
    assert image.display_failed_at is not None
    assert not (Path(settings.MEDIA_ROOT) / "failed").exists()
    image_derivatives_failure_clear(image=image)
    image.refresh_from_db()
    assert (image.display_error, image.display_failed_at) == ("", None)
    assert client.get(reverse("labeling:image-thumb", args=[image.pk, "large"])).status_code == 200


def test_a_failure_reason_is_shown_escaped(
    project, make_image_bytes, django_user_model, monkeypatch
):
    from labeling import imaging

    admin = django_user_model.objects.create_user(username="ivo", password="ivo-pass-12345")
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    image = _ingest(project, "odd.png", make_image_bytes("PNG", size=(64, 48)))
    Image.objects.filter(pk=image.pk).update(thumb_small="", thumb_large="")

    def hostile(*args, **kwargs):
        raise ValueError('<script>alert("x")</script> & <b>bold</b>')

    monkeypatch.setattr(imaging, "open_for_derivatives", hostile)
    client = Client()
    client.force_login(admin)
    assert client.get(reverse("labeling:image-thumb", args=[image.pk, "small"])).status_code == 404

    page = client.get(reverse("labeling:image-detail", args=[image.pk])).content.decode()
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "ValueError: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in page


def test_the_migration_moves_failure_files_onto_the_images(project, settings, make_image_bytes):
    import importlib

    from django.apps import apps
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    migration = importlib.import_module("labeling.migrations.0007_image_display_error")
    failed = _ingest(project, "failed.png", make_image_bytes("PNG", size=(40, 30), seed=1))
    fine = _ingest(project, "fine.png", make_image_bytes("PNG", size=(40, 30), seed=2))
    name = f"failed/{failed.sha256[:2]}/{failed.sha256}.txt"
    default_storage.save(name, ContentFile(b"cannot identify image file"))
    default_storage.save("failed/zz/readme.md", ContentFile(b"not a record"))

    migration.failures_from_storage(apps, None)

    failed.refresh_from_db()
    fine.refresh_from_db()
    assert failed.display_error == "cannot identify image file"
    assert failed.display_failed_at is not None
    assert (fine.display_error, fine.display_failed_at) == ("", None)
    assert not default_storage.exists(name)
    assert default_storage.exists("failed/zz/readme.md")  # not ours: left alone
