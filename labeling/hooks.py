"""What labeling announces to apps built on it (integrations sends these as webhooks), without
importing them: they register a function in their ``AppConfig.ready()``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

ExportReadyHook = Callable[..., object]  # called as hook(export_id=...)
_export_ready_hooks: list[ExportReadyHook] = []


def on_export_ready(hook: ExportReadyHook) -> ExportReadyHook:
    if hook not in _export_ready_hooks:
        _export_ready_hooks.append(hook)
    return hook


def export_ready(*, export_id: int) -> None:
    """An export's file is stored; hooks hear of it after the commit. A failing hook is logged
    and does not undo the export."""

    def send() -> None:
        for hook in list(_export_ready_hooks):
            try:
                hook(export_id=export_id)
            except Exception:  # noqa: BLE001 - a notification must not fail the export
                logger.exception("export-ready hook %r failed for export %s", hook, export_id)

    transaction.on_commit(send)
