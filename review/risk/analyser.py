"""Score an image for the three risk categories from its pixels alone (signal a).

Each category gets a log-odds sum of a few pieces of evidence that hold for the kind of image, not
for particular files: rendered graphics are made of flat regions that meet at abrupt steps (which
survive JPEG and downscaling better than exact flatness) while camera and scanner images vary
continuously; the ink of a screen is mostly lines of text, the ink of a plot mostly marks, with
axes that have tick labels outside their corner; radiology is grey and continuous, and sits on a
black or dark-grey surround, or is left-right symmetric across each row (not merely banded like
sky over land), or is soft at the scale of one pixel everywhere (X-ray scatter and a microscope's
optics blur everything; a photograph has focus, grain or specks somewhere); microscopy is stained
pink and purple, or its colours are a mix of two dyes on bright slide glass (optical densities on
one plane, fanning out between two dye directions) with cells textured everywhere off the glass.
Greyness alone is not enough for medical. The weights were set by reasoning about those
properties and checked on the development set and on half-size JPEG copies of it (see
``benchmarks/risk_eval.py``).

Since ``risk-2.0`` a learned combination (``learned.py``, coefficients in ``model.json``) starts
from these hand-set log-odds and adds small corrections learned from the measurements on the
broadened development set; the final log-odds are 35% learned, 65% hand-set. Reasons stay the
hand-set ones wherever both agree; where the model changed the decision they name the inputs
that moved it. ``risk-2.1``: plot axes need tick labels spaced out along them (a group box's corner
with the next box's title below it is not a plot), and a colour-mapped scan (hot, viridis, jet)
counts as a grey one where it keeps a scan's framing on black and its mirror symmetry.
``risk-2.2``: window structure tells an application window from a plot (bevelled one-pixel
widget borders, ``bevels``; a title bar, flat or a gradient, ``title_bar``); a second, binary
model orders chart against screenshot when both would be flagged; the learned inputs are
clipped to the range they took in training. A slice saved on transparency is measured over
black, the surround it lost (``features.cut_out``), and
one mirror-symmetric view among several side by side on black, with crosshairs, coordinates and
a colour bar, is a scan's anatomy too (``panel_symmetry``, ``scan_views``). A scanner's screen
(an ultrasound machine's, a viewer's) shows the scan as one grey continuous-tone fan or rounded
field on black among the machine's text and bars: that region (``features._scan_region``,
``scan_shown``) is judged as the subject, and the text, bars and flat fills around it count as
the screen's, not as a drawing's; the screenshot score is left as it is, the medical one wins.
``risk-2.3``: the same measurements; the learned combination is trained on every picture as
built and on its half-size JPEG copy (``learned.degraded_copy``), so a thumbnail of a window is
no longer read as a photo as often.
``risk-2.4``: a photograph shown on black, on a mount, letterboxed or on a viewer's dark
backdrop, is a picture in a frame when its lit part is an upright rectangle (``lit_box``), not
only when four straight lines box it; the model is retrained on a set that has such photographs
too (black surrounds had been scans' alone). Gradient-boosted trees were tried beside the
logistic regression and not kept (``benchmarks/risk_boosting.py``).
``risk-2.5``: views of a symmetric scan on black (``scan_views``) are enough to flag a figure
on their own, as a colour-mapped scan is, when a statistical map or an atlas in colour covers
the grey anatomy the other terms read.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import IO

from PIL import Image, ImageOps

from . import learned
from .features import Features, measure

ANALYSER_VERSION = "risk-2.5"
CATEGORIES = ("chart", "screenshot", "medical")


@dataclass(frozen=True)
class CategoryScore:
    score: float
    reason: str


@dataclass(frozen=True)
class RiskReport:
    """Scores 0..1 and a short reason per category, from image analysis alone."""

    scores: dict[str, float]
    reasons: dict[str, str]
    version: str = ANALYSER_VERSION
    features: dict[str, float | int | bool] = field(default_factory=dict)
    # the hand-set rules' own scores from pixels alone (no file metadata), with ``with_features``
    hand_scores: dict[str, float] = field(default_factory=dict)


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, linear between."""
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class _Evidence:
    """Collects weighted evidence and keeps the strongest pieces for the reason text."""

    def __init__(self, bias: float) -> None:
        self.z = bias
        self.parts: list[tuple[float, str]] = []

    def add(self, weight: float, amount: float, text: str) -> None:
        if amount <= 0:
            return
        self.z += weight * amount
        self.parts.append((weight * amount, text))

    def result(self, fallback: str) -> CategoryScore:
        score = round(_sigmoid(self.z), 3)
        pos = [t for v, t in sorted(self.parts, key=lambda p: -p[0]) if v > 0.4]
        neg = [t for v, t in sorted(self.parts, key=lambda p: p[0]) if v < -0.4]
        if score >= 0.5:
            text = "; ".join(pos[:3]) or fallback
        else:
            text = "; ".join(neg[:2]) or fallback
            if pos:
                text += f" (though {pos[0]})"
        return CategoryScore(score, text[:200])


def graphic_evidence(f: Features) -> float:
    """0..1: how much the image looks rendered (flat fills, crisp steps) rather than captured.

    Exact flatness is the strongest sign but JPEG destroys it, so near-flat regions that meet at
    abrupt steps count as well; camera images change a little everywhere, and where they are
    flat (blur, sky) they have no steps.
    """
    steps = _ramp(f.near_flat_frac, 0.3, 0.85) * _ramp(f.hard_step_share, 0.06, 0.25)
    return (
        0.2 * _ramp(f.lit_flat_frac, 0.3, 0.65)
        + 0.1 * _ramp(f.flat_frac, 0.5, 0.8)
        + 0.2 * (1.0 - _ramp(f.tone_smooth, 0.35, 0.75))
        + 0.15 * _ramp(f.crisp_ratio, 0.15, 0.35)
        + 0.25 * steps
        # most changes are abrupt steps: bands of a filled contour map, hatching, small print
        + 0.1 * _ramp(f.hard_step_share, 0.25, 0.45)
    )


def _grey_subject_on_black(f: Features) -> tuple[float, float, float, float]:
    """(grey, frame, unboxed, surround), each 0..1: how grey the lit pixels are, how dark the
    picture's edge is, whether that edge is free of a straight-edged box, and how much the
    picture is framed the way scanners frame one subject (see ``_medical``)."""
    grey = _ramp(f.lit_gray_frac, 0.5, 0.85)
    # a scanner's field of view holds one subject: brighter in the middle or mirror-symmetric
    # (a star field or a night sky on black has neither)
    subject = max(_ramp(f.centre_contrast, 0.05, 0.2), _ramp(f.symmetry, 0.4, 0.7))
    # black, or the dark grey that ultrasound machines and viewers put around the image
    frame = max(_ramp(f.dark_border, 0.2, 0.6), _ramp(f.dim_border, 0.4, 0.8))
    # a straight-edged rectangle on black is a picture in a frame or letterbox; bodies, skulls
    # and scan fields meet their surround along curves and fans, even where a screen's bars
    # and rulers beside them are straight (``scan_shown`` judges the grey region's own shape)
    unboxed = 0.0 if f.h_lines >= 2 and f.v_lines >= 2 else 1.0
    # the lines miss a letterbox (two straight edges, not four) and a photograph whose own edges
    # are soft or dark; the lit part's shape does not (``features._lit_box``: the scans of the
    # risk set reach at most 0.88, the widest rows of a head or a fan; a framed photo about 1)
    unboxed = min(unboxed, 1.0 - _ramp(f.lit_box, 0.9, 0.97))
    unboxed = max(unboxed, scan_shown(f))
    return grey, frame, unboxed, frame * (0.5 + 0.5 * subject) * unboxed


def scan_field(f: Features) -> float:
    """0..1: a mirror-symmetric grey subject on black with nothing written or ruled on it.

    That is how a scanner shows a body even when its fills are flat (a phantom, a segmentation
    map, a slice exported with few grey levels); a drawing or chart on black carries labels,
    axes or rules.
    """
    grey, _, _, surround = _grey_subject_on_black(f)
    # a colour map (hot, viridis, jet) changes the greys, not the framing or the symmetry
    grey = max(grey, colour_mapped(f))
    return grey * surround * _ramp(f.symmetry, 0.6, 0.85) * _bare(f)


def scan_views(f: Features) -> float:
    """0..1: a scan shown the way neuroimaging figures show one: views side by side on black
    (or one view), at least one mirror-symmetric across its rows (``panel_symmetry``), in
    continuous tones, with no plot axes and only a few labels.

    Unlike ``scan_field`` it allows what such figures draw over and beside the views, a
    crosshair through each, coordinate labels and a colour bar, and a colour overlay (a
    statistical map) on the grey anatomy; the symmetry it asks for is the anatomy's, which a
    plot's panels on a dark page lack or draw with flat fills and hard edges.
    """
    _, frame, unboxed, _ = _grey_subject_on_black(f)  # a photo in a black frame is boxed
    drawing = _ramp(f.near_flat_frac, 0.6, 0.9) * _ramp(f.hard_step_share, 0.15, 0.35)
    labelled = 1.0 - _ramp(f.text_tiles, 0.15, 0.3)
    views = frame * unboxed * _ramp(f.panel_symmetry, 0.6, 0.85) * (1.0 - drawing) * labelled
    return 0.0 if f.axes else views


SHOWN_WEIGHT = 3.0  # log-odds for a scan on a screen beyond what the grey-surround terms give
# log-odds for views of a symmetric scan on black beyond what the grey-surround terms give: as
# much as a colour-mapped scan gets (``mapped``), so that the views flag a figure by themselves
# when a colour overlay or map hides the grey anatomy (``risk-2.5``; 3.0 before, which left a
# figure that is nothing but such views at 0.43)
VIEWS_WEIGHT = 5.0


def scan_shown(f: Features) -> float:
    """0..1: a scan shown on a screen: a grey continuous-tone region on black (``scan_area``,
    see ``features._scan_region``) larger than an icon or an avatar, shaped like a fan or a
    rounded field rather than a rectangle, and holding most of the picture's continuous tones.

    An ultrasound machine, a scanner's console or a DICOM viewer puts text, bars and rulers
    around the scan, which makes the picture look like a screen; the scan in it still needs the
    medical review. A photograph or a video on a page or in a player is boxed: it fills its
    bounding box and runs along its sides (``scan_fill``, ``scan_sides``). A grey patch of a
    photograph (a spacesuit against the night sky) is a small part of its continuous tones
    (``scan_share``); on a scanner's screen everything else is text, bars and flat fills.
    """
    # a rectangle (even one with ragged edges on the coarse blocks) both fills its box and runs
    # along its sides; a disc or an oval fills about as much but touches the sides at a point,
    # and a fan does neither
    boxed = _ramp(f.scan_fill, 0.75, 0.9) * _ramp(f.scan_sides, 0.5, 0.7)
    main = _ramp(f.scan_share, 0.3, 0.6)
    return _ramp(f.scan_area, 0.01, 0.03) * (1.0 - boxed) * main


def _bare(f: Features) -> float:
    """1 when nothing is written or ruled on the picture: no text, no axes, no long lines."""
    bare = 1.0 - _ramp(f.text_tiles, 0.02, 0.08)
    return 0.0 if f.axes or f.h_lines + f.v_lines >= 2 else bare


def colour_mapped(f: Features) -> float:
    """0..1: a coloured picture whose content is mirror-symmetric across the rows, the way a
    body's cross-section is (``cross_symmetry`` ignores each row's mean, so sky over land does
    not count; ``panel_symmetry`` is its best value among views side by side on black): a scan
    shown through a colour map, which keeps the scan's continuous tones (a drawing is flat
    regions with hard edges). Framing on black is judged by the callers."""
    drawing = _ramp(f.near_flat_frac, 0.6, 0.9) * _ramp(f.hard_step_share, 0.15, 0.35)
    colour = 1.0 - _ramp(f.lit_gray_frac, 0.5, 0.85)
    return colour * _ramp(f.panel_symmetry, 0.7, 0.9) * (1.0 - drawing)


def _graphic_kind(f: Features) -> tuple[float, list[tuple[float, str]], list[tuple[float, str]]]:
    """Log-odds that a rendered graphic is a plot rather than a screen, with the reasons.

    The sharpest difference is how much of the ink is text: a screen is mostly lines of text,
    a plot is mostly marks, with text only in its labels.
    """
    # a small image has only a few tiles: its text shares are coarse, so they count for less
    sure = 0.5 + 0.5 * _ramp(f.text_tile_count, 4, 12)
    chart = [
        (2.0 * f.axes, "two straight axes meet at a corner"),
        (1.5 * _ramp(f.v_lines, 1, 8), f"{f.v_lines} vertical straight lines (bars, grid)"),
        (2.0 * _ramp(f.vivid_palette_share, 0.02, 0.12), "flat saturated series colours"),
        (0.7 * (not f.screen_size and not f.screen_aspect), "not a screen-sized image"),
        (1.0 * sure * (1.0 - _ramp(f.text_of_ink, 0.2, 0.5)), "marks rather than text"),
    ]
    screen = [
        (
            3.0 * sure * _ramp(f.text_of_ink, 0.35, 0.75),
            f"text in {f.text_of_ink:.0%} of inked tiles",
        ),
        (
            1.5 * sure * _ramp(f.text_tiles, 0.15, 0.4),
            f"lines of text in {f.text_tiles:.0%} of tiles",
        ),
        (1.5 * f.screen_size, f"screen resolution {f.width}x{f.height}"),
        (0.5 * (f.screen_aspect and not f.screen_size), "screen aspect ratio"),
        (1.5 * _ramp(f.height / f.width, 1.6, 1.9), "tall like a phone screen"),
        (1.5 * _ramp(f.h_lines - f.v_lines, 3, 12), "many horizontal rules and input boxes"),
        (1.0 * _ramp(f.full_width_lines, 1, 3), f"{f.full_width_lines} full-width bars"),
        (
            1.5 * (f.top_bar > 0 or f.title_bar > 0),
            "a title or navigation bar across the top",
        ),
        # etched and sunken edges of buttons, entries, frames: a plot's lines have no highlight
        (2.5 * _ramp(f.bevels, 0.1, 0.5), "bevelled 3-D widget borders"),
    ]
    z = 0.3 + sum(v for v, _ in chart) - sum(v for v, _ in screen)
    return z, chart, screen


def _graphic(f: Features, g: float, meta: dict[str, float]) -> tuple[CategoryScore, CategoryScore]:
    z_kind, chart_parts, screen_parts = _graphic_kind(f)
    # straight axes and long rules are rendered structure even where fills are not flat
    structure = 2.0 * f.axes + 1.0 * _ramp(f.v_lines + f.h_lines, 2, 8)
    structure += 2.0 * _ramp(f.text_tiles, 0.05, 0.2)  # lines of text are rendered too
    # ...but a ruler and labels overlaid on a continuous-tone picture do not make it a graphic
    structure *= 0.5 + 0.5 * _ramp(g, 0.15, 0.35)
    # a grey body on black without labels or rules is a scan even when its fills are flat
    structure -= 5.0 * max(scan_field(f), scan_views(f))
    p_graphic = _sigmoid(-3.5 + 8.0 * g + structure)
    results = []
    for name, sign, own in (("chart", 1.0, chart_parts), ("screenshot", -1.0, screen_parts)):
        share = _sigmoid(sign * z_kind + 3.0 * meta.get(name, 0.0))
        p = _sigmoid(-3.5 + 8.0 * g + structure + 3.0 * meta.get(name, 0.0))
        score = round(p * share, 3)
        why = [t for v, t in sorted(own, key=lambda x: -x[0]) if v >= 0.5][:2]
        if score >= 0.5:
            flat = max(f.lit_flat_frac, f.near_flat_frac)
            reason = "; ".join([f"rendered graphic ({flat:.0%} flat fills)", *why])
        elif p_graphic < 0.5:
            reason = "continuous tones like a photo or scan"
        elif share >= 0.5:
            reason = f"only partly looks rendered ({p:.0%})" + (f"; {why[0]}" if why else "")
        else:
            other = screen_parts if name == "chart" else chart_parts
            best = max(other, key=lambda x: x[0])
            reason = f"graphic, but looks like a {'screen' if name == 'chart' else 'plot'}" + (
                f": {best[1]}" if best[0] > 0.4 else ""
            )
        if meta.get(name):
            reason += "; file metadata names it"
        results.append(CategoryScore(score, reason[:200]))
    return results[0], results[1]


def _medical(f: Features, g: float, meta: dict[str, float]) -> CategoryScore:
    # Greyscale alone is not enough: black-and-white photographs, textures and astronomy are
    # grey too. A grey image needs a sign of how scanners frame their subject: a black
    # surround (air around the body, the field of view of CT, MR, ultrasound, NM) or the
    # left-right symmetry of anatomy, or the softness of transmission imaging. A smooth grey
    # image with pixel-scale detail and none of those scores about 0.43: not flagged by itself,
    # flagged when a caption names a modality.
    e = _Evidence(-3.3)
    # judged on the lit pixels: a black surround says nothing about colour; ultrasound and
    # doppler keep a little colour (LUT bars, flow) beside a grey subject
    grey, frame, unboxed, surround = _grey_subject_on_black(f)
    # a scan on a screen (an ultrasound machine's, a viewer's): the subject is the scan region,
    # grey by construction, and the colour, text and flat fills around it are the screen's
    shown = scan_shown(f)
    lit_grey, grey = grey, max(grey, shown)
    smooth = _ramp(f.tone_smooth, 0.35, 0.7)
    grey_text = f"greyscale ({f.lit_gray_frac:.0%} of lit pixels without colour)"
    e.add(1.8, grey, grey_text if grey == lit_grey else "a greyscale scan among coloured bars")
    e.add(1.2, grey * smooth, "continuous grey tones like radiology")
    # transmission images (X-ray scatter, a microscope's optics) are soft at the scale of one
    # pixel everywhere; a photograph has focus, grain or specks somewhere
    soft = 1.0 - _ramp(f.fine_detail, 0.001, 0.004)
    soft *= _ramp(f.mid_detail, 0.005, 0.02)  # with something to see: not a plain gradient
    e.add(1.0, grey * smooth * soft, "soft throughout, no pixel-scale detail")
    e.add(3.0, grey * surround, "subject on a black surround")
    # a colour map paints the air around a scan in its lowest colour, black only for some maps
    # (hot, bone); ``cool`` paints it cyan: one saturated colour all round frames it as well
    map_frame = _ramp(f.tinted_border, 0.8, 0.95) * unboxed  # not a picture in a coloured frame
    mapped = colour_mapped(f) * max(surround, map_frame) * _bare(f)
    e.add(5.0, mapped, "colour-mapped scan: a symmetric subject on a plain surround")
    e.add(-1.0, frame * (1.0 - unboxed), "a straight-edged picture in a black frame")
    e.add(1.0, grey * _ramp(f.dark_frac, 0.1, 0.3) * unboxed, "wide black background")
    e.add(1.0, grey * _ramp(f.centre_contrast, 0.1, 0.35) * unboxed, "bright centre, dark edges")
    # of the whole picture, or of one of several views side by side on black (a neuroimaging
    # figure: sagittal, coronal and axial views; only the last two are symmetric)
    e.add(2.5, grey * _ramp(f.panel_symmetry, 0.5, 0.8), "left-right symmetric anatomy")
    # dense texture over the whole frame, not inside a subject on black
    on_black = max(frame, _ramp(f.dark_frac, 0.1, 0.25))
    texture = _ramp(f.edge_frac, 0.06, 0.15) * (1.0 - on_black)
    e.add(-2.0, grey * texture, "dense texture like a photo")
    stain = _ramp(f.stain_frac, 0.25, 0.5) * smooth
    e.add(6.0, stain, "pink/purple stained tissue")
    # two dyes on bright glass (H&E, IHC brown and blue): colours on one optical-density plane
    dyes = (1.0 - _ramp(f.stain_residual, 0.0007, 0.0015)) * _ramp(f.glass_frac, 0.05, 0.12)
    dyes *= _ramp(f.dye_angle, 20.0, 28.0)  # two dyes, not one coloured material on white
    dyes *= _ramp(f.busy_share, 0.85, 0.95)  # cells everywhere off the glass; no sky, no walls
    dyes *= 1.0 - _ramp(f.lit_gray_frac, 0.5, 0.8)  # grey is trivially on any plane
    e.add(7.0, dyes, "colours of two stains on bright slide glass")
    warm_disc = _ramp(f.warm_frac, 0.3, 0.6) * _ramp(f.dark_border, 0.4, 0.7)
    warm_disc *= _ramp(f.centre_contrast, 0.15, 0.3)
    e.add(6.0, warm_disc, "red-orange disc on black (fundus, endoscopy)")
    colourful = 1.0 - _ramp(f.lit_gray_frac, 0.3, 0.6)
    views = scan_views(f)
    # a grey subject on black is counted above already: this adds what those terms miss, a
    # colour overlay and views side by side
    e.add(VIEWS_WEIGHT, max(0.0, views - grey * surround), "views of a symmetric scan on black")
    # what the grey-surround terms miss: a grey scan among a screen's coloured bars and text
    e.add(SHOWN_WEIGHT, max(0.0, shown - lit_grey * surround), "a scan's grey field on a screen")
    e.add(-2.5, max(0.0, colourful - stain - dyes - warm_disc - max(mapped, views, shown)),
          "natural colours")  # fmt: skip
    # text on a continuous-tone image on black is a scanner's overlay (ultrasound, MR labels);
    # text among hard-edged flat regions is a screen
    overlay = max(grey * frame * (1.0 - _ramp(f.hard_step_share, 0.1, 0.3)), shown)
    e.add(-5.0 * (1.0 - overlay), _ramp(f.text_tiles, 0.05, 0.25), "lines of text")
    crisp = _ramp(f.crisp_ratio, 0.2, 0.4)
    e.add(-3.0, _ramp(f.page_background, 0.3, 0.6) * crisp, "crisp marks on a white page")
    # flat fills mean a drawing, except in a scanner's field (a phantom, a segmentation map,
    # a scan exported with few grey levels)
    drawn = 1.0 - max(scan_field(f), views, shown, mapped)
    e.add(-3.0 * drawn, _ramp(f.mid_flat_frac, 0.45, 0.8), "flat rendered fills")
    steps = _ramp(f.near_flat_frac, 0.6, 0.9) * _ramp(f.hard_step_share, 0.15, 0.35)
    e.add(-3.0 * drawn, steps, "flat regions with hard edges, like a drawing")
    e.add(-2.0 * (1.0 - overlay), float(f.axes), "plot axes")
    e.add(-2.0 * (1.0 - max(mapped, shown)), _ramp(f.vivid_palette_share, 0.01, 0.05),
          "flat saturated colours")  # fmt: skip
    e.add(-2.0, _ramp(f.crisp_ratio, 0.35, 0.6) * (1 - _ramp(f.dark_frac, 0.3, 0.6)), "crisp edges")
    e.add(3.0, meta.get("medical", 0.0), "file metadata names a modality")
    return e.result("no medical imaging pattern found")


_CHART_SOFTWARE = ("matplotlib", "plotly", "bokeh", "ggplot", "excel", "gnuplot", "tableau",
                   "vega", "seaborn", "origin", "libreoffice calc")  # fmt: skip
_SCREEN_SOFTWARE = ("screenshot", "screen shot", "snipping", "greenshot", "sharex", "flameshot",
                    "spectacle", "lightshot", "snagit", "screencapture")  # fmt: skip
_MEDICAL_SOFTWARE = ("dicom", "osirix", "horos", "radiant", "weasis", "imagej", "fiji",
                     "qupath", "zeiss", "olympus", "leica", "nikon nis")  # fmt: skip


def metadata_hints(image: Image.Image) -> dict[str, float]:
    """Evidence from what the file says about itself: PNG text chunks and EXIF.

    A camera make/model is evidence against all three categories (a captured scene); a writer
    such as matplotlib or a screenshot tool is evidence for its category. Absent metadata says
    nothing: most images lose it on the way.
    """
    texts: list[str] = []
    for key, value in (getattr(image, "info", None) or {}).items():
        if isinstance(value, str) and key.lower() in {"software", "comment", "description",
                                                      "title", "source", "author"}:  # fmt: skip
            texts.append(value)
    camera = False
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF must not break the analysis
        exif = None
    if exif:
        camera = bool(exif.get(0x010F) or exif.get(0x0110))  # Make, Model
        for tag in (0x0131, 0x010E, 0x9286):  # Software, ImageDescription, UserComment
            value = exif.get(tag)
            if isinstance(value, bytes):
                value = value.decode("latin-1", "ignore")
            if isinstance(value, str):
                texts.append(value)
    blob = " ".join(texts).lower()
    hints = {
        "chart": float(any(w in blob for w in _CHART_SOFTWARE)),
        "screenshot": float(any(w in blob for w in _SCREEN_SOFTWARE)),
        "medical": float(any(w in blob for w in _MEDICAL_SOFTWARE)),
    }
    if camera:
        for k in hints:
            hints[k] -= 0.5 if not hints[k] else 0.0
    return hints


MAX_PIXELS = 80_000_000  # larger files are refused rather than decoded for a flag


def analyse_file(fp: str | os.PathLike[str] | IO[bytes]) -> RiskReport:
    """Open and analyse an image file. Raises Pillow's errors (and ValueError) on bad files."""
    with Image.open(fp) as img:
        if img.size[0] * img.size[1] > MAX_PIXELS:
            raise ValueError(f"image too large ({img.size[0]}x{img.size[1]})")
        img.draft("RGB", (1600, 1600))  # JPEG decodes at reduced size: several times faster
        # the picture as it is shown: a phone's sideways pixels turned upright, so that text
        # rows, a top bar and left-right symmetry are where the cues look for them
        try:
            upright = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - broken EXIF must not break the analysis
            upright = img
        return analyse(upright or img)


def _learned_parts(
    model: dict,
    f: Features,
    g: float,
    hand: dict[str, CategoryScore],
    meta: dict[str, float],
) -> dict[str, CategoryScore]:
    """Scores from the learned combination (``learned.py``), which reads the measurements and
    the hand-set scores from pixels alone (``hand``); the hand-set reason is kept wherever both
    agree."""
    values = learned.inputs(f, {c: p.score for c, p in hand.items()}, g, scan_field(f))
    scores = learned.category_scores(model, values, meta)
    out = {}
    for c in CATEGORIES:
        score = scores[c]
        reason = hand[c].reason
        if (score >= 0.5) != (hand[c].score >= 0.5):
            why = learned.reasons_for(model, values, c, against=score < 0.5)
            if score >= 0.5:
                reason = "; ".join(why) or f"learned combination ({score:.0%})"
            else:
                reason = "weighed against: " + ("; ".join(why[:2]) or "the learned combination")
        if meta.get(c):
            reason += "; file metadata names it"
        out[c] = CategoryScore(score, reason[:200])
    return out


def analyse(
    image: Image.Image, *, with_features: bool = False, use_model: bool = True
) -> RiskReport:
    """Score ``image`` for chart, screenshot and medical; never raises on odd but valid images.

    The scores come from the learned combination when one is shipped (``use_model``), else
    from the hand-set rules alone.
    """
    f = measure(image)
    if f is None:
        reason = f"too small to judge ({image.size[0]}x{image.size[1]})"
        return RiskReport(
            scores={c: 0.0 for c in CATEGORIES}, reasons={c: reason for c in CATEGORIES}
        )
    g = graphic_evidence(f)
    meta = metadata_hints(image)
    parts = _hand_parts(f, g, meta)
    plain = _hand_parts(f, g, {}) if any(meta.values()) else parts
    model = learned.shipped_model() if use_model else None
    if model is not None:
        parts = _learned_parts(model, f, g, plain, meta)
    return RiskReport(
        scores={c: p.score for c, p in parts.items()},
        reasons={c: p.reason for c, p in parts.items()},
        features=f.as_dict() if with_features else {},
        hand_scores={c: p.score for c, p in plain.items()} if with_features else {},
    )


def learned_inputs(report: RiskReport) -> dict[str, float]:
    """The learned model's inputs for a report made ``with_features`` (training, evaluation)."""
    f = Features(**report.features)
    return learned.inputs(f, report.hand_scores, graphic_evidence(f), scan_field(f))


def training_inputs(
    img: Image.Image, *, degraded: bool = True, as_built: dict[str, float] | None = None
) -> list[dict[str, float] | None]:
    """What the learned model trains on for one picture: its inputs as built and, with
    ``degraded``, those of its half-size JPEG copy (``learned.degraded_copy``). A picture too
    small to measure gives ``[None]``: nothing to learn from, not even an enlarged copy.
    ``as_built``: the picture's own inputs, when the caller has measured them already."""
    if as_built is None:
        report = analyse(img, with_features=True, use_model=False)
        if not report.features:
            return [None]
        as_built = learned_inputs(report)
    out: list[dict[str, float] | None] = [as_built]
    if degraded:
        report = analyse(learned.degraded_copy(img), with_features=True, use_model=False)
        out.append(learned_inputs(report) if report.features else None)
    return out


def _hand_parts(f: Features, g: float, meta: dict[str, float]) -> dict[str, CategoryScore]:
    chart, screenshot = _graphic(f, g, meta)
    return {"chart": chart, "screenshot": screenshot, "medical": _medical(f, g, meta)}
