"""Train the risk analyser's learned combination and write it beside the analyser.

    python scripts/train_risk_model.py [--devset var/risk_devset] [--penalty 60] [--no-degraded]

Reads the labelled set that ``scripts/build_risk_devset.py`` builds (every split: the figures
that count come from ``benchmarks/risk_eval.py``'s leave-one-source-out, which retrains this
model once per source), measures every image with the hand-set analyser (pixels only, no file
metadata), as built and as a degraded copy (``learned.degraded_copy``: half size, JPEG 70; one
source either way), fits a multinomial logistic regression on top of the hand-set log-odds
(``review/risk/learned.py``) and writes:

- ``review/risk/model.json``: inputs, their means and spreads, coefficients per class (a few KB);
- ``review/risk/model_manifest.csv``: every training image (file name in the built set,
  category, source group, source and split), so that what the model saw is on record.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from review.risk import learned  # noqa: E402
from review.risk.analyser import ANALYSER_VERSION, training_inputs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    parser.add_argument("--penalty", type=float, default=learned.PENALTY, help="L2 penalty")
    parser.add_argument(
        "--no-degraded", action="store_true",
        help="train on the pictures as built only, not also on their degraded copies",
    )  # fmt: skip
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    devset = Path(args.devset)
    with open(devset / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    x, y, groups, used = [], [], [], []
    for r in rows:
        with Image.open(devset / r["file"]) as img:
            # None: too small to measure, nothing to learn from
            copies = [v for v in training_inputs(img, degraded=not args.no_degraded) if v]
        x += [learned.vector(v) for v in copies]
        y += [r["category"]] * len(copies)
        groups += [r["group"]] * len(copies)
        if copies:
            used.append(r)
    model = learned.fit(np.vstack(x), y, penalty=args.penalty, groups=groups)
    model["analyser"] = ANALYSER_VERSION
    model["degraded_copies"] = not args.no_degraded
    model["trained_on"] = dict(
        sorted(Counter(f"{r['group']}/{r['category']}" for r in used).items())
    )
    out = ROOT / "review" / "risk"
    (out / "model.json").write_text(json.dumps(model, indent=1) + "\n")
    with open(out / "model_manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "category", "group", "source", "split"])
        writer.writeheader()
        for r in used:
            writer.writerow({k: r[k] for k in writer.fieldnames})
    print(f"trained on {len(used)} images ({len(x)} rows with the degraded copies) from "
          f"{len({r['group'] for r in used})} sources; "
          f"wrote {out / 'model.json'} and {out / 'model_manifest.csv'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
