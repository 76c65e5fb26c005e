"""A local route on a machine installed without the ``gpu`` extra (no torch, no transformers) fails
like missing weights do: a clear, permanent ``weights_unavailable`` error that lets the chain fall
back, never an internal crash. The missing packages are simulated honestly: a fresh interpreter
whose import system refuses torch and transformers, as it would if they were not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, io, json, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())

    from PIL import Image
    from routing.providers import CaptionRequest, ProviderError, get_provider

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buffer, format="PNG")
    request = CaptionRequest(image=buffer.getvalue(), mime_type="image/png", timeout_s=5)
    provider = get_provider("local", {"model": "Salesforce/blip2-opt-2.7b"})
    outcome = {"accepts": sorted(provider.capabilities.image_mime_types)}
    try:
        provider.caption(request)
    except ProviderError as exc:
        outcome.update(
            error=type(exc).__name__,
            error_class=exc.error_class,
            retryable=exc.retryable,
            message=str(exc),
        )
    batch = provider.caption_batch([request, request])
    outcome["batch"] = [type(item).__name__ for item in batch]
    outcome["torch_loaded"] = "torch" in sys.modules
    print(json.dumps(outcome))
    """
)


def test_a_local_route_without_the_gpu_extra_fails_clearly_and_permanently():
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    assert outcome["error"] == "WeightsUnavailable"  # the class missing weights use
    assert outcome["error_class"] == "weights_unavailable"
    assert outcome["retryable"] is False
    assert outcome["message"].startswith(
        "local models need the gpu extra (pip install -e '.[gpu]')"
    )
    assert "torch" in outcome["message"]
    assert outcome["batch"] == ["WeightsUnavailable", "WeightsUnavailable"]
    assert outcome["torch_loaded"] is False
    assert "Traceback" not in finished.stderr
    assert "image/png" in outcome["accepts"]
