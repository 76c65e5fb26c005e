"""No secret key ships in the repository: without SECRET_KEY, each installation gets its own."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _settings_key(var_dir: Path, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update(CAPTIONDESK_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="captiondesk.settings")
    env.update(extra)
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\nprint(settings.SECRET_KEY)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_without_secret_key_each_installation_gets_a_private_random_one(tmp_path):
    first = _settings_key(tmp_path / "a")
    assert len(first) >= 50
    assert _settings_key(tmp_path / "a") == first  # kept, so sessions survive a restart
    assert _settings_key(tmp_path / "b") != first  # never shared between installations
    mode = stat.S_IMODE((tmp_path / "a" / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_the_environment_wins(tmp_path):
    assert _settings_key(tmp_path, SECRET_KEY="from-the-environment") == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()
