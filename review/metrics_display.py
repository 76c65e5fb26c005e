"""How the metric table reads: one line per measure, one column per route, and the same figures
as CSV columns. Formatting only; every figure comes from ``review.metrics``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from review.metrics import CostFigure, MetricsTable, RouteMetrics
from review.models import RejectReason
from review.stats import Interval, Rate


@dataclass(frozen=True)
class Cell:
    value: str
    detail: str = ""  # interval and sample size
    raw: float | None = None  # what tests and the browser check compare against


@dataclass(frozen=True)
class Line:
    label: str
    help: str
    is_rate: bool  # hidden while the sample is below the minimum
    cells: list[Cell]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _usd(x: float) -> str:
    if x == 0:
        return "$0"
    return f"${x:.4f}" if abs(x) < 100 else f"${x:,.2f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.0f} ms" if x < 1000 else f"{x / 1000:.2f} s"


def _interval(interval: Interval | None, fmt: Callable[[float], str]) -> str:
    if interval is None:
        return ""
    label = "" if interval.method in ("wilson", "bootstrap") else f" ({interval.method})"
    return f"95% CI {fmt(interval.low)} – {fmt(interval.high)}{label}"


def rate_cell(rate: Rate) -> Cell:
    if not rate.n:
        return Cell("–", "n = 0")
    return Cell(
        _pct(rate.value or 0.0),
        f"{_interval(rate.interval, _pct)} · {rate.k} of {rate.n}",
        raw=rate.value,
    )


def cost_cell(cost: CostFigure) -> Cell:
    if cost.usd is None:
        return Cell("–", "nothing accepted yet")
    return Cell(_usd(cost.usd), _interval(cost.interval, _usd), raw=cost.usd)


def _latency_detail(p50: Interval | None, p95: Interval | None, tail: str = "") -> str:
    """The percentiles' intervals: "95% CI p50 a – b · p95 c – d"; non-bootstrap methods named."""
    parts = []
    for name, interval in (("p50", p50), ("p95", p95)):
        if interval is not None:
            parts.append(f"{name} {_ms(interval.low)} – {_ms(interval.high)}")
    method = next((i.method for i in (p50, p95) if i is not None), "bootstrap")
    text = ("95% CI " + " · ".join(parts)) if parts else ""
    if parts and method != "bootstrap":
        text += f" ({method})"
    return " · ".join(t for t in (text, tail) if t)


def _count(n: int) -> Cell:
    return Cell(f"{n:,}", raw=float(n))


def _effort(row: RouteMetrics) -> Cell:
    if row.char_effort is None:
        return Cell("–", "no edits")
    words = f" · words {_pct(row.word_effort or 0.0)}"
    return Cell(
        _pct(row.char_effort),
        f"characters{words} · {row.accepted_after_edit} edits",
        raw=row.char_effort,
    )


def _reasons(row: RouteMetrics) -> Cell:
    if not row.reject_reasons:
        return Cell("–")
    labels = dict(RejectReason.choices)
    parts = [f"{labels.get(k, k)} {n}" for k, n in row.reject_reasons.items()]
    return Cell(", ".join(parts[:3]), ", ".join(parts[3:]))


LINES: list[tuple[str, str, bool, Callable[[RouteMetrics], Cell]]] = [
    ("Outputs produced", "Succeeded captions.", False, lambda r: _count(r.produced)),
    ("Reviewed", "Decided: approved or rejected.", False, lambda r: _count(r.reviewed)),
    ("Accepted as-is", "", False, lambda r: _count(r.accepted_as_is)),
    ("Accepted after edit", "", False, lambda r: _count(r.accepted_after_edit)),
    ("Rejected", "", False, lambda r: _count(r.rejected)),
    ("Disputed", "Reviewers disagreed.", False, lambda r: _count(r.disputed)),
    ("Reject reasons", "From the reviewers' verdicts.", False, _reasons),
    (
        "Accepted-output rate",
        "Accepted (as-is or after edit) / reviewed.",
        True,
        lambda r: rate_cell(r.accepted_rate),
    ),
    (
        "Model spend",
        "Every attempt: retries and fallbacks included.",
        False,
        lambda r: Cell(_usd(r.spend_usd), raw=r.spend_usd),
    ),
    (
        "Cost per accepted output",
        "Spend on reviewed and failed captions / accepted outputs.",
        True,
        lambda r: cost_cell(r.cost_per_accepted),
    ),
    (
        "Cost per accepted output incl. review",
        "Plus reviewers' time at the configured hourly rate.",
        True,
        lambda r: cost_cell(r.cost_per_accepted_with_review),
    ),
    (
        "Latency per attempt p50 / p95",
        "From the call log; cached answers left out. Intervals: bootstrap over images.",
        True,
        lambda r: Cell(
            f"{_ms(r.attempt_p50_ms)} / {_ms(r.attempt_p95_ms)}",
            _latency_detail(r.attempt_p50_ci, r.attempt_p95_ci, f"{r.attempts} attempts"),
            raw=r.attempt_p50_ms,
        ),
    ),
    (
        "Latency end to end p50 / p95",
        "Every attempt and wait of a caption. Intervals: bootstrap over images.",
        True,
        lambda r: Cell(
            f"{_ms(r.e2e_p50_ms)} / {_ms(r.e2e_p95_ms)}",
            _latency_detail(r.e2e_p50_ci, r.e2e_p95_ci),
            raw=r.e2e_p50_ms,
        ),
    ),
    ("Timeout rate", "Per attempt.", True, lambda r: rate_cell(r.timeout_rate)),
    ("Error rate", "Failed or lost attempts.", True, lambda r: rate_cell(r.error_rate)),
    (
        "Fallback rate",
        "Attempts after which the chain moved on to another route.",
        True,
        lambda r: rate_cell(r.fallback_rate),
    ),
    (
        "Malformed-output rate",
        "Empty, refused, failing its schema or unparseable.",
        True,
        lambda r: rate_cell(r.malformed_rate),
    ),
    (
        "Correction effort",
        "Mean normalised edit distance of the edits.",
        True,
        _effort,
    ),
    (
        "Review time per item (median)",
        "All reviewers of a decided item, skips included.",
        True,
        lambda r: Cell(_ms(r.review_ms_median), raw=r.review_ms_median),
    ),
    (
        "Reviewer agreement",
        "Items reviewed twice or more on which everyone agreed.",
        True,
        lambda r: rate_cell(r.agreement),
    ),
]


def table_lines(table: MetricsTable) -> list[Line]:
    return [
        Line(label, help_text, is_rate, [fn(row) for row in table.rows])
        for label, help_text, is_rate, fn in LINES
    ]


CSV_HEADER = [
    "group",
    "images",
    "produced",
    "reviewed",
    "accepted_as_is",
    "accepted_after_edit",
    "rejected",
    "disputed",
    "accepted_rate",
    "accepted_rate_low",
    "accepted_rate_high",
    "spend_usd",
    "cost_per_accepted_usd",
    "cost_per_accepted_low",
    "cost_per_accepted_high",
    "cost_per_accepted_with_review_usd",
    "attempts",
    "attempt_p50_ms",
    "attempt_p50_low",
    "attempt_p50_high",
    "attempt_p95_ms",
    "attempt_p95_low",
    "attempt_p95_high",
    "e2e_p50_ms",
    "e2e_p50_low",
    "e2e_p50_high",
    "e2e_p95_ms",
    "e2e_p95_low",
    "e2e_p95_high",
    "latency_interval_method",
    "timeout_rate",
    "error_rate",
    "fallback_rate",
    "malformed_rate",
    "char_effort",
    "word_effort",
    "review_ms_median",
    "agreement",
    "agreement_n",
    "reject_reasons",
]


def _opt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _latency_columns(r: RouteMetrics) -> list[str]:
    out = []
    for kind in ("attempt", "e2e"):
        for name in ("p50", "p95"):
            interval: Interval | None = getattr(r, f"{kind}_{name}_ci")
            out += [
                _opt(getattr(r, f"{kind}_{name}_ms")),
                _opt(interval.low if interval else None),
                _opt(interval.high if interval else None),
            ]
    methods = {getattr(r, f"{k}_{n}_ci") for k in ("attempt", "e2e") for n in ("p50", "p95")}
    found = sorted({i.method for i in methods if i is not None})
    return [*out, "/".join(found)]


def table_csv_rows(table: MetricsTable) -> Iterator[list[str]]:
    yield CSV_HEADER
    for r in table.rows:
        rate = r.accepted_rate
        interval = rate.interval
        cost = r.cost_per_accepted
        yield [
            r.key,
            str(table.images),
            str(r.produced),
            str(r.reviewed),
            str(r.accepted_as_is),
            str(r.accepted_after_edit),
            str(r.rejected),
            str(r.disputed),
            _opt(rate.value),
            _opt(interval.low if interval else None),
            _opt(interval.high if interval else None),
            _opt(r.spend_usd),
            _opt(cost.usd),
            _opt(cost.interval.low if cost.interval else None),
            _opt(cost.interval.high if cost.interval else None),
            _opt(r.cost_per_accepted_with_review.usd),
            str(r.attempts),
            *_latency_columns(r),
            _opt(r.timeout_rate.value),
            _opt(r.error_rate.value),
            _opt(r.fallback_rate.value),
            _opt(r.malformed_rate.value),
            _opt(r.char_effort),
            _opt(r.word_effort),
            _opt(r.review_ms_median),
            _opt(r.agreement.value),
            str(r.agreement.n),
            "; ".join(f"{k}={n}" for k, n in r.reject_reasons.items()),
        ]
