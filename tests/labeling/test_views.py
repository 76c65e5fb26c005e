"""The import pages end to end through Django's test client, and who may see what."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Image, ImportBatch, Membership, Project
from labeling.services.derivatives import image_make_derivatives
from tests.labeling.conftest import make_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user(username="pam", password="project-admin-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


def _upload(name, data, ctype="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=ctype)


def test_upload_page_without_javascript_imports_and_shows_the_batch(
    client, project_admin, project, make_image_bytes
):
    client.force_login(project_admin)
    page = client.get(f"/projects/{project.slug}/import/")
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content
    files = [
        _upload("cat.jpg", make_image_bytes("JPEG", seed=51)),
        _upload("dog.png", make_image_bytes("PNG", seed=52), "image/png"),
        _upload("<img src=x onerror=alert(1)>.png", b"not an image", "image/png"),
    ]
    response = client.post(f"/projects/{project.slug}/import/upload/", {"files": files})
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert (batch.status, batch.imported, batch.rejected) == ("done", 2, 1)
    html = client.get(response["Location"]).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html  # the file name is escaped
    assert "<img src=x" not in html
    assert "not an image" in html


def test_script_upload_flow_open_batch_post_files_close(
    client, project_admin, project, make_image_bytes
):
    client.force_login(project_admin)
    opened = client.post(f"/projects/{project.slug}/import/batches/", {"expected": "2"}).json()
    first = client.post(
        opened["files_url"], {"files": [_upload("a.jpg", make_image_bytes("JPEG", seed=53))]}
    )
    again = client.post(
        opened["files_url"], {"files": [_upload("a-again.jpg", make_image_bytes("JPEG", seed=53))]}
    )
    assert first.json()["results"][0]["status"] == "imported"
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["results"][0]["image_id"] == first.json()["results"][0]["image_id"]
    progress = client.get(f"/batches/{opened['id']}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in progress  # still running: the page keeps polling
    client.post(opened["close_url"])
    batch = ImportBatch.objects.get(pk=opened["id"])
    assert (batch.status, batch.imported, batch.duplicates, batch.progress_percent) == (
        "done",
        1,
        1,
        100,
    )
    assert "every 1s" not in client.get(f"/batches/{batch.pk}/progress/").content.decode()
    late = client.post(
        opened["files_url"], {"files": [_upload("late.jpg", make_image_bytes("JPEG", seed=54))]}
    )
    assert late.status_code == 409


def test_zip_upload_is_processed_by_the_batch_task(
    client, project_admin, project, make_image_bytes, django_capture_on_commit_callbacks
):
    from labeling import tasks

    client.force_login(project_admin)
    archive = make_zip({"x/1.jpg": make_image_bytes("JPEG", seed=55), "x/2.txt": b"hello"})
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/projects/{project.slug}/import/zip/",
            {"archive": _upload("set.zip", archive, "application/zip")},
        )
    batch = ImportBatch.objects.get()
    assert response["Location"] == f"/batches/{batch.pk}/"
    assert batch.status == "pending" and batch.payload
    assert len(callbacks) == 1
    tasks.batch_process.run(batch_id=batch.pk)  # what the worker runs
    batch.refresh_from_db()
    assert (batch.status, batch.imported, batch.rejected) == ("done", 1, 1)


def test_project_grid_is_paginated_and_filtered(client, annotator, project, make_image_bytes):
    from labeling.services.ingest import Candidate, batch_create, batch_ingest

    batch = batch_create(project=project, kind=ImportBatch.Kind.UPLOAD)
    list(
        batch_ingest(
            batch=batch,
            candidates=[
                Candidate(
                    source=f"{i}.png",
                    name=f"{i}.png",
                    origin="upload",
                    data=make_image_bytes("PNG", seed=100 + i, size=(16, 16)),
                )
                for i in range(65)
            ],
        )
    )
    Image.objects.filter(original_name="3.png").update(status=Image.Status.APPROVED)
    client.force_login(annotator)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(f"/projects/{project.slug}/").content.decode()
    assert first.count('class="tile"') == 60 and "Page 1 of 2" in first
    # The per-status counts the page shows are the grid's count: one count of the images.
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"]]
    assert len([sql for sql in counts if 'FROM "labeling_image"' in sql]) == 1, counts
    approved = client.get(f"/projects/{project.slug}/?status=approved").content.decode()
    assert approved.count('class="tile"') == 1 and "3.png" in approved
    # A status filter's count is that status's count: page 2 of one image is its last page.
    past = client.get(f"/projects/{project.slug}/?status=approved&page=2").content.decode()
    assert past.count('class="tile"') == 1
    assert (
        client.get(f"/projects/{project.slug}/?batch={batch.pk}&page=2")
        .content.decode()
        .count('class="tile"')
        == 5
    )
    assert "Import images" not in first  # annotators do not import


def test_thumbnails_are_served_only_to_members_as_images(
    client, annotator, outsider, project, make_image_bytes
):
    from labeling.services.ingest import Candidate, image_ingest_one

    outcome = image_ingest_one(
        project=project,
        candidate=Candidate(
            source="a.png", name="a.png", origin="upload", data=make_image_bytes("PNG", seed=60)
        ),
    )
    image_make_derivatives(image=Image.objects.get(pk=outcome.image_id))
    client.force_login(annotator)
    response = client.get(f"/images/{outcome.image_id}/thumb/small/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    client.force_login(outsider)
    assert client.get(f"/images/{outcome.image_id}/thumb/small/").status_code == 404
    assert client.get(f"/images/{outcome.image_id}/").status_code == 404
    assert client.get(f"/projects/{project.slug}/").status_code == 404


def test_roles(client, admin, annotator, outsider, project):
    client.logout()
    assert client.get("/projects/")["Location"].startswith("/login/")
    assert client.get(f"/projects/{project.slug}/import/")["Location"].startswith("/login/")

    client.force_login(annotator)
    assert project.name in client.get("/projects/").content.decode()
    assert client.get(f"/projects/{project.slug}/import/").status_code == 403
    assert client.post(f"/projects/{project.slug}/import/batches/").status_code == 403
    assert client.get("/projects/new/").status_code == 403
    assert client.get(f"/projects/{project.slug}/members/").status_code == 403

    client.force_login(outsider)
    assert project.name not in client.get("/projects/").content.decode()

    client.force_login(admin)
    response = client.post("/projects/new/", {"name": "Charts Q3", "caption_prompt": ""})
    assert response["Location"] == "/projects/charts-q3/"
    created = Project.objects.get(slug="charts-q3")
    client.post(f"/projects/{created.slug}/members/", {"username": "otto", "role": "annotator"})
    client.force_login(outsider)
    assert "Charts Q3" in client.get("/projects/").content.decode()


def test_csrf_is_enforced_on_posts(project_admin, project):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(project_admin)
    assert strict.post(f"/projects/{project.slug}/import/batches/").status_code == 403
