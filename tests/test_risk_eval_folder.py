"""``benchmarks/risk_eval.py --folder``: flag counts for a folder of unlabelled pictures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.review import risk_samples

ROOT = Path(__file__).resolve().parent.parent


def test_a_folder_is_counted_per_category_and_bad_files_are_skipped(tmp_path):
    risk_samples.chart_png("bar").save(tmp_path / "chart.png")
    (tmp_path / "nested").mkdir()
    risk_samples.photo().save(tmp_path / "nested" / "cat.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    Image.new("RGB", (20, 20), "white").save(tmp_path / "tiny.png")  # too small to judge
    (tmp_path / "notes.txt").write_text("ignored")

    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "risk_eval.py"), "--folder", str(tmp_path),
         "--misses"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["images"] == 2
    assert summary["flagged"] == {"chart": 1, "screenshot": 0, "medical": 0}
    assert summary["value"] == 0.5
    assert "chart.png: chart (" in out.stdout
    assert "cat.jpg" not in out.stdout
