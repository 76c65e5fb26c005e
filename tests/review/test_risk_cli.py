"""python manage.py flag_risk PATH... --json: works on plain files, no database rows."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from review.risk import ANALYSER_VERSION

from . import risk_samples


@pytest.fixture
def files(tmp_path):
    paths = {
        "chart": tmp_path / "chart.png",
        "screen": tmp_path / "screen.jpg",
        "ct": tmp_path / "scan.png",
        "cat": tmp_path / "cat.jpg",
    }
    risk_samples.chart_png("bar").save(paths["chart"])
    risk_samples.screenshot_png().save(paths["screen"], quality=85)
    risk_samples.ct_slice().save(paths["ct"])
    risk_samples.photo().save(paths["cat"], quality=90)
    return paths


def run(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("flag_risk", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_gives_one_object_per_file_with_the_documented_keys(files):
    rows = run(*(str(p) for p in files.values()), "--json")
    assert [r["path"] for r in rows] == [str(p) for p in files.values()]
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in rows}
    for row in rows:
        assert {"path", "flags", "scores", "reasons"} <= set(row)
        assert set(row["scores"]) == set(row["reasons"]) == {"chart", "screenshot", "medical"}
        assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
        assert row["version"] == ANALYSER_VERSION
    assert by_name["chart.png"]["flags"] == ["chart"]
    assert by_name["screen.jpg"]["flags"] == ["screenshot"]
    assert by_name["scan.png"]["flags"] == ["medical"]
    assert by_name["cat.jpg"]["flags"] == []


def test_a_bad_file_gets_an_error_object_and_the_others_still_run(files, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    rows = run(str(bad), str(files["chart"]), str(tmp_path / "missing.png"), "--json")
    assert rows[0] == {"path": str(bad), "error": "not a readable image: UnidentifiedImageError"}
    assert rows[1]["flags"] == ["chart"]
    assert rows[2] == {"path": str(tmp_path / "missing.png"), "error": "file not found"}


def test_exit_status_is_non_zero_only_when_every_file_failed(tmp_path):
    bad = tmp_path / "a.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(CommandError, match="none of the 1 file"):
        call_command("flag_risk", str(bad), "--json", stdout=io.StringIO())


def test_folders_are_walked_and_captions_and_thresholds_apply(files, tmp_path):
    rows = run(str(tmp_path), "--json", "--threshold", "medical=0.999")
    assert len(rows) == 4
    scan = next(r for r in rows if r["path"].endswith("scan.png"))
    assert scan["flags"] == []  # the scan scores high, but not 0.999
    with_caption = run(str(files["ct"]), "--json", "--caption", "a ct scan of the chest")
    assert with_caption[0]["scores"]["medical"] > scan["scores"]["medical"]
    assert "caption says" in with_caption[0]["reasons"]["medical"]


def test_bad_threshold_is_refused(files):
    with pytest.raises(CommandError, match="unknown category"):
        run(str(files["chart"]), "--threshold", "photo=0.5")
    with pytest.raises(CommandError, match="between 0 and 1"):
        run(str(files["chart"]), "--threshold", "chart=7")


def test_without_json_a_readable_table_is_printed(files, tmp_path):
    out = io.StringIO()
    call_command("flag_risk", str(files["chart"]), str(files["cat"]), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["path", "chart", "screen", "medical"]
    assert "chart:" in lines[1] and "chart.png" in lines[1]
    assert " -: " in lines[2]
