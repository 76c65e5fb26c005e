"""Signal (b): what the models' captions say about the image; its combination with signal (a)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .analyser import CATEGORIES, RiskReport

DEFAULT_THRESHOLD = 0.5
CAPTION_WEIGHT = 3.0  # log-odds added for a caption that clearly names the category
MODEL_ANSWER_WEIGHT = 2.0  # log-odds per unit of the model's answer to RISK_QUESTION
RISK_QUESTION = (
    "Is this image a chart or diagram, a screenshot of a screen or document, a medical image "
    "(X-ray, CT, MRI, ultrasound, microscopy, endoscopy, skin close-up) or an ordinary photo? "
    "Answer with one of: chart, screenshot, medical, photo."
)

# (pattern, strength 0..1). Strong words name the kind of image; weak ones only hint at it
# ("screen" also appears in "a man in front of a screen").
_WORDS: dict[str, list[tuple[str, float]]] = {
    "chart": [
        (r"\b(bar|line|pie|donut|area|flow|org) ?(chart|graph)s?\b", 1.0),
        (r"\b(chart|graph|plot|histogram|scatter ?plot|box ?plot|heat ?map|diagram)s?\b", 0.9),
        (r"\b(infographic|spreadsheet|table of|data table|axis|axes|legend|x-axis|y-axis)\b", 0.8),
        (r"\b(statistics|data|percent(age)?s?|trend|dashboard|map of)\b", 0.3),
    ],
    "screenshot": [
        (r"\bscreen ?(shot|grab|capture)s?\b", 1.0),
        (
            r"\b(web ?(page|site)|website|home ?page|user interface|ui|login (page|screen|form))\b",
            0.9,
        ),
        (
            r"\b(terminal|command line|console|code editor|source code|text editor|browser|app)\b",
            0.8,
        ),
        (r"\b(window|menu|inbox|email|text messages?|chat|settings page|error message)\b", 0.5),
        (r"\b(screen|computer|monitor|phone|laptop|code|document|pdf)\b", 0.3),
    ],
    "medical": [
        (r"\b(x[- ]?rays?|radiograph|ct scan|cat scan|mri|ultrasound|sonogram|mammogram)\b", 1.0),
        (r"\b(microscop\w*|histolog\w*|patholog\w*|biopsy|endoscop\w*|retina\w*|fundus)\b", 1.0),
        (
            r"\b(scan of the|brain scan|bone scan|tissue|cells?|nuclei|tumou?r|lesion|skin rash)\b",
            0.7,
        ),
        (r"\b(medical|hospital|anatomy|skull|chest|spine|pelvis|organ|bones?|teeth)\b", 0.4),
    ],
}
_PHOTO_WORDS = re.compile(
    r"\b(photo(graph)?|picture|standing|sitting|holding|wearing|walking|people|man|woman|"
    r"dog|cat|tree|street|car|room|table|field|sky)\b"
)
_COMPILED = {c: [(re.compile(p), s) for p, s in words] for c, words in _WORDS.items()}


def caption_signal(text: str) -> dict[str, float]:
    """Evidence -1..1 per category from one caption: positive names it, negative looks away.

    The strongest matching word counts; a caption that reads like a scene description ("a man
    sitting at a table") and names no category leans slightly against all three.
    """
    lowered = (text or "").lower()
    scene = bool(_PHOTO_WORDS.search(lowered))
    out: dict[str, float] = {}
    for category, patterns in _COMPILED.items():
        strength = max((s for pat, s in patterns if pat.search(lowered)), default=0.0)
        out[category] = strength if strength else (-0.3 if scene else 0.0)
    return out


# What an answer to RISK_QUESTION may call each kind of image (the label first, then words a
# chatty model uses instead of it).
_ANSWER_WORDS: dict[str, re.Pattern[str]] = {
    "chart": re.compile(r"\b(charts?|diagrams?|graphs?|plots?|infographics?)\b"),
    "screenshot": re.compile(r"\b(screen ?shots?|screen ?grabs?|screen captures?)\b"),
    "medical": re.compile(
        r"\b(medical|x[- ]?rays?|ct|mri|ultrasound|microscop\w*|endoscop\w*|radiograph\w*)\b"
    ),
    "photo": re.compile(r"\b(photos?|photographs?)\b"),
}
_ANSWER_LEAD = re.compile(r"^\W*(?:answer:\s*)?(?:(?:it|this)(?: is|'s)\s+)?(?:an?\s+)?(\w+)")


def model_answer_signal(text: str) -> dict[str, float]:
    """Evidence from a model's answer to ``RISK_QUESTION``: +1 for the category it names and
    -0.5 for the others ("photo": -0.5 for all three). The kind it leads with wins ("screenshot
    of a chart"); {} when it names none, several without leading with one, or reads back the
    options ("chart or screenshot")."""
    lowered = (text or "").strip().lower()
    if not lowered:
        return {}
    lead = _ANSWER_LEAD.match(lowered)
    named = [kind for kind, pattern in _ANSWER_WORDS.items() if pattern.search(lowered)]
    first = lead.group(1) if lead else ""
    leading = [kind for kind, pattern in _ANSWER_WORDS.items() if pattern.fullmatch(first)]
    if len(named) >= 3 or (len(named) == 2 and re.search(r"\bor\b", lowered)):
        return {}  # the options read back, or no choice made
    if leading:
        kind = leading[0]
    elif len(named) == 1:
        kind = named[0]
    else:
        return {}
    return {c: (1.0 if c == kind else -0.5) for c in CATEGORIES}


@dataclass(frozen=True)
class RiskFlags:
    """The decision: flagged categories, final scores and reasons (image + captions)."""

    flags: list[str]
    scores: dict[str, float]
    reasons: dict[str, str]


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def combine(
    report: RiskReport,
    captions: Iterable[str] = (),
    thresholds: Mapping[str, float] | None = None,
    answer: str | None = None,
) -> RiskFlags:
    """Combine the image report with any captions and apply per-category thresholds.

    Caption evidence is averaged over captions (one model saying "chart" among three that do
    not is weaker than all three agreeing) and added in log-odds, so a clear caption lifts a
    borderline image over the line but cannot flag an image that looks nothing like it.
    ``answer`` (a model's reply to ``RISK_QUESTION``) is one more log-odds term when it parses.
    """
    texts = [t for t in captions if t and t.strip()]
    signals = [caption_signal(t) for t in texts]
    said = model_answer_signal(answer or "")
    flags: list[str] = []
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for category in CATEGORIES:
        image_score = report.scores.get(category, 0.0)
        reason = report.reasons.get(category, "")
        score = image_score
        if signals or said:
            log_odds = _logit(image_score)
            if signals:
                mean = sum(s[category] for s in signals) / len(signals)
                log_odds += CAPTION_WEIGHT * mean
                if mean > 0.2:
                    quoted = next(t for t, s in zip(texts, signals, strict=True) if s[category] > 0)
                    reason = f"{reason}; caption says \u201c{quoted[:80]}\u201d"
            if said:
                log_odds += MODEL_ANSWER_WEIGHT * said[category]
                reason = (
                    f"{reason}; model answered \u201c{' '.join((answer or '').split())[:40]}\u201d"
                )
            score = 1 / (1 + math.exp(-log_odds))
        threshold = (thresholds or {}).get(category, DEFAULT_THRESHOLD)
        scores[category] = round(score, 3)
        reasons[category] = reason[:250]
        if score >= threshold:
            flags.append(category)
    return RiskFlags(flags=flags, scores=scores, reasons=reasons)
