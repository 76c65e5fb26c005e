"""Does training the learned combination on degraded copies as well help? Leave-one-source-out.

    python benchmarks/risk_augment.py [--devset var/risk_devset] [--jobs 2]

An experiment tool, not part of the product. Every image is measured twice: as built, and
degraded the way ``risk_eval.py --degrade`` does it (half size, then JPEG quality 70, as a
re-posted thumbnail): ``risk_loso.py``'s analysis and cache (``var/loso_cache/``), whose
``train_inputs`` are the two.
Then, once per source left out, the model is fitted each way of ``FITS``: on the other sources'
full-size images only (``risk-2.2``) or on their full-size and degraded copies together (each
source still weighing the same; ``risk-2.3``), with and without a cap on how many training
spreads an input may count for, and with a doubled penalty. Each is scored on the left-out
source's full-size and degraded images. Printed: recall per category and photos flagged, for
each fit on each kind of test image, and the images whose decision changed from ``risk-2.2``'s
fit to ``risk-2.3``'s; then, for each fit on every source, the medical score of a plain grey
gradient (the test's probe of extrapolation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

CATS = ("chart", "screenshot", "medical")
#: (name, train on the degraded copies too, L2 penalty, cap on spreads). Row weights sum to the
#: row count, so twice the rows at the same penalty is half the regularisation: the doubled
#: penalty tells the two effects apart.
FITS = (
    ("risk-2.2: as built only, no cap", False, 60.0, None),
    ("both copies, no cap", True, 60.0, None),
    ("risk-2.3: both copies, cap 4", True, 60.0, 4.0),
    ("both copies, cap 3", True, 60.0, 3.0),
    ("both copies, cap 6", True, 60.0, 6.0),
    ("both copies, penalty 120, no cap", True, 120.0, None),
)


def plain_gradient() -> Image.Image:
    """A plain grey gradient, dithered (``tests/review/test_risk_analyser.py``'s probe): soft,
    with nothing to see; any fit that reads it as medical extrapolates."""
    ramp = np.tile(np.linspace(60, 200, 300), (300, 1))
    ramp += np.random.default_rng(0).normal(0, 1.0, ramp.shape)
    return Image.fromarray(ramp.astype(np.uint8), "L")


def line(pred: list[str], truth: list[str]) -> str:
    from benchmarks.risk_fit_variants import summary

    s = summary(pred, truth)
    return " ".join(f"{c}={s[c]:.3f}" for c in CATS) + f" photos_flagged={s['photo']:.3f}"


def main() -> int:
    from benchmarks import risk_loso
    from review.risk import analyse, learned
    from review.risk.analyser import learned_inputs

    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    rows, groups, tests = risk_loso.with_copies(Path(args.devset), args.jobs)
    truth = [r["category"] for r in rows]

    def fitted(idx: list[int], fit: tuple) -> dict:
        _, both, penalty, z_max = fit
        copies = ("f", "d") if both else ("f",)
        data = [(tests[c][i], truth[i], groups[i]) for i in idx for c in copies
                if tests[c][i] is not None]  # fmt: skip
        return learned.fit(
            np.vstack([learned.vector(d[0]) for d in data]),
            [d[1] for d in data],
            groups=[d[2] for d in data],
            penalty=penalty,
            z_max=z_max,
        )

    preds = risk_loso.decisions_left_out(rows, groups, tests, FITS, fitted,
                                         learned.category_scores)  # fmt: skip
    for kind, label in (("f", "as built"), ("d", "degraded")):
        for name, *_ in FITS:
            print(f"{name:36s} scored {label:8s}: {line(preds[(name, kind)], truth)}")
    below = sum(v["mid_detail"] < 1.0 for v in tests["f"] if v is not None)
    print(f"mid_detail below its ceiling (1) on {below} of {len(rows)} pictures as built")
    gradient = learned_inputs(analyse(plain_gradient(), with_features=True, use_model=False))
    for fit in FITS:  # fitted on every source, as it would ship
        medical = learned.category_scores(fitted(list(range(len(rows))), fit), gradient)["medical"]
        print(f"{fit[0]:36s} a plain grey gradient: medical {medical:.2f}")
    print_changes(rows, groups, preds, FITS[0][0], FITS[2][0])
    return 0


def print_changes(rows: list[dict], groups: list[str], preds: dict, before: str, after: str):
    """Every picture whose decision differs between fits ``before`` and ``after`` (``preds``
    keyed by fit name and ``f``/``d``, as built or degraded): fixed, broke or moved."""
    for kind, label in (("f", "as built"), ("d", "degraded")):
        print(f"decisions that differ, {before} -> {after}, {label}:")
        for i, r in enumerate(rows):
            a, b, t = preds[(before, kind)][i], preds[(after, kind)][i], r["category"]
            if a != b:
                mark = "fixed" if b == t else ("broke" if a == t else "moved")
                print(f"  {mark:5s} {t:10s} {r['file']:34s} {groups[i]:24s} {a} -> {b}")


if __name__ == "__main__":
    sys.exit(main())
