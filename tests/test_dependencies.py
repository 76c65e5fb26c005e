"""Dependencies between the apps run one way, so each can be read and changed on its own:
``review`` uses ``routing`` (it reviews captions); ``routing`` reaches review only through the
hooks review registers in ``ReviewConfig.ready()`` (``routing/hooks.py``). Both use
``labeling``, which uses neither at import time. The provider clients import nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level package names each module of ``package`` imports, anywhere in the file."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_routing_never_imports_review():
    offenders = {path for path, names in _imports("routing").items() if "review" in names}
    assert offenders == set(), "routing must reach review only through routing/hooks.py"


def test_provider_clients_import_nothing_of_ours():
    ours = {"captiondesk", "labeling", "review", "routing", "integrations"}
    for path, names in _imports("routing/providers").items():
        assert names & ours <= {"routing"}, path
    for path, names in _imports("routing/providers").items():
        assert "django" not in names, path


def test_review_registers_its_hooks_when_django_starts():
    from routing import hooks

    assert hooks.risk_source() is not None
    assert any(h.__module__ == "review.apps" for h in hooks._succeeded_hooks)
