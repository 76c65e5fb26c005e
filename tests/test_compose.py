"""docker-compose.yml is parsed and every service's command points at something that exists."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_queues():
    services = _compose()["services"]
    assert {"web", "worker", "gpu-worker", "beat", "postgres", "redis"} <= set(services)
    worker = services["worker"]["command"]
    assert worker[worker.index("-Q") + 1].split(",") == ["default", "api"]
    gpu = services["gpu-worker"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    assert gpu["build"]["args"]["EXTRAS"] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert devices["driver"] == "nvidia" and "gpu" in devices["capabilities"]
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert any(v.endswith(":/data/media") for v in services["web"]["volumes"])
    assert services["postgres"]["volumes"]


def test_commands_point_at_real_entry_points():
    services = _compose()["services"]
    web = " ".join(services["web"]["command"])
    module, attr = web.split("gunicorn ", 1)[1].split()[0].split(":")
    assert callable(getattr(importlib.import_module(module), attr))
    for name in ("manage.py migrate", "manage.py collectstatic"):
        assert name in web
    # gunicorn has no body limit (the app's middleware has); its request line and headers are
    # capped on the command line
    for flag in ("--limit-request-line", "--limit-request-fields", "--limit-request-field_size"):
        assert flag in web.split()
    for name in ("worker", "gpu-worker", "beat"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["celery", "-A", "captiondesk"]
        app = importlib.import_module(cmd[2]).celery_app
        assert app.main == "captiondesk"
    assert (ROOT / "manage.py").exists() and (ROOT / "Dockerfile").exists()


def test_dockerfile_installs_the_requested_extras():
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".${EXTRAS:+[$EXTRAS]}"' in text
