"""A learned combination of the analyser's measurements: multinomial logistic regression.

The hand-set log-odds in ``analyser.py`` read each measurement through ramps chosen by reasoning;
this model reads the same measurements (and the hand-set category log-odds themselves) and weighs
them by what separated chart, screenshot, medical and photo on the development set. It is trained
by ``scripts/train_risk_model.py`` with scikit-learn and shipped as a few kilobytes of
coefficients (``model.json``); scoring needs NumPy only. ``benchmarks/risk_eval.py --loso``
retrains it once per source left out, so its figures say how it does on a source it never saw.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from .features import Features

MODEL_PATH = Path(__file__).with_name("model.json")
CLASSES = ("chart", "screenshot", "medical", "photo")

# Each input with the words a reason uses when it pushes a decision.
DESCRIPTIONS: dict[str, str] = {
    "hand_chart": "looks like a plot to the hand-set rules",
    "hand_screenshot": "looks like a screen to the hand-set rules",
    "hand_medical": "looks like medical imaging to the hand-set rules",
    "graphic": "rendered graphic (flat fills, crisp steps)",
    "scan_field": "grey symmetric subject on black",
    "megapixels_log": "image size",
    "aspect_log": "shape (height to width)",
    "gray_frac": "no colour",
    "mean_chroma": "colourful",
    "vivid_frac": "strong colours",
    "palette_share": "few exact colours",
    "palette_colours": "number of flat colours",
    "top_colour_share": "one colour covers much of it",
    "vivid_palette_share": "flat saturated colours",
    "flat_frac": "exactly flat regions",
    "edge_frac": "many strong edges",
    "crisp_frac": "crisp edges",
    "crisp_ratio": "edges are crisp steps",
    "text_rows": "rows of strokes",
    "h_lines": "horizontal straight lines",
    "v_lines": "vertical straight lines",
    "full_width_lines": "full-width bars",
    "axes": "two axes meet at a corner",
    "dark_frac": "dark background",
    "dark_border": "black surround",
    "centre_contrast": "bright centre, dark edges",
    "symmetry": "mirror-symmetric subject",
    "cross_symmetry": "left-right symmetric anatomy",
    "tone_smooth": "continuous tones",
    "lit_flat_frac": "flat lit regions",
    "text_tiles": "lines of text",
    "stain_frac": "pink/purple stain",
    "warm_frac": "red-orange colours",
    "page_background": "white page",
    "mid_flat_frac": "flat mid-tone fills",
    "screen_size": "screen resolution",
    "screen_aspect": "screen aspect ratio",
    "near_flat_frac": "near-flat regions",
    "hard_step_share": "abrupt steps",
    "text_of_ink": "ink is mostly text",
    "text_tile_count": "many text tiles judged",
    "lit_gray_frac": "grey subject",
    "dim_border": "dark-grey surround",
    "stain_residual": "colours off a two-dye plane",
    "dye_angle": "two dye colours",
    "glass_frac": "bright slide glass",
    "busy_share": "textured throughout",
    "fine_detail": "pixel-scale detail",
    "mid_detail": "visible structure",
    "top_bar": "a bar across the top",
}
INPUTS = tuple(DESCRIPTIONS)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def inputs(f: Features, hand: dict[str, float], graphic: float, scan: float) -> dict[str, float]:
    """The model's inputs by name: the measurements, and the hand-set scores as log-odds."""
    values = {k: float(v) for k, v in f.as_dict().items() if k in DESCRIPTIONS}
    values.update(
        hand_chart=_logit(hand["chart"]),
        hand_screenshot=_logit(hand["screenshot"]),
        hand_medical=_logit(hand["medical"]),
        graphic=graphic,
        scan_field=scan,
        megapixels_log=math.log10(max(1, f.width * f.height) / 1e6),
        aspect_log=math.log(f.height / f.width),
        palette_colours=math.log1p(values["palette_colours"]),
        h_lines=math.log1p(values["h_lines"]),
        v_lines=math.log1p(values["v_lines"]),
        full_width_lines=math.log1p(values["full_width_lines"]),
        text_tile_count=math.log1p(values["text_tile_count"]),
        mean_chroma=values["mean_chroma"] / 100.0,
        dye_angle=values["dye_angle"] / 90.0,
        fine_detail=min(1.0, values["fine_detail"] * 50),
        mid_detail=min(1.0, values["mid_detail"] * 20),
        stain_residual=min(1.0, values["stain_residual"] * 100),
    )
    return values


def vector(values: dict[str, float]) -> np.ndarray:
    return np.array([values[k] for k in INPUTS], dtype=np.float64)


def fit(x: np.ndarray, y: list[str], *, c: float = 0.5) -> dict:
    """Train on rows ``x`` (``INPUTS`` order) with labels ``y``; the model as plain data.

    Classes are weighted by their share so that the many photo crops do not decide alone.
    """
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    clf.fit((x - mean) / std, y)
    seen = list(clf.classes_)
    coef = clf.coef_ if len(seen) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
    intercept = clf.intercept_ if len(seen) > 2 else [-clf.intercept_[0] / 2, clf.intercept_[0] / 2]
    # a class the training rows lack (leave-one-source-out can remove all of one) is never chosen
    rows = [coef[seen.index(k)] if k in seen else np.zeros(len(INPUTS)) for k in CLASSES]
    bias = [float(intercept[seen.index(k)]) if k in seen else -30.0 for k in CLASSES]
    return {
        "inputs": list(INPUTS),
        "classes": list(CLASSES),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "coef": [[round(float(v), 5) for v in row] for row in rows],
        "intercept": [round(v, 5) for v in bias],
        "c": c,
    }


def probabilities(model: dict, values: dict[str, float]) -> dict[str, float]:
    x = (np.array([values[k] for k in model["inputs"]]) - model["mean"]) / model["std"]
    z = np.asarray(model["coef"]) @ x + np.asarray(model["intercept"])
    e = np.exp(z - z.max())
    p = e / e.sum()
    return dict(zip(model["classes"], (float(v) for v in p), strict=True))


def reasons_for(model: dict, values: dict[str, float], category: str, n: int = 3) -> list[str]:
    """The inputs that pushed ``category`` above photo the most, in words."""
    x = (np.array([values[k] for k in model["inputs"]]) - model["mean"]) / model["std"]
    coef = np.asarray(model["coef"])
    classes = model["classes"]
    push = (coef[classes.index(category)] - coef[classes.index("photo")]) * x
    out = []
    for i in np.argsort(-push)[:n]:
        if push[i] <= 0.3:
            break
        name = model["inputs"][i]
        low = x[i] < 0  # a negative weight met a low value: "little of" reads better
        out.append(("little: " if low else "") + DESCRIPTIONS.get(name, name))
    return out


@lru_cache(maxsize=1)
def shipped_model() -> dict | None:
    """The model in ``model.json`` beside this file, or ``None`` when none is shipped."""
    if not MODEL_PATH.exists():
        return None
    return json.loads(MODEL_PATH.read_text())
