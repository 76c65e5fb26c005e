"""A stored file the database still knows is gone (MEDIA_ROOT changed after a first run, a volume
not mounted): the browser gets a 404 and the operator a warning naming the image, never a 500."""

from __future__ import annotations

import logging
import shutil

import pytest

from labeling.models import Image
from labeling.services.derivatives import image_make_derivatives
from labeling.services.ingest import Candidate, image_ingest_one

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(project, make_image_bytes) -> Image:
    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(
            source="a.png", name="a.png", origin="upload", data=make_image_bytes("PNG", seed=7)
        ),
    )
    image = Image.objects.get(pk=outcome.image_id)
    image_make_derivatives(image=image)
    return image


@pytest.mark.parametrize("path", ["thumb/small/", "thumb/large/", "display/"])
def test_a_missing_file_is_a_404_with_a_warning(
    client, annotator, imported, _media_root, caplog, path
):
    shutil.rmtree(_media_root)  # every stored file gone, the rows still there
    client.force_login(annotator)

    with caplog.at_level(logging.WARNING, logger="labeling.views"):
        response = client.get(f"/images/{imported.pk}/{path}")

    assert response.status_code == 404
    assert f"image {imported.pk}: stored file missing" in caplog.text
    assert "MEDIA_ROOT" in caplog.text
