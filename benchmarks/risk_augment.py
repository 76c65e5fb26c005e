"""Does training the learned combination on degraded copies as well help? Leave-one-source-out.

    python benchmarks/risk_augment.py [--devset var/risk_devset] [--jobs 2]

An experiment tool, not part of the product. Every image is measured twice: as built, and
degraded the way ``risk_eval.py --degrade`` does it (half size, then JPEG quality 70, as a
re-posted thumbnail). The measurements are cached under ``var/loso_cache/`` per code version
(``risk_loso.py``'s cache for the full-size ones). Then, once per source left out, the model is
fitted on the other sources' full-size images only (what ships today) or on their full-size
and degraded copies together (each source still weighing the same), and both are scored on the
left-out source's full-size and degraded images. Printed: recall per category and photos
flagged, for each fit on each kind of test image, and the images whose decision changed.
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
    # Row weights sum to the row count, so twice the rows at the same L2 penalty is half the
    # regularisation: "both2" doubles the penalties to tell the two effects apart.
    fits = ("full", "both", "both2")
    preds = {(fit, test): ["photo"] * len(rows) for fit in fits for test in "fd"}
    for g in sorted(set(groups)):
        train = [i for i, gi in enumerate(groups) if gi != g]
        test = [i for i, gi in enumerate(groups) if gi == g]
        sets = {
            "full": [(xf[i], truth[i], groups[i]) for i in train if xf[i] is not None],
            "both": [(x[i], truth[i], groups[i]) for x in (xf, xd) for i in train
                     if x[i] is not None],
        }  # fmt: skip
        sets["both2"] = sets["both"]
        for fit, data in sets.items():
            scale = 2.0 if fit == "both2" else 1.0
            model = learned.fit(
                np.vstack([d[0] for d in data]),
                [d[1] for d in data],
                groups=[d[2] for d in data],
                penalty=learned.PENALTY * scale,
                pair_penalty=learned.PAIR_PENALTY * scale,
            )
            for test_kind, cache in (("f", full), ("d", small)):
                for i in test:
                    m = cache[files[i]]
                    sc = (
                        learned.category_scores(model, m["inputs"], m["meta"])
                        if m["inputs"] is not None
                        else zero
                    )
                    preds[(fit, test_kind)][i] = decided(sc)
    for (fit, test_kind), pred in sorted(preds.items(), key=lambda kv: kv[0][1]):
        kind = "full-size" if test_kind == "f" else "degraded"
        print(f"fit on {fit:5s}, scored on {kind:9s}: {summary(pred, truth)}")
    for test_kind in "fd":
        kind = "full-size" if test_kind == "f" else "degraded"
        print(f"changed decisions, full -> both2, {kind} test images:")
        for i, r in enumerate(rows):
            a, b = preds[("full", test_kind)][i], preds[("both2", test_kind)][i]
            if a != b:
                mark = "fixed" if b == truth[i] else ("broke" if a == truth[i] else "moved")
                print(f"  {mark:5s} {truth[i]:10s} {r['file']:34s} {groups[i]:24s} {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
