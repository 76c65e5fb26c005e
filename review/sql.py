"""The few SQL spellings the metric selectors need that PostgreSQL and SQLite write differently.

Every measure is aggregated in the database on both backends: PostgreSQL in production, SQLite
on a first run (``make run``). Both have ``FILTER`` on aggregates, window functions, CTEs (with
``MATERIALIZED``) and ``ln``; what differs is spelled here:

- a list parameter (``= ANY(array)`` / ``IN (SELECT value FROM json_each(json))``);
- ``bool_or``/``bool_and`` (SQLite's booleans are 0/1: ``max``/``min``);
- the UTC day of a timestamp (SQLite stores UTC text: ``date()``);
- per-group lists (``array_agg`` / ``json_group_array``);
- a JSON array's elements as rows (``jsonb_array_elements_text`` / ``json_each``);
- percentiles: ``percentile_cont`` on PostgreSQL; on SQLite the same linear interpolation between
  the two ranked rows around ``q * (n - 1)``, from ``row_number()``/``count()`` windows
  (``percentiles_sql``), so both backends give the same figures.

``regexp_replace`` (used to compare reviewers' texts with whitespace squeezed) is registered on
SQLite connections by ``register_sqlite_functions``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.db import connection


def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def any_of(column: str, name: str) -> str:
    """``column`` is one of the list parameter ``name`` (pass it through ``list_param``)."""
    if is_sqlite():
        return f"{column} IN (SELECT value FROM json_each(%({name})s))"  # noqa: S608
    return f"{column} = ANY(%({name})s)"


def list_param(values: Iterable[Any]) -> Any:
    values = list(values)
    return json.dumps(values) if is_sqlite() else values


def datetime_param(value: datetime) -> Any:
    """A timestamp as the backend stores it (SQLite compares UTC text)."""
    return connection.ops.adapt_datetimefield_value(value) if is_sqlite() else value


def bool_or(expr: str) -> str:
    return f"max({expr})" if is_sqlite() else f"bool_or({expr})"


def bool_and(expr: str) -> str:
    return f"min({expr})" if is_sqlite() else f"bool_and({expr})"


def utc_day(expr: str) -> str:
    return f"date({expr})" if is_sqlite() else f"({expr} AT TIME ZONE 'UTC')::date"


def as_date(value: Any) -> date:
    """A day column read back (SQLite gives 'YYYY-MM-DD')."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def list_agg(expr: str) -> str:
    """Per group, the values of ``expr`` in ascending order (read back with ``as_list``)."""
    if is_sqlite():
        return f"json_group_array({expr})"
    return f"array_agg({expr} ORDER BY {expr})"


def as_list(value: Any) -> list:
    if isinstance(value, str):
        return sorted(v for v in json.loads(value) if v is not None)
    return [v for v in (value or []) if v is not None]


def json_elements(column: str, alias: str) -> tuple[str, str]:
    """(the join clause, the element's text) for a JSON array column's elements as rows."""
    if is_sqlite():
        return f"JOIN json_each({column}) AS {alias}", f"{alias}.value"
    return f"CROSS JOIN LATERAL jsonb_array_elements_text({column}) AS {alias}", alias


def percentile(q: float, expr: str, where: str) -> str:
    """An inline percentile column on PostgreSQL; None on SQLite, which reads them with
    ``percentiles_sql`` instead."""
    if is_sqlite():
        return "NULL"
    return f"percentile_cont({q!r}) WITHIN GROUP (ORDER BY {expr}) FILTER (WHERE {where})"


def percentiles_sql(source: str, columns: dict[str, float | str]) -> str:
    """``SELECT key, <name> ...`` with, per key of ``source`` (a query of ``key, v``), each
    named continuous percentile of ``v`` (NULLs left out), interpolated as ``percentile_cont``
    does, on either backend. A quantile is a number or an SQL expression of ``n``, the key's
    count of values."""
    picks = []
    for name, q in columns.items():
        fraction = q if isinstance(q, str) else repr(float(q))
        pos = f"({fraction} * (n - 1))"
        low = f"CAST({pos} AS INTEGER)" if is_sqlite() else f"floor({pos})"
        frac = f"({pos} - {low})"
        picks.append(
            f"sum(CASE WHEN i = {low} THEN v * (1 - {frac})"
            f" WHEN i = {low} + 1 THEN v * {frac} ELSE 0 END) AS {name}"
        )
    return f"""
SELECT key, {", ".join(picks)}
FROM (
  SELECT key, v, row_number() OVER (PARTITION BY key ORDER BY v) - 1 AS i,
         count(*) OVER (PARTITION BY key) AS n
  FROM ({source}) src WHERE v IS NOT NULL
) ranked
GROUP BY key"""  # noqa: S608 - fixed fragments; q are floats


def _regexp_replace(text: str | None, pattern: str, replacement: str, flags: str = "") -> Any:
    if text is None:
        return None
    return re.sub(pattern, replacement, text, count=0 if "g" in flags else 1)


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: PostgreSQL's ``regexp_replace`` and ``btrim`` on SQLite."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("regexp_replace", 4, _regexp_replace, deterministic=True)
    raw.create_function("regexp_replace", 3, _regexp_replace, deterministic=True)
    raw.create_function(
        "btrim", 1, lambda t: t.strip(" ") if t is not None else None, deterministic=True
    )


def fetch(sql: str, params: dict[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [col[0] for col in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
