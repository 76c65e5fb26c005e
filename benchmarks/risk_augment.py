"""Does training the learned combination on degraded copies as well help? Leave-one-source-out.

    python benchmarks/risk_augment.py [--devset var/risk_devset] [--jobs 2]

An experiment tool, not part of the product. Every image is measured twice: as built, and
degraded the way ``risk_eval.py --degrade`` does it (half size, then JPEG quality 70, as a
re-posted thumbnail). The measurements are cached under ``var/loso_cache/`` per code version.
Then, once per source left out, the model is fitted each way of ``FITS``: on the other sources'
full-size images only (``risk-2.2``) or on their full-size and degraded copies together (each
source still weighing the same; ``risk-2.3``), with and without a cap on how many training
spreads an input may count for, and with a doubled penalty. Each is scored on the left-out
source's full-size and degraded images. Printed: recall per category and photos flagged, for
each fit on each kind of test image, and the images whose decision changed from ``risk-2.2``'s
fit to ``risk-2.3``'s.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
from multiprocessing import Pool
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


def measure(args):
    devset, file, degraded = args
    from benchmarks.risk_eval import degrade
    from review.risk import analyse
    from review.risk.analyser import learned_inputs, metadata_hints

    with Image.open(Path(devset) / file) as img:
        meta = metadata_hints(img)
        pixels = degrade(img) if degraded else img
        report = analyse(pixels, with_features=True, use_model=False)
    return file, {"inputs": learned_inputs(report) if report.features else None, "meta": meta}


def measured(devset: Path, files: list[str], degraded: bool, jobs: int) -> dict:
    from benchmarks.risk_loso import code_hash

    cache_dir = ROOT / "var" / "loso_cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{code_hash()}{'-degraded' if degraded else '-full'}.pkl"
    cache = pickle.loads(path.read_bytes()) if path.exists() else {}
    todo = [(str(devset), f, degraded) for f in files if f not in cache]
    if todo:
        with Pool(jobs) as pool:
            for n, (file, res) in enumerate(pool.imap_unordered(measure, todo, 8), 1):
                cache[file] = res
                if n % 100 == 0:
                    print(f"  measured {n}/{len(todo)} {'degraded' if degraded else 'full'}")
        path.write_bytes(pickle.dumps(cache))
    return cache


def decided(scores: dict[str, float]) -> str:
    best = max(CATS, key=lambda c: scores[c])
    return best if scores[best] >= 0.5 else "photo"


def summary(pred: list[str], truth: list[str]) -> str:
    parts = []
    for c in CATS:
        idx = [i for i, t in enumerate(truth) if t == c]
        parts.append(f"{c}={sum(pred[i] == c for i in idx) / len(idx):.3f}")
    idx = [i for i, t in enumerate(truth) if t == "photo"]
    parts.append(f"photos_flagged={sum(pred[i] != 'photo' for i in idx) / len(idx):.3f}")
    return " ".join(parts)


def main() -> int:
    from review.risk import learned

    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    devset = Path(args.devset)
    with open(devset / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    files = [r["file"] for r in rows]
    full = measured(devset, files, False, args.jobs)
    small = measured(devset, files, True, args.jobs)
    truth = [r["category"] for r in rows]
    groups = [r["group"] for r in rows]

    def vec(m):
        return learned.vector(m["inputs"]) if m["inputs"] is not None else None

    xf = [vec(full[f]) for f in files]
    xd = [vec(small[f]) for f in files]
    zero = dict.fromkeys(CATS, 0.0)
    preds = {(fit[0], test): ["photo"] * len(rows) for fit in FITS for test in "fd"}
    for g in sorted(set(groups)):
        train = [i for i, gi in enumerate(groups) if gi != g]
        test = [i for i, gi in enumerate(groups) if gi == g]
        for name, both, penalty, z_max in FITS:
            data = [(x[i], truth[i], groups[i]) for x in ((xf, xd) if both else (xf,))
                    for i in train if x[i] is not None]  # fmt: skip
            model = learned.fit(
                np.vstack([d[0] for d in data]),
                [d[1] for d in data],
                groups=[d[2] for d in data],
                penalty=penalty,
                z_max=z_max,
            )
            for test_kind, cache in (("f", full), ("d", small)):
                for i in test:
                    m = cache[files[i]]
                    sc = (
                        learned.category_scores(model, m["inputs"], m["meta"])
                        if m["inputs"] is not None
                        else zero
                    )
                    preds[(name, test_kind)][i] = decided(sc)
    for test_kind in "fd":
        kind = "as built" if test_kind == "f" else "degraded"
        for name, *_ in FITS:
            print(f"{name:36s} scored {kind:8s}: {summary(preds[(name, test_kind)], truth)}")
    before, after = FITS[0][0], FITS[2][0]
    for test_kind in "fd":
        kind = "as built" if test_kind == "f" else "degraded"
        print(f"changed decisions, {before} -> {after}, {kind}:")
        for i, r in enumerate(rows):
            a, b = preds[(before, test_kind)][i], preds[(after, test_kind)][i]
            if a != b:
                mark = "fixed" if b == truth[i] else ("broke" if a == truth[i] else "moved")
                print(f"  {mark:5s} {truth[i]:10s} {r['file']:34s} {groups[i]:24s} {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
