"""Benchmark helpers: Django set-up against DATABASE_URL, tables, the final JSON line."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(*, migrate: bool = True) -> None:
    """Django against DATABASE_URL, migrated (benchmarks work on their own rows and delete them)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "captiondesk.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    import django

    _database_ensure(os.environ.get("DATABASE_URL", ""))
    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _database_ensure(url: str) -> None:
    """Create the PostgreSQL database in DATABASE_URL when it does not exist yet."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(
    benchmark: str, *, value: float, baseline: float, unit: str, goal: str, **extra: object
) -> None:
    ratio = value / baseline if baseline else None
    print(
        json.dumps(
            {
                "benchmark": benchmark,
                "value": round(value, 3),
                "baseline": round(baseline, 3),
                "ratio": round(ratio, 3) if ratio is not None else None,
                "unit": unit,
                "goal": goal,
                "machine": machine(),
                **extra,
            }
        )
    )
