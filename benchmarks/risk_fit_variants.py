"""Compare ways of fitting the risk analyser's learned combination under leave-one-source-out.

    python benchmarks/risk_fit_variants.py CACHE.pkl [--devset var/risk_devset] [--only a,b]

Reads the per-image cache that ``benchmarks/risk_loso.py`` writes (each image's learned inputs,
hand-set scores and metadata hints), so no image is analysed again, and prints, per variant of
the fit, the leave-one-source-out recall per category and photos flagged. An experiment tool,
not part of the product. ``--only``: grid (source weighting ``power`` x L2 ``penalty`` x
``blend``, without and with the chart-versus-screenshot model), pairgrid (the pair's penalty
and power), nested (penalty and blend chosen per source left out by an inner leave-one-source-out
on the others: the worst recall, photos flagged at most 0.05), pairnested (the same for the
pair's settings, then for everything). Scoring goes through ``learned.category_scores``.
It fits on the pictures as built only (``inputs``), as ``risk-2.2`` was trained; since
``risk-2.3`` the shipped fit also trains on the degraded copies (``train_inputs``), which
``benchmarks/risk_augment.py`` compares.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from review.risk import learned  # noqa: E402

CATS = ("chart", "screenshot", "medical")
LABELS = (*CATS, "photo")


def load(cache: Path, devset: Path):
    with open(devset / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    c = pickle.loads(cache.read_bytes())
    rows = [dict(r, **c[r["file"]]) for r in rows]
    rows = [r for r in rows if r["inputs"] is not None]
    x = np.vstack([learned.vector(r["inputs"]) for r in rows])
    return rows, x, [r["category"] for r in rows], [r["group"] for r in rows]


def summary(pred: list[str], y: list[str]) -> dict:
    out = {}
    for c in LABELS:
        idx = [i for i, t in enumerate(y) if t == c]
        if c == "photo":
            out["photo"] = sum(pred[i] != "photo" for i in idx) / len(idx)
        else:
            out[c] = sum(pred[i] == c for i in idx) / len(idx)
    out["worst"] = min(out[c] for c in CATS)
    return out


def score_value(s: dict, limit: float = 0.05) -> float:
    """A choice's value: the worst recall, then the mean; photos over ``limit`` rule it out."""
    # ties on the worst (the pair cannot move medical) go to the higher mean recall
    mean = sum(s[c] for c in CATS) / len(CATS)
    return s["worst"] + 1e-3 * mean - (10.0 if s["photo"] > limit else 0.0)


def variant(model: dict, blend: float | None = None, pair: bool = True) -> dict:
    """The model with another blend, or without its chart-versus-screenshot part."""
    m = dict(model)
    if blend is not None:
        m["blend"] = blend
    if not pair:
        m["pair"] = None
    return m


def decisions(model: dict, rows: list[dict], idx) -> list[str]:
    """What the product decides for rows ``idx``: ``learned.category_scores`` (with metadata),
    then the highest flagged category (``risk_eval.decided``)."""
    out = []
    for i in idx:
        sc = learned.category_scores(model, rows[i]["inputs"], rows[i]["meta"])
        best = max(CATS, key=lambda c: sc[c])
        out.append(best if sc[best] >= 0.5 else "photo")
    return out


class Fits:
    """Fits cached by (training groups left out, penalty, power)."""

    def __init__(self, x, y, groups):
        self.x, self.y, self.groups = x, y, np.array(groups)
        self.cache: dict = {}

    def model(self, out: frozenset, penalty: float, power: float, pair=(30.0, 1.0)) -> dict:
        key = (out, penalty, power, pair)
        if key not in self.cache:
            train = ~np.isin(self.groups, list(out))
            yy = [v for v, t in zip(self.y, train, strict=True) if t]
            self.cache[key] = learned.fit(self.x[train], yy, penalty=penalty,
                                          groups=list(self.groups[train]), power=power,
                                          pair_penalty=pair[0], pair_power=pair[1])  # fmt: skip
        return self.cache[key]


def loso(fits: Fits, rows, penalty, power, blend, pair=(30.0, 1.0), use_pair=True) -> list[str]:
    """Every row decided by a model fitted without its source."""
    pred = [""] * len(rows)
    for g in sorted(set(fits.groups)):
        idx = np.where(fits.groups == g)[0]
        m = variant(fits.model(frozenset([g]), penalty, power, pair), blend, use_pair)
        for i, d in zip(idx, decisions(m, rows, idx), strict=True):
            pred[i] = d
    return pred


def nested(fits: Fits, rows, grid, y, use_pair=True) -> tuple[list[str], list]:
    """Outer leave-one-source-out; for each source left out, pick (penalty, power, blend[,
    pair (penalty, power)]) from ``grid`` by an inner leave-one-source-out on the others (the
    worst recall, photos flagged at most 0.05), then score the source with a model fitted on
    all the others."""
    pred = [""] * len(y)
    chosen = []
    groups = sorted(set(fits.groups))
    for g in groups:
        inner = [h for h in groups if h != g]
        best, best_v = None, -1e9
        for penalty, power, blend, *pair in grid:
            pair = tuple(pair[0]) if pair else (30.0, 1.0)
            pi, yi = [], []
            for h in inner:
                idx = np.where(fits.groups == h)[0]
                m = variant(fits.model(frozenset([g, h]), penalty, power, pair), blend, use_pair)
                pi += decisions(m, rows, idx)
                yi += [y[i] for i in idx]
            v = score_value(summary(pi, yi))
            if v > best_v + 1e-9:
                best, best_v = (penalty, power, blend, pair), v
        chosen.append((g, best))
        idx = np.where(fits.groups == g)[0]
        m = variant(fits.model(frozenset([g]), *best[:2], best[3]), best[2], use_pair)
        for i, d in zip(idx, decisions(m, rows, idx), strict=True):
            pred[i] = d
    return pred, chosen


def fmt(name: str, s: dict) -> str:
    return (
        f"{name:44s} chart {s['chart']:.3f}  screen {s['screenshot']:.3f}  "
        f"medical {s['medical']:.3f}  photos {s['photo']:.3f}  worst {s['worst']:.3f}"
    )


def per_source(pred, y, groups) -> dict:
    out = {}
    for g in sorted(set(groups)):
        for c in LABELS:
            idx = [i for i in range(len(y)) if groups[i] == g and y[i] == c]
            if idx:
                ok = sum((pred[i] == c) if c != "photo" else (pred[i] == "photo") for i in idx)
                out[f"{g}/{c}"] = (len(idx), ok / len(idx))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    rows, x, y, groups = load(Path(args.cache), Path(args.devset))
    fits = Fits(x, y, groups)
    only = set(filter(None, args.only.split(",")))
    results = {}

    def run(name, pred):
        s = summary(pred, y)
        results[name] = (s, per_source(pred, y, groups))
        print(fmt(name, s), flush=True)

    if not only or "grid" in only:
        for use_pair in (False, True):
            for power in (0.0, 0.5, 1.0):
                for penalty in (10.0, 30.0, 100.0):
                    for blend in (0.35, 0.5, 0.65, 1.0):
                        pred = loso(fits, rows, penalty, power, blend, use_pair=use_pair)
                        run(f"{'pair ' if use_pair else ''}power {power} penalty {penalty:g} "
                            f"blend {blend}", pred)  # fmt: skip
    if not only or "pairgrid" in only:
        for pp in (0.0, 0.5, 1.0):
            for pen in (3.0, 10.0, 30.0, 100.0):
                run(f"pair ({pen:g}, power {pp}) on 30/0.35",
                    loso(fits, rows, 30.0, 0.0, 0.35, pair=(pen, pp)))  # fmt: skip
    if not only or "nested" in only:
        for use_pair in (False, True):
            for powers in ((0.0,), (0.5,), (1.0,)):
                grid = list(product((10.0, 30.0, 100.0), powers, (0.35, 0.5, 0.65, 1.0)))
                pred, chosen = nested(fits, rows, grid, y, use_pair)
                run(f"{'pair ' if use_pair else ''}nested (penalty, blend), power {powers[0]}",
                    pred)  # fmt: skip
                print("   chosen:", ", ".join(f"{g}:{c[0]:g}/{c[2]}" for g, c in chosen))
    if not only or "pairnested" in only:
        pairs = list(product((3.0, 10.0, 30.0, 100.0), (0.0, 0.5, 1.0)))
        grid = [(30.0, 0.0, 0.35, pp) for pp in pairs]
        pred, chosen = nested(fits, rows, grid, y)
        run("pair (penalty, power) nested, main 30/0.35", pred)
        print("   chosen:", ", ".join(f"{g}:{c[3][0]:g}/{c[3][1]}" for g, c in chosen))
        mains = list(product((10.0, 30.0), (0.35, 0.5, 0.65)))
        grid = [(pen, 0.0, b, pp) for pp in pairs for pen, b in mains]
        pred, chosen = nested(fits, rows, grid, y)
        run("all nested: main (10|30, 0.35..0.65), pair", pred)
        print("   chosen:", ", ".join(f"{g}:{c[0]:g}/{c[2]}/{c[3][0]:g}/{c[3][1]}"
                                      for g, c in chosen))  # fmt: skip
    if "sources" in only:
        base = results.get("power 0.0 penalty 30 blend 0.35")
        for name, (_, src) in results.items():
            if base is None or name == "power 0.0 penalty 30 blend 0.35":
                continue
            moved = [f"{k} {base[1][k][1]:.2f}->{v[1]:.2f}" for k, v in src.items()
                     if abs(v[1] - base[1][k][1]) > 1e-9]  # fmt: skip
            print(name, "|", "; ".join(moved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
