"""How routing tells the rest of the app what happened, without importing it.

Dependencies run one way: ``review`` imports ``routing`` (it reviews captions), ``routing`` never
imports ``review``. Where routing needs review's knowledge (risk flags for run selection and chain
rules) or must let review react (a caption succeeded: its words are evidence for the image's
risk flags), review registers functions here in ``ReviewConfig.ready()``. Plain function
registries, no Django signals: the calls are explicit and easy to follow from both sides.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.models import Q

    from routing.policy import RiskSignal

logger = logging.getLogger(__name__)

CaptionsSucceeded = Callable[[Sequence[int]], None]

_succeeded_hooks: list[CaptionsSucceeded] = []
_pending: ContextVar[list[int] | None] = ContextVar("captions_succeeded_pending", default=None)


def on_captions_succeeded(hook: CaptionsSucceeded) -> CaptionsSucceeded:
    """Register ``hook(image_ids)``, called after the commit of captions that succeeded."""
    if hook not in _succeeded_hooks:
        _succeeded_hooks.append(hook)
    return hook


def captions_succeeded(*, image_ids: Sequence[int]) -> None:
    """Tell the registered hooks, now or, inside ``captions_succeeded_batched()``, once for the
    whole batch (a broker message costs a worker about as much CPU as a caption's bookkeeping)."""
    pending = _pending.get()
    if pending is not None:
        pending.extend(image_ids)
        return
    _dispatch(list(image_ids))


def _dispatch(image_ids: list[int]) -> None:
    if not image_ids:
        return
    for hook in list(_succeeded_hooks):
        hook(image_ids)


@contextlib.contextmanager
def captions_succeeded_batched() -> Iterator[None]:
    """Collect the notices of several captions and send them as one."""
    token = _pending.set([])
    try:
        yield
    finally:
        image_ids = sorted(set(_pending.get() or []))
        _pending.reset(token)
        _dispatch(image_ids)


@dataclass(frozen=True, slots=True)
class RiskSource:
    """What routing asks of the risk flags: an ``Image`` filter (flagged in ``category``, or in
    any when empty, an admin's correction winning) and each image's signals for chain rules."""

    flagged_q: Callable[..., Q]
    signals: Callable[[Sequence[int]], dict[int, list[RiskSignal]]]


_risk_source: RiskSource | None = None


def risk_source_register(source: RiskSource) -> None:
    global _risk_source
    _risk_source = source


def risk_source() -> RiskSource | None:
    """The registered source, or None when no app provides risk flags."""
    return _risk_source


# --- run events -----------------------------------------------------------------------------

RunEventHook = Callable[..., object]  # called as hook(run_id=..., event=...)
#: Events of a captioning run that others may react to (integrations sends them as webhooks).
RUN_EVENTS = ("run.finished", "budget.reached")

_run_hooks: list[RunEventHook] = []


def on_run_event(hook: RunEventHook) -> RunEventHook:
    """Register ``hook(run_id=..., event=...)``, called after the commit that made the event
    true."""
    if hook not in _run_hooks:
        _run_hooks.append(hook)
    return hook


def run_event(*, run_id: int, event: str) -> None:
    """Announce ``event`` (one of ``RUN_EVENTS``) once the current transaction commits (at
    once outside one); a hook that fails is logged and does not stop the others."""
    from django.db import transaction

    assert event in RUN_EVENTS, event

    def send() -> None:
        for hook in list(_run_hooks):
            try:
                hook(run_id=run_id, event=event)
            except Exception:  # noqa: BLE001 - captioning must not fail for a notification
                logger.exception("run event hook %r failed for run %s", hook, run_id)

    transaction.on_commit(send)
