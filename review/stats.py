"""Intervals for the comparison measures: Wilson for proportions, bootstrap over images for costs,
Bradley-Terry scores for blind pairwise preferences. Pure functions, no ORM.

Every rate is shown with its sample size and a 95% interval. Proportions (accepted-output rate,
timeout / error / fallback / malformed rates, agreement) use the Wilson score interval, which stays
inside [0, 1] and is honest at small n and at 0% or 100%. A cost per accepted output is a ratio of
sums over images (spend / accepted outputs); its interval comes from resampling images with
replacement (the percentile bootstrap), so images with several attempts weigh as they should.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
#: Above this many images the bootstrap's resamples would cost more than a page may spend; the
#: normal approximation of the ratio (the delta method, which the bootstrap converges to at this
#: size) is used instead and labelled so.
BOOTSTRAP_MAX_IMAGES = 2_000
BOOTSTRAP_RESAMPLES = 1_000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str = "wilson"


@dataclass(frozen=True)
class Rate:
    """k out of n, with its Wilson interval (None when n is 0)."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> Interval | None:
        return wilson(self.k, self.n)


def wilson(k: int, n: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval for k successes in n trials (None for n = 0)."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is not within 0..n={n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At k = 0 or k = n the exact bound is 0 or 1; rounding must not move it.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(low, high, "wilson")


def bootstrap_ratio(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Interval | None:
    """Percentile-bootstrap interval of sum(numerators) / sum(denominators), resampling the paired
    rows (images) with replacement. Resamples whose denominator is 0 have no ratio and are left
    out; None when the ratio itself is undefined. Seeded: the same data shows the same interval.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    n = len(num)
    if n == 0 or den.sum() <= 0:
        return None
    rng = np.random.default_rng(seed)
    # Resample row indices in chunks of about a million draws (a few MB at a time).
    chunks = []
    step = max(1, 1_000_000 // n)
    for start in range(0, resamples, step):
        picks = rng.integers(0, n, size=(min(step, resamples - start), n))
        sums_den = den[picks].sum(axis=1)
        keep = sums_den > 0
        chunks.append(num[picks[keep]].sum(axis=1) / sums_den[keep])
    ratios = np.concatenate(chunks)
    if len(ratios) == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Interval(float(low), float(high), "bootstrap")


def ratio_normal(
    *, n: int, sum_x: float, sum_y: float, sum_xx: float, sum_yy: float, sum_xy: float
) -> Interval | None:
    """Normal (delta-method) interval of sum(x) / sum(y) over n paired rows, from their moments.

    What the bootstrap of a ratio tends to for many images; used above BOOTSTRAP_MAX_IMAGES.
    """
    if n < 2 or sum_y <= 0:
        return None
    r = sum_x / sum_y
    mean_y = sum_y / n
    # Residuals e_i = x_i - r * y_i; Var(r) ~= sum(e_i^2) / (n (n-1)) / mean_y^2.
    sse = sum_xx - 2 * r * sum_xy + r * r * sum_yy
    var = max(0.0, sse) / (n * (n - 1)) / (mean_y * mean_y)
    half = Z95 * math.sqrt(var)
    return Interval(max(0.0, r - half), r + half, "normal")


# --- percentiles (latency) ----------------------------------------------------------------------


def bootstrap_percentiles(
    groups: Sequence[Sequence[float]],
    quantiles: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> list[Interval | None]:
    """Percentile-bootstrap intervals of continuous percentiles (``percentile_cont``'s linear
    interpolation) of the values pooled over ``groups`` (one group per image: every attempt of
    that image), resampling images with replacement and recomputing each percentile. One interval
    per quantile (0..1); None when there are no values. Seeded like ``bootstrap_ratio``."""
    sizes = np.asarray([len(g) for g in groups], dtype=np.int64)
    n = len(sizes)
    if n == 0 or sizes.sum() == 0:
        return [None for _ in quantiles]
    values = np.concatenate([np.asarray(g, dtype=np.float64) for g in groups if len(g)])
    owner = np.repeat(np.arange(n), sizes)
    order = np.argsort(values, kind="stable")
    values, owner = values[order], owner[order]
    total_values = len(values)
    rng = np.random.default_rng(seed)
    found: list[list[np.ndarray]] = [[] for _ in quantiles]
    step = max(1, 2_000_000 // max(n, total_values))
    for start in range(0, resamples, step):
        m = min(step, resamples - start)
        picks = rng.integers(0, n, size=(m, n))
        # How many times each image was drawn in each resample, then each value's weight.
        drawn = np.bincount((picks + np.arange(m)[:, None] * n).ravel(), minlength=m * n)
        cumulative = drawn.astype(np.int32).reshape(m, n)[:, owner].cumsum(axis=1, dtype=np.int64)
        totals = cumulative[:, -1]
        keep = totals > 0
        cumulative, totals = cumulative[keep], totals[keep]
        # Rows laid end to end, each shifted past the last, so one sorted search finds ranks in
        # every row: the value at 0-based rank r is the first whose cumulative weight exceeds r.
        shift = (np.arange(len(totals)) * (int(totals.max()) + 2))[:, None]
        flat = (cumulative + shift).ravel()
        base = np.arange(len(totals)) * total_values
        for k, q in enumerate(quantiles):
            pos = q * (totals - 1)
            low = np.floor(pos)
            frac = pos - low
            at_low = np.searchsorted(flat, low + shift[:, 0], side="right") - base
            at_high = np.searchsorted(flat, low + 1 + shift[:, 0], side="right") - base
            at_high = np.minimum(at_high, total_values - 1)
            found[k].append(values[at_low] * (1 - frac) + values[at_high] * frac)
    tail = (1 - level) / 2 * 100
    out: list[Interval | None] = []
    for samples in found:
        drawn_values = np.concatenate(samples)
        if len(drawn_values) == 0:
            out.append(None)
            continue
        low, high = np.percentile(drawn_values, [tail, 100 - tail])
        out.append(Interval(float(low), float(high), "bootstrap"))
    return out


def rank_quantile_bounds(q: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The quantiles whose values bound a 95% interval of the q-th quantile of n values (the
    distribution-free order-statistic interval: ranks n q -/+ z sqrt(n q (1 - q))). What latency
    intervals use where the bootstrap is too costly (above BOOTSTRAP_MAX_IMAGES, and rollups)."""
    if n <= 0:
        return None
    half = z * math.sqrt(q * (1 - q) / n)
    return max(0.0, q - half), min(1.0, q + half)


# --- Bradley-Terry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Strength:
    name: str
    score: float  # log-strength, the routes' mean is 0; a one-point lead is e (2.7x) the odds
    interval: Interval | None


def bradley_terry(
    names: Sequence[str], wins: np.ndarray, *, prior: float = 0.5, iterations: int = 500
) -> np.ndarray:
    """Log-strengths (mean 0) from ``wins[i, j]`` = times i was preferred over j (a tie counts
    half to each). Fitted with Hunter's MM algorithm; ``prior`` adds that many virtual wins each
    way between every pair that met, so a route that never won still gets a finite score."""
    n = len(names)
    w = np.asarray(wins, dtype=np.float64).copy()
    met = (w + w.T) > 0
    w = w + prior * met
    games = w + w.T
    total_wins = w.sum(axis=1)
    p = np.ones(n)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, total_wins / np.where(denom > 0, denom, 1), p)
        new = new / np.exp(np.log(new).mean())
        if np.allclose(new, p, rtol=1e-10, atol=1e-12):
            p = new
            break
        p = new
    scores = np.log(p)
    return scores - scores.mean()


def bradley_terry_intervals(
    names: Sequence[str],
    outcomes: dict[tuple[int, int], tuple[int, int, int]],
    *,
    resamples: int = 300,
    seed: int = 0,
) -> list[Strength]:
    """Scores with 95% bootstrap intervals. ``outcomes[(i, j)]`` = (i won, j won, ties) over the
    judgements between routes i < j; each pair's judgements are resampled with replacement."""
    n = len(names)

    def matrix(counts: dict[tuple[int, int], tuple[float, float, float]]) -> np.ndarray:
        m = np.zeros((n, n))
        for (i, j), (wi, wj, ties) in counts.items():
            m[i, j] += wi + ties / 2
            m[j, i] += wj + ties / 2
        return m

    point = bradley_terry(names, matrix(outcomes))
    rng = np.random.default_rng(seed)
    samples = np.empty((resamples, n))
    for r in range(resamples):
        drawn = {}
        for pair, counts in outcomes.items():
            total = sum(counts)
            drawn[pair] = (
                tuple(rng.multinomial(total, np.asarray(counts) / total)) if total else counts
            )
        samples[r] = bradley_terry(names, matrix(drawn))
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return [
        Strength(name, float(point[k]), Interval(float(low[k]), float(high[k]), "bootstrap"))
        for k, name in enumerate(names)
    ]
