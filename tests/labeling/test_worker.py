"""A real Celery worker consumes from Redis and makes the thumbnails after the import commits."""

from __future__ import annotations

import pytest
from PIL import Image as PILImage

from labeling.models import Image
from labeling.services.ingest import Candidate, image_ingest_one
from tests.conftest import wait_until


@pytest.mark.worker
def test_worker_makes_thumbnails_after_commit(celery_worker_process, project, make_image_bytes):
    celery_worker_process(queues="default")
    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(
            source="big.jpg",
            name="big.jpg",
            origin="upload",
            data=make_image_bytes("JPEG", size=(1600, 1200), seed=70),
        ),
    )
    image = wait_until(
        lambda: (
            Image.objects.filter(pk=outcome.image_id)
            .exclude(thumb_small="")
            .exclude(thumb_large="")
            .first()
        ),
        timeout=60,
    )
    small = PILImage.open(image.thumb_small.open("rb"))
    large = PILImage.open(image.thumb_large.open("rb"))
    assert (small.format, max(small.size)) == ("WEBP", 256)
    assert (large.format, max(large.size)) == ("JPEG", 1024)  # fast to encode (no alpha here)
