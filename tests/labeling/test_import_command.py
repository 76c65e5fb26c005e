"""python manage.py import_images: files, folders, zips and URL lists; --json per input file."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Image, Project
from tests.labeling.conftest import make_zip

pytestmark = pytest.mark.django_db


def test_import_folder_zip_and_bad_files_as_json(tmp_path, capsys, make_image_bytes):
    folder = tmp_path / "shoot"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(make_image_bytes("JPEG", seed=81))
    (folder / "sub" / "b.png").write_bytes(make_image_bytes("PNG", seed=82))
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / ".hidden.jpg").write_bytes(make_image_bytes("JPEG", seed=83))
    archive = tmp_path / "more.zip"
    archive.write_bytes(
        make_zip(
            {
                "c.webp": make_image_bytes("WEBP", seed=84),
                "a-copy.jpg": make_image_bytes("JPEG", seed=81),
            }
        )
    )

    call_command(
        "import_images",
        str(folder),
        str(archive),
        str(tmp_path / "missing.jpg"),
        "--project",
        "field-work",
        "--create",
        "--json",
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    by_name = {line["source"].rsplit("/", 1)[-1].rsplit(":", 1)[-1]: line for line in lines}
    assert set(by_name) == {"a.jpg", "b.png", "broken.png", "c.webp", "a-copy.jpg", "missing.jpg"}
    assert by_name["a.jpg"]["status"] == "imported" and isinstance(
        by_name["a.jpg"]["image_id"], int
    )
    assert by_name["a-copy.jpg"] == {
        **by_name["a-copy.jpg"],
        "status": "duplicate",
        "image_id": by_name["a.jpg"]["image_id"],
    }
    assert by_name["broken.png"]["status"] == "rejected" and by_name["broken.png"]["reason"]
    assert by_name["missing.jpg"]["reason"] == "no such file or folder"
    for line in lines:
        assert {"source", "status", "reason", "image_id"} <= set(line)
    project = Project.objects.get(slug="field-work")
    assert Image.objects.filter(project=project, source="path").count() == 2
    assert Image.objects.filter(project=project, source="zip").count() == 1


def test_unknown_project_without_create_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="--create"):
        call_command("import_images", str(tmp_path), "--project", "nope")


def test_url_list_option(tmp_path, capsys):
    urls = tmp_path / "urls.txt"
    urls.write_text("# none reachable\nhttp://10.0.0.1/a.jpg\nftp://example.org/b.jpg\n")
    call_command("import_images", "--urls", str(urls), "--project", "web", "--create", "--json")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["status"] for line in lines] == ["rejected", "rejected"]
    assert "private" in lines[0]["reason"] and "only http and https" in lines[1]["reason"]
