"""Gradient-boosted trees beside the logistic regression, leave-one-source-out.

    python benchmarks/risk_boosting.py [--devset var/risk_devset] [--jobs 2] [--only a,b]

An experiment tool, not part of the product (fitting trees needs scikit-learn, a development
dependency; scoring them needs NumPy only). Issue 15 asked whether a tree ensemble on the
analyser's measurements generalises better than the logistic regression alone. Each fit of
``FITS`` is ``learned.fit`` with other tree settings (``learned.TREES``), trained once per
source left out on the other sources' pictures as built and their degraded copies (what
``scripts/train_risk_model.py`` trains on, through ``risk_loso.py``'s cache), and scored by
``learned.category_scores``, as the product scores, on the left-out source's pictures as built
and degraded. Printed: recall per category and photos flagged for each fit and kind of test
picture; per fit, fitted on every source as it would ship, the size of its trees in
``model.json`` and the medical score of a plain grey gradient; and the pictures whose decision
differs between the logistic regression alone and the shipped fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))


def tree_settings(depth: int, iterations: int, rate: float, weight: float = 0.5) -> dict:
    return {"depth": depth, "iterations": iterations, "rate": rate, "weight": weight}


#: (name, tree settings or None, fit the chart-or-screenshot model). The shipped fit is
#: ``learned.TREES`` without that model (``SHIPPED``); the others say how much its figures
#: depend on each setting.
FITS = (
    ("logistic alone (risk-2.3)", None, True),
    ("trees alone, depth 3, 50 x 0.2", tree_settings(3, 50, 0.2, 1.0), False),
    ("risk-2.4: mean, depth 3, 50 x 0.2", tree_settings(3, 50, 0.2), False),
    ("mean, depth 3, 50 x 0.2, pair model", tree_settings(3, 50, 0.2), True),
    ("mean, depth 3, 100 x 0.2", tree_settings(3, 100, 0.2), False),
    ("mean, depth 3, 100 x 0.2, pair model", tree_settings(3, 100, 0.2), True),
    ("mean, depth 3, 200 x 0.1", tree_settings(3, 200, 0.1), False),
    ("mean, depth 3, 200 x 0.1, pair model", tree_settings(3, 200, 0.1), True),
    ("mean, depth 2, 200 x 0.1", tree_settings(2, 200, 0.1), False),
    ("mean, depth 2, 200 x 0.1, pair model", tree_settings(2, 200, 0.1), True),
    ("trees weigh 0.35, depth 3, 50 x 0.2", tree_settings(3, 50, 0.2, 0.35), False),
    ("trees weigh 0.65, depth 3, 50 x 0.2", tree_settings(3, 50, 0.2, 0.65), False),
)
SHIPPED = 2


def main() -> int:
    from benchmarks import risk_eval, risk_loso
    from benchmarks.risk_augment import line, plain_gradient
    from review.risk import analyse, learned
    from review.risk.analyser import learned_inputs

    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="indices of FITS to run, e.g. 0,2")
    args = ap.parse_args()
    assert FITS[SHIPPED][1:] == (learned.TREES, False), "the shipped row: learned.TREES, no pair"
    fits = [FITS[int(i)] for i in args.only.split(",")] if args.only else list(FITS)
    devset = Path(args.devset)
    rows = risk_eval.load_rows(devset, quick=False)
    cache = risk_loso.analysed(devset, rows, args.jobs)
    rows = [r | cache[r["file"]] for r in rows]
    truth = [r["category"] for r in rows]
    groups = [risk_eval.row_group(r) for r in rows]
    # test inputs: as built, and the degraded copy (a picture too small to measure has none)
    tests = {"f": [r["inputs"] for r in rows], "d": [(r["train_inputs"] + [None])[1] for r in rows]}

    def fitted(idx: list[int], fit: tuple) -> dict:
        _, trees, pair = fit
        data = [(v, truth[i], groups[i]) for i in idx for v in rows[i]["train_inputs"]
                if v is not None]  # fmt: skip
        x = np.vstack([learned.vector(d[0]) for d in data])
        y, g = [d[1] for d in data], [d[2] for d in data]
        return learned.fit(x, y, groups=g, trees=trees, pair=pair)

    preds = {(fit[0], kind): ["photo"] * len(rows) for fit in fits for kind in tests}
    for g in sorted(set(groups)):
        train = [i for i, gi in enumerate(groups) if gi != g]
        for fit in fits:
            model = fitted(train, fit)
            for kind, values in tests.items():
                for i in (i for i, gi in enumerate(groups) if gi == g and values[i] is not None):
                    sc = learned.category_scores(model, values[i], rows[i]["meta"])
                    preds[(fit[0], kind)][i] = risk_eval.decided(sc)
        print(f"  left out {g}", file=sys.stderr, flush=True)
    for kind, label in (("f", "as built"), ("d", "degraded")):
        for name, *_ in fits:
            print(f"{name:38s} scored {label:8s}: {line(preds[(name, kind)], truth)}")
    gradient = learned_inputs(analyse(plain_gradient(), with_features=True, use_model=False))
    for fit in fits:  # fitted on every source, as it would ship
        model = fitted(list(range(len(rows))), fit)
        size = len(json.dumps(model["trees"])) if model["trees"] else 0
        medical = learned.category_scores(model, gradient)["medical"]
        print(f"{fit[0]:38s} trees {size / 1024:6.0f} KB; a plain grey gradient: medical "
              f"{medical:.2f}")  # fmt: skip
    names = [f[0] for f in fits]
    before, after = FITS[0][0], FITS[SHIPPED][0]
    if before in names and after in names:
        for kind, label in (("f", "as built"), ("d", "degraded")):
            print(f"decisions that differ, {before} -> {after}, {label}:")
            for i, r in enumerate(rows):
                a, b = preds[(before, kind)][i], preds[(after, kind)][i]
                if a != b:
                    mark = "fixed" if b == truth[i] else ("broke" if a == truth[i] else "moved")
                    print(f"  {mark:5s} {truth[i]:10s} {r['file']:34s} {groups[i]:24s} {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
