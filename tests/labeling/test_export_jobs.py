"""Exports as background jobs: started from the project's export page, run by a real Celery worker
on the `default` queue, followed on the page, cancelled, downloaded through a permission-checked
view; and memory that stays flat however many rows an export has."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Export, Membership, Project
from labeling.services.export import ExportSpec, export_create, export_run
from tests.conftest import wait_until
from tests.factories import UserFactory
from tests.labeling import export_story
from tests.labeling.export_bulk import seed_approved

ROOT = Path(__file__).resolve().parents[2]
FORM = {"format": "jsonl", "include": "approved", "images": "url", "variant": "display"}


def _user(username: str, project: Project | None = None, role: str = "annotator"):
    user = UserFactory(username=username)
    user.save()
    if project is not None:
        Membership.objects.create(project=project, user=user, role=role)
    return user


@pytest.mark.worker
def test_an_admin_exports_from_the_page_and_downloads_what_the_command_line_writes(
    celery_worker_process, client, admin, project, tmp_path
):
    from pycocotools.coco import COCO

    export_story.build(project, admin)
    celery_worker_process(queues="default")
    lead = _user("lena-lead", project, role=Membership.Role.ADMIN)
    client.force_login(lead)
    page = client.get(reverse("labeling:project-detail", args=[project.slug]))
    assert reverse("labeling:export-list", args=[project.slug]) in page.content.decode()

    response = client.post(
        reverse("labeling:export-list", args=[project.slug]),
        {**FORM, "format": "coco", "images": "bundle", "provenance": "on"},
    )
    export = Export.objects.get(project=project)
    assert response.status_code == 302 and response.url == f"/exports/{export.pk}/"
    wait_until(lambda: Export.objects.filter(pk=export.pk, status="done").exists(), timeout=90)
    export.refresh_from_db()
    assert (export.rows, export.total, export.done) == (5, 15, 15)  # 5 images twice + 5 rows

    detail = client.get(f"/exports/{export.pk}/").content.decode()
    assert "Download street-photos-coco.zip" in detail and export.sha256 in detail
    download = client.get(reverse("labeling:export-download", args=[export.pk]))
    assert download["Content-Disposition"] == 'attachment; filename="street-photos-coco.zip"'
    body = b"".join(download.streaming_content)
    assert len(body) == export.byte_size

    # The worker's file is byte for byte what the command writes for the same selection.
    out = tmp_path / "cli.zip"
    call_command(
        "export", "--project", project.slug, "--format", "coco", "--images", "bundle",
        "--provenance", "--base-url", "http://testserver", "--out", str(out),
    )  # fmt: skip
    assert out.read_bytes() == body
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "annotations" / "captions.json"))
    assert len(coco.getAnnIds()) == 5
    for image in coco.loadImgs(coco.getImgIds()):
        assert (tmp_path / "coco" / "images" / image["file_name"]).is_file()


@pytest.mark.worker
def test_cancelling_a_running_export_stops_the_worker_and_keeps_no_file(
    celery_worker_process, client, admin, project, _media_root
):
    seed_approved(project, 40_000)
    celery_worker_process(queues="default")
    client.force_login(admin)
    client.post(reverse("labeling:export-list", args=[project.slug]), {**FORM, "provenance": "on"})
    export = Export.objects.get(project=project)
    running = wait_until(
        lambda: Export.objects.filter(pk=export.pk, status="running", done__gt=0).first(),
        timeout=90,
    )
    assert 0 < running.done < running.total == 40_000
    client.post(reverse("labeling:export-cancel", args=[export.pk]))
    time.sleep(2)  # the worker looks twice a second
    export.refresh_from_db()
    stopped_at = export.done
    time.sleep(1.5)
    export.refresh_from_db()
    assert export.status == "cancelled" and export.done == stopped_at < export.total
    assert not export.file and not list((_media_root / "exports").glob("**/*.*"))
    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert "Cancelled" in page and "Download" not in page
    assert client.get(reverse("labeling:export-download", args=[export.pk])).status_code == 404


def test_an_export_cancelled_before_a_worker_took_it_never_runs(admin, project, client):
    export_story.build(project, admin)
    client.force_login(admin)
    client.post(reverse("labeling:export-list", args=[project.slug]), FORM)
    export = Export.objects.get(project=project)
    response = client.post(reverse("labeling:export-cancel", args=[export.pk]), follow=True)
    assert "cancelled" in response.content.decode()
    from labeling import tasks

    tasks.export_run(export_id=export.pk)  # the message arrives after all
    export.refresh_from_db()
    assert (export.status, export.done, export.file.name) == ("cancelled", 0, "")


def test_the_form_refuses_what_cannot_be_exported(admin, project, client):
    client.force_login(admin)
    response = client.post(
        reverse("labeling:export-list", args=[project.slug]),
        {**FORM, "format": "hf", "include": "reviewed"},
    )
    assert response.status_code == 200
    assert "approved captions only" in response.content.decode()
    assert not Export.objects.exists()


def test_exports_and_their_files_are_for_the_projects_admins_only(
    admin, project, annotator, outsider, client
):
    export_story.build(project, admin)
    export = export_create(project=project, user=admin, spec=ExportSpec(format="csv"))
    export_run(export=export)
    export.refresh_from_db()
    assert export.status == "done" and export.file

    other = Project.objects.create(name="Harbour", slug="harbour")
    other_annotator = _user("hana", other)
    other_admin = _user("hugo", other, role=Membership.Role.ADMIN)
    pages = [
        ("get", reverse("labeling:export-list", args=[project.slug])),
        ("get", reverse("labeling:export-detail", args=[export.pk])),
        ("get", reverse("labeling:export-progress", args=[export.pk])),
        ("get", reverse("labeling:export-download", args=[export.pk])),
        ("post", reverse("labeling:export-cancel", args=[export.pk])),
    ]
    expected = {outsider: 404, other_annotator: 404, other_admin: 404, annotator: 403}
    for user, status in expected.items():
        client.force_login(user)
        for method, url in pages:
            assert getattr(client, method)(url).status_code == status, (user, url)
        # The file has no public URL: storage names are not served.
        assert client.get(f"/media/{export.file.name}").status_code == 404
    client.logout()
    login = client.get(reverse("labeling:export-download", args=[export.pk]))
    assert login.status_code == 302 and "login" in login.url

    client.force_login(admin)
    assert client.get(pages[0][1]).status_code == 200
    body = b"".join(client.get(pages[3][1]).streaming_content).decode("utf-8")
    assert body.startswith("image_id,") and export_story.EMOJI in body


# --- Flat memory ---------------------------------------------------------------------------------

_MEASURE = """
import os, resource, runpy, sys
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _peak_rss_mb(project: Project, fmt: str, out: Path, settings) -> float:
    """Peak resident memory of `manage.py export` run in its own process."""
    import os

    db = settings.DATABASES["default"]
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        SECRET_KEY=settings.SECRET_KEY,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
    )
    args = ["export", "--project", project.slug, "--format", fmt, "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    peak_kb = int(done.stderr.split("PEAK_KB")[-1].split()[0])
    return peak_kb / 1024


@pytest.mark.slow
def test_memory_stays_flat_from_three_thousand_to_thirty_thousand_rows(
    transactional_db, project, tmp_path, settings
):
    formats = ("jsonl", "coco", "labelstudio")
    seed_approved(project, 3_000)
    small = {f: _peak_rss_mb(project, f, tmp_path / f"small-{f}", settings) for f in formats}
    seed_approved(project, 27_000)
    large = {f: _peak_rss_mb(project, f, tmp_path / f"large-{f}", settings) for f in formats}
    for fmt in formats:
        written = (tmp_path / f"large-{fmt}").stat().st_size
        assert written > 9 * (tmp_path / f"small-{fmt}").stat().st_size
        # Ten times the rows (megabytes more output) and the peak barely moves.
        assert large[fmt] - small[fmt] < 8, f"{fmt}: {small[fmt]:.0f} MB -> {large[fmt]:.0f} MB"


def test_outside_a_transaction_rows_stream_through_copy_with_the_same_bytes(
    transactional_db, admin, project, settings
):
    """Commands and workers run outside a transaction: PostgreSQL then streams the rows through
    COPY on a second connection. The file is the one Python writes, and a cancel stops it."""
    import io

    from django.db import connection

    from labeling.services.export import export_write

    export_story.build(project, admin)
    assert not connection.in_atomic_block
    for spec in (
        ExportSpec(format="jsonl", base_url="https://cd.example", scope="reviewed"),
        ExportSpec(format="coco", images="bundle"),
    ):
        fast = io.BytesIO()
        export_write(project=project, spec=spec, out=fast)
        settings.EXPORT_SQL_JSON = False
        slow = io.BytesIO()
        export_write(project=project, spec=spec, out=slow)
        settings.EXPORT_SQL_JSON = True
        assert len(fast.getvalue()) > 300 and fast.getvalue() == slow.getvalue()

    class Stop(Exception):
        pass

    seen = []

    def tick(n: int) -> None:
        seen.append(n)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        export_write(project=project, spec=ExportSpec(format="jsonl"), out=io.BytesIO(), tick=tick)
    with connection.cursor() as cursor:  # the second connection is gone, its COPY with it
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'COPY%%' AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 0
