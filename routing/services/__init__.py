"""Writes of the routing app. Modules: ``routes`` (clients, estimates, first-run defaults),
``chains``, ``runs`` (launch, control, sweep), ``execute`` (producing one caption), ``breaker``,
``budget``, ``cache``."""

from __future__ import annotations

from routing.services.routes import routes_ensure_defaults

__all__ = ["routes_ensure_defaults"]
