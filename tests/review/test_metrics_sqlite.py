"""The metric tests again on SQLite, the database of a first run (`make run`): the same
hand-computed figures, Wilson and bootstrap intervals, comparison, side-by-side, dashboard,
headline and blind pairwise pages, on the same selectors spelled for SQLite (review/sql.py).

They run in a child pytest whose DATABASE_URL is SQLite (an in-memory test database), asked for
by name with CAPTIONDESK_TEST_SQLITE=1, so this process keeps its PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "tests/review/test_metrics.py",
    "tests/review/test_compare_views.py",
    "tests/review/test_dashboard.py",
    "tests/review/test_headline.py",
    "tests/review/test_pairwise.py",
]


@pytest.mark.slow
def test_the_metric_tests_pass_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first-run.sqlite3'}",
        "CAPTIONDESK_TEST_SQLITE": "1",
        "CAPTIONDESK_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=line", "-p", "no:cacheprovider", *FILES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    tail = result.stdout[-4000:]
    assert result.returncode == 0, tail
    # It ran on SQLite: the one test that skips there (rollups are PostgreSQL's) skipped.
    assert " passed" in tail and " failed" not in tail and "1 skipped" in tail
