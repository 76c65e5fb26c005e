"""A learned combination of the analyser's measurements: multinomial logistic regression.

The hand-set log-odds in ``analyser.py`` read each measurement through ramps chosen by reasoning;
this model starts from those log-odds and learns small corrections from the same measurements
(and three more: box corners, colour spread per brightness, colourfulness of the subject) by what
separated chart, screenshot, medical and photo on the development set. It is trained by
``scripts/train_risk_model.py`` (SciPy's L-BFGS) and shipped as a few kilobytes of coefficients
(``model.json``); scoring needs NumPy only. ``benchmarks/risk_eval.py --loso``
retrains it once per source left out, so its figures say how it does on a source it never saw.
A second, binary model (``pair`` in ``model.json``), trained on the charts and screenshots alone
with every source weighing the same, decides between chart and screenshot when both would be
flagged against photo.
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
    "box_corners": "boxes: buttons, entries, panels",
    "lut_spread": "many colours at one brightness",
    "lit_chroma": "colourful subject",
    "bevels": "bevelled 3-D widget borders",
    "title_bar": "a window's title bar",
}
INPUTS = tuple(DESCRIPTIONS)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def inputs(f: Features, hand: dict[str, float], graphic: float, scan: float) -> dict[str, float]:
    """The model's inputs by name: the measurements, and the hand-set scores as log-odds."""
    values = {k: float(v) for k, v in vars(f).items() if k in DESCRIPTIONS}
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
        box_corners=math.log1p(values["box_corners"]),
        lut_spread=values["lut_spread"] / 40.0,
        bevels=math.log1p(10.0 * values["bevels"]),
        title_bar=min(1.0, 10.0 * values["title_bar"]),
    )
    return values


def vector(values: dict[str, float]) -> np.ndarray:
    return np.array([values[k] for k in INPUTS], dtype=np.float64)


OFFSETS = ("hand_chart", "hand_screenshot", "hand_medical", None)  # per class, photo last
# L2 on the standardised weights: corrections stay small where data are few. 60 since
# ``risk-2.2`` (30 before): on the 744-image set 30 and 60 gave the same leave-one-source-out
# figures, and at 30 a horizon's flat sky (``top_bar``) read as medical 0.51.
PENALTY = 60.0
# Share of the learned log-odds in the final ones (the rest: the hand-set rules'). 1.0 did best
# on the worst category under leave-one-source-out but flagged more photos (0.06) and read a
# terminal, a horizon and a framed photo as medical; 0.35 is the largest tried (1, 0.65, 0.5,
# 0.35) at which the representative pictures of tests/review/test_risk_analyser.py all pass.
BLEND = 0.35
# Chart or screenshot, when both would be flagged against photo: a second, binary model trained
# on the charts and screenshots alone decides between them (the multinomial one learns that
# boundary from the big sources mostly). Each source weighs the same within its class
# (``PAIR_POWER`` 1): there are two chart sources and six screenshot ones, of 10 to 113 images.
PAIR = ("chart", "screenshot")
PAIR_PENALTY = 30.0
# No input counts for more than this many of its training spreads (``_standardised``).
Z_MAX = 4.0
PAIR_POWER = 1.0


def degraded_copy(img):
    """A picture after the trip it takes when re-posted as a thumbnail: half size (bilinear),
    then JPEG quality 70.

    Since ``risk-2.3`` the model is trained on every picture twice, as built and as this copy
    (the same source, so a source still weighs what it did). Trained on pristine pixels alone,
    a window at half size, its one-pixel bevels and title-bar steps blurred by JPEG, read as a
    photo, and 6% of degraded photos were flagged. ``benchmarks/risk_eval.py --degrade`` tests
    on such copies.
    """
    import io

    from PIL import Image

    img = img.convert("RGB")
    small = img.resize((max(8, img.width // 2), max(8, img.height // 2)), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=70)
    return Image.open(io.BytesIO(buf.getvalue()))


def row_weights(y: list[str], groups: list[str] | None = None, power: float = 0.0) -> np.ndarray:
    """Per-row weights: every class weighs the same in all (the many photo crops do not decide
    alone); within a class, the rows of a source of ``m`` such rows each weigh ``m ** -power``
    (0: every row alike, so a big source decides; 1: every source alike; 0.5: between)."""
    classes = np.array([CLASSES.index(v) for v in y])
    keys = list(zip(groups or [""] * len(y), y, strict=True))
    size = {key: keys.count(key) for key in set(keys)}
    w = np.array([size[key] ** -power for key in keys], dtype=np.float64)
    n, k = len(y), len(CLASSES)
    for c in set(classes.tolist()):
        mask = classes == c
        w[mask] *= (n / k) / w[mask].sum()
    return w


def fit(
    x: np.ndarray,
    y: list[str],
    *,
    penalty: float = PENALTY,
    blend: float = BLEND,
    groups: list[str] | None = None,
    power: float = 0.0,
    pair_penalty: float = PAIR_PENALTY,
    pair_power: float = PAIR_POWER,
    z_max: float | None = Z_MAX,
) -> dict:
    """Train on rows ``x`` (``INPUTS`` order) with labels ``y``; the model as plain data.

    Multinomial logistic regression whose class scores start from the hand-set log-odds (chart,
    screenshot and medical, as offsets; photo at 0) and learn corrections on top, with an L2
    penalty that keeps them small: with no examples of a kind of picture the hand-set rules
    still decide. Classes are weighted by their share, so the many photo crops do not decide
    alone. A class the rows lack (leave-one-source-out can remove all of one) keeps the
    hand-set rules' say and gets no correction. ``groups`` (each row's source) lets a class's
    rows be weighted by source (``power``, see ``row_weights``) and the chart-versus-screenshot
    model (``pair``) weigh its sources alike.
    """
    from scipy.optimize import minimize

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-9] = 1.0
    xs = _standardised(x, mean, std, z_max)
    labels = np.array([CLASSES.index(v) for v in y])
    n, d = xs.shape
    k = len(CLASSES)
    onehot = np.eye(k)[labels]
    counts = np.bincount(labels, minlength=k)
    weight = row_weights(y, groups, power)
    offset = _offsets(x)
    present = counts > 0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: k * d].reshape(k, d) * present[:, None]
        b = theta[k * d :] * present
        z = xs @ w.T + b + offset
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -(weight * np.log(p[np.arange(n), labels] + 1e-12)).sum() + penalty * (w * w).sum()
        gz = (p - onehot) * weight[:, None]
        gw = (gz.T @ xs + 2 * penalty * w) * present[:, None]
        return float(value), np.concatenate([gw.ravel(), gz.sum(axis=0) * present])

    theta = minimize(loss, np.zeros(k * d + k), jac=True, method="L-BFGS-B",
                     options={"maxiter": 1000}).x  # fmt: skip
    return {
        "inputs": list(INPUTS),
        "classes": list(CLASSES),
        "offsets": list(OFFSETS),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        # the range each input took in training: scoring clips to it (see ``_inputs_in_range``)
        "lo": [round(float(v), 6) for v in x.min(axis=0)],
        "hi": [round(float(v), 6) for v in x.max(axis=0)],
        "coef": [[round(float(v), 5) for v in row] for row in theta[: k * d].reshape(k, d)],
        "intercept": [round(float(v), 5) for v in theta[k * d :]],
        "penalty": penalty,
        "blend": blend,
        "z_max": z_max,
        "pair": _fit_pair(x, y, groups, penalty=pair_penalty, power=pair_power, z_max=z_max),
    }


def _fit_pair(
    x: np.ndarray,
    y: list[str],
    groups: list[str] | None,
    *,
    penalty: float,
    power: float,
    z_max: float | None = None,
) -> dict | None:
    """Binary logistic regression, chart against screenshot, on the rows of those two classes
    (standardised by their own weighted means and spreads), starting from the hand-set rules'
    log-odds of chart minus those of screenshot. ``None`` without rows of both."""
    from scipy.optimize import minimize

    rows = [i for i, v in enumerate(y) if v in PAIR]
    if {y[i] for i in rows} != set(PAIR):
        return None
    t = np.array([y[i] == PAIR[0] for i in rows], dtype=np.float64)
    weight = row_weights([y[i] for i in rows], [groups[i] for i in rows] if groups else None,
                         power)  # fmt: skip
    # centred where the weighted rows balance, so that a reason's "push" is against a picture
    # halfway between the two classes, not against the average screenshot
    mean = np.average(x[rows], axis=0, weights=weight)
    std = np.sqrt(np.average((x[rows] - mean) ** 2, axis=0, weights=weight))
    std[std < 1e-9] = 1.0
    xp = _standardised(x[rows], mean, std, z_max)
    offset = _pair_offset(x[rows])
    d = xp.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = xp @ w + b + offset
        log_p, log_q = -np.logaddexp(0, -z), -np.logaddexp(0, z)
        value = -(weight * (t * log_p + (1 - t) * log_q)).sum() + penalty * (w * w).sum()
        gz = (1 / (1 + np.exp(-z)) - t) * weight
        return float(value), np.concatenate([xp.T @ gz + 2 * penalty * w, [gz.sum()]])

    theta = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 1000}).x  # fmt: skip
    return {
        "classes": list(PAIR),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "coef": [round(float(v), 5) for v in theta[:d]],
        "intercept": round(float(theta[d]), 5),
        "penalty": penalty,
        "power": power,
    }


def _pair_offset(x: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    names = names or list(INPUTS)
    return x[:, names.index(f"hand_{PAIR[0]}")] - x[:, names.index(f"hand_{PAIR[1]}")]


def pair_logit(
    model: dict, values: dict[str, float], meta: dict[str, float] | None = None
) -> float | None:
    """Log-odds of chart against screenshot from the pairwise model (with file metadata, 3 per
    hint as elsewhere), or ``None`` when the model has none."""
    pair = model.get("pair")
    if not pair:
        return None
    raw = np.array([values[k] for k in model["inputs"]])
    x = _standardised(_inputs_in_range(model, raw), pair["mean"], pair["std"], model.get("z_max"))
    hint = 3.0 * ((meta or {}).get(PAIR[0], 0.0) - (meta or {}).get(PAIR[1], 0.0))
    offset = float(_pair_offset(raw[None, :], model["inputs"])[0])
    return float(np.dot(pair["coef"], x)) + pair["intercept"] + offset + hint


def _offsets(x: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """The hand-set log-odds per class for rows ``x`` (0 for photo)."""
    names = names or list(INPUTS)
    cols = [x[:, names.index(o)] if o else np.zeros(len(x)) for o in OFFSETS]
    return np.column_stack(cols)


def _standardised(x: np.ndarray, mean, std, z_max: float | None) -> np.ndarray:
    """Inputs in units of their training spread, at most ``z_max`` of them either way.

    An input that barely varied in training (``mid_detail`` saturates at 1 on all but two of the
    744 pictures) has a tiny spread: a value at the edge of its range sat 30 spreads out, and a
    weight learned from those two pictures decided alone (a plain grey gradient read as medical
    0.52 once the degraded copies joined the training). Training and scoring both cap it.
    Models saved without ``z_max`` score as before.
    """
    out = (x - np.asarray(mean)) / np.asarray(std)
    return out if z_max is None else np.clip(out, -z_max, z_max)


def _inputs_in_range(model: dict, raw: np.ndarray) -> np.ndarray:
    """The inputs clipped to the range they took in training.

    A linear model extrapolates without limit: an input far outside anything it was fitted on
    (a plain gradient's ``mid_detail``, 130 standard deviations below every training picture)
    would otherwise decide alone. The hand-set log-odds (the offsets) are not clipped: they are
    the rules' own verdict. Models saved without ranges score as before.
    """
    if "lo" not in model:
        return raw
    return np.clip(raw, model["lo"], model["hi"])


def _logits(model: dict, values: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    raw = np.array([values[k] for k in model["inputs"]])
    x = _standardised(_inputs_in_range(model, raw), model["mean"], model["std"], model.get("z_max"))
    hand = _offsets(raw[None, :], model["inputs"])[0]
    z = np.asarray(model["coef"]) @ x + np.asarray(model["intercept"]) + hand
    # the learned scores averaged with the hand-set log-odds (``blend`` 1: the model alone)
    blend = model.get("blend", 1.0)
    return blend * z + (1.0 - blend) * hand, x


def probabilities(model: dict, values: dict[str, float]) -> dict[str, float]:
    z, _ = _logits(model, values)
    e = np.exp(z - z.max())
    p = e / e.sum()
    return dict(zip(model["classes"], (float(v) for v in p), strict=True))


def category_scores(
    model: dict, values: dict[str, float], meta: dict[str, float] | None = None
) -> dict[str, float]:
    """0..1 per risk category. The likeliest risky category scores its odds against photo alone
    (so that a chart that looks a bit like a screen is still flagged as a chart); the others
    score their own probability (so that they are flagged only when more likely than not, and
    a reviewer does not read two reasons where one holds). File metadata, evidence the model was
    not trained on, is added in log-odds as the hand-set rules add it (3 per hint)."""
    z, _ = _logits(model, values)
    classes = list(model["classes"])
    z = z + np.array([3.0 * (meta or {}).get(c, 0.0) for c in classes])
    a, b, photo = (classes.index(c) for c in (*PAIR, "photo"))
    if z[a] > z[photo] and z[b] > z[photo]:  # both would be flagged: the pairwise model orders them
        q = pair_logit(model, values, meta)
        if q is not None and (q > 0) != (z[a] > z[b]):
            z[a], z[b] = z[b], z[a]
    return scores_from_logits(classes, z)


def scores_from_logits(classes: list[str], z: np.ndarray) -> dict[str, float]:
    """0..1 per risk category from one log-odds score per class (``category_scores``' rule: the
    likeliest risky category against photo alone, the others their own probability)."""
    p = np.exp(z - z.max())
    p /= p.sum()
    photo = classes.index("photo")
    risky = [i for i in range(len(classes)) if i != photo]
    top = max(risky, key=lambda i: z[i])
    out = {}
    for i in risky:
        t = float(z[i] - z[photo]) if i == top else math.log(max(p[i], 1e-9) / max(1 - p[i], 1e-9))
        out[classes[i]] = round(1 / (1 + math.exp(-min(max(t, -30.0), 30.0))), 3)
    return out


def reasons_for(
    model: dict, values: dict[str, float], category: str, n: int = 3, *, against: bool = False
) -> list[str]:
    """What pushed ``category`` above photo the most (``against``: below it), in words: the
    hand-set rules' verdict and the learned corrections."""
    _, x = _logits(model, values)
    coef = np.asarray(model["coef"])
    classes = model["classes"]
    push = (coef[classes.index(category)] - coef[classes.index("photo")]) * x
    names = list(model["inputs"])
    own = f"hand_{category}"
    if own in names:  # the offset: the hand-set rules' own log-odds, weight 1
        push[names.index(own)] += values[own]
    if against:
        push = -push
    out = []
    for i in np.argsort(-push)[:n]:
        if push[i] <= 0.3:
            break
        if names[i] == own:
            out.append(DESCRIPTIONS[own].replace("looks like", "does not look like" if against
                                                 else "looks like"))  # fmt: skip
            continue
        low = x[i] < 0  # a negative weight met a low value: "little of" reads better
        out.append(("little: " if low else "") + DESCRIPTIONS.get(names[i], names[i]))
    pair = model.get("pair")
    if pair and category in PAIR and not against:  # what told it from the other of the two
        sign = 1.0 if category == PAIR[0] else -1.0
        raw = np.array([values[k] for k in names])
        xp = _standardised(
            _inputs_in_range(model, raw), pair["mean"], pair["std"], model.get("z_max")
        )
        push = sign * np.asarray(pair["coef"]) * xp
        i = int(np.argmax(push))  # its weights are small and spread: a lower bar than above
        words = ("little: " if xp[i] < 0 else "") + DESCRIPTIONS.get(names[i], names[i])
        if push[i] > 0.15:
            other = "screen" if category == PAIR[0] else "plot"
            out = [w for w in out if w != words] + [f"{words} (rather than a {other})"]
    return out


@lru_cache(maxsize=1)
def shipped_model() -> dict | None:
    """The model in ``model.json`` beside this file, or ``None`` when none is shipped."""
    if not MODEL_PATH.exists():
        return None
    return json.loads(MODEL_PATH.read_text())
