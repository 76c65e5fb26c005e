"""Gradient-boosted trees against the shipped logistic regression, leave-one-source-out.

    python benchmarks/risk_boosting.py [--devset var/risk_devset] [--jobs 2] [--only 0,1]
                                       [--without framed-photos]

An experiment tool, not part of the product (it needs scikit-learn, a development dependency).
Issue 15 asked whether trees on the analyser's measurements generalise better than the logistic
regression; for ``risk-2.4`` they were tried two ways and not kept (``benchmarks/README.md``).
Each fit of ``FITS`` is trained once per source left out, on the other sources' pictures as
built and their degraded copies (what ``scripts/train_risk_model.py`` trains on, through
``risk_loso.py``'s cache), every class weighing the same, and scored on the left-out source's
pictures as built and degraded, with the files' metadata hints added as the product adds them
(3 in log-odds per hint):

- ``shipped``: ``learned.fit`` and ``learned.category_scores``, as the product fits and scores;
- ``pair trees``: the same, except that when chart and screenshot both beat photo,
  scikit-learn's ``HistGradientBoostingClassifier``, trained on the charts and screenshots
  alone with each source weighing the same (as the logistic pair model is), orders the two;
- ``four-class trees``: the logistic regression without its pair model, its log-probabilities
  averaged with those of the same classifier trained on all four classes (weight ``w``).

Printed: recall per category and photos flagged for each fit and kind of test picture, with how
many of the ``framed-photos`` were flagged; then, per fit fitted on every source as it would
ship, the decisions on the test suite's representative pictures that it gets wrong (a phone's
chat screen, a PDF viewer's thumbnail, a greyscale photograph on a black mount) and the medical
score of a plain grey gradient; and the pictures whose decision differs between the shipped fit
and each other.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

#: (name, kind, settings): (depth, iterations, rate) for pair trees, and the trees' weight too
#: for four-class trees.
FITS = (
    ("shipped: logistic, logistic pair", "shipped", None),
    ("pair trees, depth 3, 50 x 0.2", "pair", (3, 50, 0.2)),
    ("pair trees, depth 3, 200 x 0.1", "pair", (3, 200, 0.1)),
    ("pair trees, depth 2, 200 x 0.1", "pair", (2, 200, 0.1)),
    ("four-class trees, w 0.5, depth 3, 50 x 0.2", "four", (3, 50, 0.2, 0.5)),
    ("four-class trees, w 0.5, depth 3, 200 x 0.1", "four", (3, 200, 0.1, 0.5)),
    ("four-class trees, w 0.35, depth 3, 50 x 0.2", "four", (3, 50, 0.2, 0.35)),
)


def classifier(depth: int, iterations: int, rate: float):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_depth=depth,
        learning_rate=rate,
        max_iter=iterations,
        l2_regularization=1.0,
        min_samples_leaf=20,
        early_stopping=False,
        random_state=0,
    )


class Fit:
    def __init__(self, x: np.ndarray, y: list[str], groups: list[str], kind: str, settings):
        from review.risk import learned

        self.kind, self.settings = kind, settings
        self.model = learned.fit(x, y, groups=groups)
        if kind == "pair":
            rows = [i for i, v in enumerate(y) if v in learned.PAIR]
            weight = learned.row_weights([y[i] for i in rows], [groups[i] for i in rows], 1.0)
            self.clf = classifier(*settings)
            self.clf.fit(x[rows], [y[i] == learned.PAIR[0] for i in rows], sample_weight=weight)
        elif kind == "four":
            self.model = self.model | {"pair": None}
            self.clf = classifier(*settings[:3])
            weight = learned.row_weights(y, groups)
            self.clf.fit(x, [learned.CLASSES.index(v) for v in y], sample_weight=weight)

    def scores(self, values: dict, meta: dict) -> dict:
        from review.risk import learned

        if self.kind == "shipped":
            return learned.category_scores(self.model, values, meta)
        classes = list(learned.CLASSES)
        z, _ = learned._logits(self.model, values)
        row = learned.vector(values)[None, :]
        if self.kind == "four":
            p = np.full(len(classes), 1e-6)
            p[self.clf.classes_] = self.clf.predict_proba(row)[0]
            w = self.settings[3]
            z = (1 - w) * (z - np.logaddexp.reduce(z)) + w * np.log(np.clip(p, 1e-6, 1.0))
        z = z + np.array([3.0 * meta.get(c, 0.0) for c in classes])
        a, b, photo = (classes.index(c) for c in (*learned.PAIR, "photo"))
        if self.kind == "pair" and z[a] > z[photo] and z[b] > z[photo]:
            hint = 3.0 * (meta.get(learned.PAIR[0], 0.0) - meta.get(learned.PAIR[1], 0.0))
            q = self.clf.decision_function(row)[0] + hint
            if (q > 0) != (z[a] > z[b]):
                z[a], z[b] = z[b], z[a]
        return learned.scores_from_logits(classes, z)


def representative() -> dict[str, tuple[dict, str]]:
    """Pictures of ``tests/review/test_risk_analyser.py`` and ``test_risk_signals.py``, with
    their learned inputs and the decision those tests require."""
    from PIL import ImageOps
    from skimage import data

    from review.risk import analyse, learned
    from review.risk.analyser import learned_inputs
    from tests.review import risk_samples

    pdf_thumbnail = learned.degraded_copy(risk_samples.pdf_viewer_png())
    mounted = ImageOps.expand(Image.fromarray(data.coins()), border=60, fill=0)
    pictures = {
        "phone chat screen": (risk_samples.phone_chat_png(), "screenshot"),
        "PDF viewer, degraded": (pdf_thumbnail, "screenshot"),
        "greyscale photo on a black mount": (mounted, "photo"),
    }
    return {
        name: (learned_inputs(analyse(img, with_features=True, use_model=False)), want)
        for name, (img, want) in pictures.items()
    }


def main() -> int:
    from benchmarks import risk_eval, risk_loso
    from benchmarks.risk_augment import line, plain_gradient, print_changes
    from review.risk import analyse, learned
    from review.risk.analyser import learned_inputs

    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="indices of FITS to run, e.g. 0,1")
    ap.add_argument(
        "--without", default="",
        help="source groups to leave out of the set altogether, e.g. framed-photos",
    )  # fmt: skip
    args = ap.parse_args()
    fits = [FITS[int(i)] for i in args.only.split(",")] if args.only else list(FITS)
    without = frozenset(filter(None, args.without.split(",")))
    rows, groups, tests = risk_loso.with_copies(Path(args.devset), args.jobs, without)
    truth = [r["category"] for r in rows]

    def fitted(idx: list[int], fit: tuple) -> Fit:
        _, kind, settings = fit
        data = [(v, truth[i], groups[i]) for i in idx for v in rows[i]["train_inputs"]
                if v is not None]  # fmt: skip
        x = np.vstack([learned.vector(d[0]) for d in data])
        return Fit(x, [d[1] for d in data], [d[2] for d in data], kind, settings)

    preds = risk_loso.decisions_left_out(rows, groups, tests, fits, fitted,
                                         lambda model, v, meta: model.scores(v, meta))  # fmt: skip
    framed = [i for i, g in enumerate(groups) if g == "framed-photos"]
    for kind, label in (("f", "as built"), ("d", "degraded")):
        for name, *_ in fits:
            pred = preds[(name, kind)]
            flagged = sum(pred[i] != "photo" for i in framed)
            extra = f" framed_photos_flagged={flagged}/{len(framed)}" if framed else ""
            print(f"{name:44s} scored {label:8s}: {line(pred, truth)}{extra}")
    gradient = learned_inputs(analyse(plain_gradient(), with_features=True, use_model=False))
    pictures = representative()
    for fit in fits:  # fitted on every source, as it would ship
        model = fitted(list(range(len(rows))), fit)
        wrong = [f"{name} read as {got}" for name, (values, want) in pictures.items()
                 if (got := risk_eval.decided(model.scores(values, {}))) != want]  # fmt: skip
        medical = model.scores(gradient, {})["medical"]
        print(f"{fit[0]:44s} a plain grey gradient: medical {medical:.2f}; representative "
              f"pictures wrong: {'; '.join(wrong) or 'none'}")  # fmt: skip
    names = [f[0] for f in fits]
    for after in names[1:] if FITS[0][0] in names else []:
        print_changes(rows, groups, preds, FITS[0][0], after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
