"""Measurements the risk analyser scores from: pure Pillow + NumPy, no Django.

Everything is measured on downscaled copies: a *detail* copy (longest side at most
``DETAIL_SIDE``) for edges, straight lines and text-like strokes, and a *small* copy (longest side
at most ``SMALL_SIDE``) for colour statistics. Box reduction keeps flat regions exactly flat, which
is what separates rendered graphics (screens, plots) from camera and scanner images; near-flat
measures (within a few levels) stand in where JPEG has disturbed exact flatness. Text is judged
near its rendered size, on a grid of tiles over the whole picture.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

DETAIL_SIDE = 640
SMALL_SIDE = 200
MIN_SIDE = 8  # below this nothing meaningful can be measured

EDGE_STEP = 40  # luma jump that counts as a strong edge (0..255)
LINE_STEP = 24  # luma jump across a straight line or border
FLAT_TOL = 1  # luma difference that still counts as "the same" along a line
LINE_TOL = 4  # the same along a long border, where JPEG ringing is expected
AXIS_TOL = 8  # along a plot axis, where downscaling blurs it and JPEG rings beside it
AXIS_STEP = 16  # across it: a light-grey spine halved to a two-pixel smear keeps about this much
AXIS_PAGE = 0.5  # near-flat share of a picture flat enough to look for blurred axes on
NEAR_TOL = 4  # luma difference that still counts as flat after JPEG compression


@dataclass(frozen=True)
class Features:
    width: int
    height: int
    gray_frac: float  # pixels with (almost) no colour
    mean_chroma: float
    vivid_frac: float  # strongly coloured pixels
    palette_share: float  # pixels whose exact colour covers >= 0.5% of the image
    palette_colours: int  # how many such colours
    top_colour_share: float
    vivid_palette_share: float  # palette pixels that are also strongly coloured
    flat_frac: float  # pixels exactly equal to their right and lower neighbours
    edge_frac: float  # strong luma edges per pixel
    crisp_frac: float  # strong edges beside a flat run: rendered text, lines, borders
    crisp_ratio: float  # crisp / strong edges
    text_rows: float  # rows dense with crisp strokes (text lines)
    h_lines: int  # long horizontal straight lines
    v_lines: int  # long vertical straight lines
    full_width_lines: int  # horizontal lines across (almost) the whole width
    axes: bool  # a long vertical and a long horizontal line meet at a lower-left corner
    dark_frac: float  # near-black pixels
    dark_border: float  # share of the outer frame that is near-black
    centre_contrast: float  # centre brightness minus border brightness (0..1)
    symmetry: float  # left-right mirror correlation of the content (0..1)
    cross_symmetry: float  # the same without each row's mean: structure that varies across rows
    panel_symmetry: float  # the best cross_symmetry of the panels side by side on black
    tone_smooth: float  # non-dark pixels that vary continuously (not flat, not crisp)
    lit_flat_frac: float  # flat pixels among the non-dark ones
    text_tiles: float  # share of full-resolution tiles whose ink is laid out like lines of text
    stain_frac: float  # pink/purple pixels of stained tissue
    warm_frac: float  # red/orange pixels (fundus, endoscopy)
    page_background: float  # share of a bright (>= 200) single background colour
    mid_flat_frac: float  # flat pixels among mid-tones (neither clipped black nor white)
    screen_size: bool  # exact or scaled size of a common screen
    screen_aspect: bool  # aspect ratio of a common screen (either orientation)
    near_flat_frac: float  # pixels within 2 levels of their neighbours (flat even after JPEG)
    hard_step_share: float  # of all the places where the colour changes, the abrupt steps
    text_of_ink: float  # text-like tiles among the tiles that carry any ink at all
    text_tile_count: int  # how many tiles were judged (few on a small image: shares are coarse)
    lit_gray_frac: float  # pixels without colour among the non-dark ones (the subject itself)
    dim_border: float  # share of the outer frame darker than 60 (dark grey viewer surrounds)
    stain_residual: float  # colour outside the best two-dye plane in optical density (0..1)
    dye_angle: float  # degrees between the two extreme colour directions on that plane
    glass_frac: float  # bright colourless pixels: empty slide glass in transmitted light
    busy_share: float  # blocks off the glass that are textured throughout (cells, not sky)
    fine_detail: float  # detail-copy pixels >= 6 levels off their 3x3 mean (focus, grain, specks)
    mid_detail: float  # small-copy pixels >= 4 levels off their 9x9 mean (any structure at all)
    top_bar: float  # height share of a one-colour bar across the top that no margin repeats
    box_corners: float  # corners where short straight borders meet, per 100k detail pixels
    lut_spread: float  # colour spread among lit pixels of one brightness (~0 on a colour map)
    lit_chroma: float  # mean colourfulness of the lit pixels (0..1)
    scan_area: float  # share of the picture in the largest grey continuous-tone region on black
    scan_fill: float  # that region's share of its bounding box (a rectangle fills it)
    scan_sides: float  # how far it runs along its box's sides: the second-best side's share
    scan_share: float  # its share of all the picture's grey continuous-tone blocks
    tinted_border: float  # share of the outer frame in one saturated colour (a colour map's 0)
    lit_box: float  # how much the part off the surround is a rectangle: a picture in a frame
    bevels: float  # length of bevelled borders (a light line beside a dark one) per (w + h)
    title_bar: float  # height share of a window's title bar: even rows (a gradient allowed)

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of any Pillow image: first frame, alpha over white (over black for a
    cut-out subject, see ``cut_out``), 16-bit stretched."""
    with contextlib.suppress(AttributeError, EOFError, ValueError):
        image.seek(0)
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        arr = np.asarray(image, dtype=np.float32)
        lo, hi = np.percentile(arr, (0.5, 99.5)) if arr.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = float(arr.min()), float(arr.max()) + 1.0
        arr = np.clip((arr - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "CMYK":
        return image.convert("RGB")
    if mode in {"P", "PA"}:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in {"RGBA", "LA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        fill = (0, 0, 0, 255) if cut_out(rgba.getchannel("A")) else (255, 255, 255, 255)
        background = Image.new("RGBA", rgba.size, fill)
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:  # exotic modes (LAB, HSV...) Pillow cannot convert directly
        return ImageOps.grayscale(image.getchannel(0)).convert("RGB")


CUT_OUT_FRAME = 0.9  # share of the outer frame that must be fully transparent
CUT_OUT_FILL = 0.98  # share of each row's and column's span of opaque pixels that is opaque
CUT_OUT_BOX = 0.9  # at most this share of the opaque pixels' bounding box: not a rectangle


def cut_out(alpha: Image.Image) -> bool:
    """Whether an alpha channel holds one solid subject on a transparent surround.

    A scan slice saved with its air made transparent (a skull-stripped brain, a body outline)
    has lost its black surround, not gained a white one: composited over white it looks like a
    drawing on a page. Its opaque pixels form one solid, rounded piece: every row and every
    column crosses it in a single run, it does not fill its bounding box as a window or a photo
    placed on a transparent canvas does, and the frame is transparent. A chart saved with a
    transparent background is lines, bars and labels with transparency between them (a row
    crosses several bars, labels stand apart from a pie), so it stays over white, where its ink
    was drawn to be read. Judged on a copy of at most ``SMALL_SIDE`` pixels.
    """
    a = np.asarray(_reduce(alpha, SMALL_SIDE))
    if min(a.shape) < MIN_SIDE:
        return False
    h, w = a.shape
    bw = max(1, min(h, w) // 12)
    frame = np.concatenate([a[:bw].ravel(), a[-bw:].ravel(), a[:, :bw].ravel(), a[:, -bw:].ravel()])
    if np.count_nonzero(frame == 0) < CUT_OUT_FRAME * frame.size:
        return False
    opaque = a > 0
    rows, cols = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    if np.count_nonzero(opaque) < 0.1 * opaque.size:
        return False
    # a rectangle (a window with its shadow, a photo on a transparent margin) is a picture
    # placed on a canvas: bodies and skulls meet their surround along curves
    box = opaque[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if np.count_nonzero(box) > CUT_OUT_BOX * box.size:
        return False
    for m in (opaque, opaque.T):
        m = m[m.any(axis=1)]
        first = m.argmax(axis=1)
        last = m.shape[1] - 1 - m[:, ::-1].argmax(axis=1)
        if np.count_nonzero(m) < CUT_OUT_FILL * (last - first + 1).sum():
            return False
    return True


def _reduce(image: Image.Image, side: int) -> Image.Image:
    factor = math.ceil(max(image.size) / side)
    return image.reduce(factor) if factor > 1 else image


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, start and length of every run of True along the rows of ``mask``."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded.ravel())
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    rows = starts // (w + 2)
    return rows, starts - rows * (w + 2), ends - starts


def _line_mask(luma: np.ndarray, tol: int = LINE_TOL, step_min: int = LINE_STEP) -> np.ndarray:
    """Pixels on a horizontal border: a clear step down the column, nothing along the row.

    One side of the border is enough to be flat (a plot frame around a filled contour map has a
    flat page on one side only), within ``tol`` so that JPEG ringing does not cut it up.
    """
    step = np.abs(luma[1:, :] - luma[:-1, :]) >= step_min
    along_top = np.abs(luma[:-1, 1:] - luma[:-1, :-1]) <= tol
    along_bottom = np.abs(luma[1:, 1:] - luma[1:, :-1]) <= tol
    return step[:, :-1] & (along_top | along_bottom)


LINE_GAP = 4  # a line may be crossed by ticks and grid lines this wide and still count as one


def _close_gaps(mask: np.ndarray, gap: int) -> np.ndarray:
    """Fill breaks of up to ``gap`` pixels along the rows of ``mask``."""
    before = np.zeros_like(mask)
    after = np.zeros_like(mask)
    for k in range(1, gap + 1):
        before[:, k:] |= mask[:, :-k]
        after[:, :-k] |= mask[:, k:]
    return mask | (before & after)


def _long_lines(mask: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _at_least(_runs(mask), min_len)


def _at_least(
    runs: tuple[np.ndarray, np.ndarray, np.ndarray], min_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs (row, start, length) at least ``min_len`` long."""
    rows, starts, lengths = runs
    keep = lengths >= min_len
    return rows[keep], starts[keep], lengths[keep]


SCREENS = {
    (1920, 1080), (1366, 768), (1280, 800), (1440, 900), (1536, 864), (1280, 720), (1600, 900),
    (2560, 1440), (1680, 1050), (1920, 1200), (2560, 1600), (2880, 1800), (3840, 2160),
    (1280, 1024), (1024, 768), (3024, 1964), (3456, 2234), (2736, 1824), (2256, 1504),
    (1170, 2532), (1179, 2556), (1284, 2778), (1290, 2796), (1125, 2436), (1242, 2688),
    (828, 1792), (750, 1334), (1080, 1920), (1080, 2340), (1080, 2400), (1440, 3200),
    (1440, 3120), (720, 1600), (1080, 2280), (390, 844), (393, 852), (360, 800), (412, 915),
    (2048, 2732), (1668, 2388), (1620, 2160), (1536, 2048), (800, 1280),
}  # fmt: skip
# not 4:3 or 3:2: photos
SCREEN_ASPECTS = (16 / 9, 16 / 10, 18 / 9, 18.5 / 9, 19 / 9, 19.5 / 9, 20 / 9, 2.16)


def _screen_size(w: int, h: int) -> tuple[bool, bool]:
    exact = (w, h) in SCREENS or (h, w) in SCREENS
    # HiDPI captures are the CSS size times 2 or 3; browser windows lose a few px to chrome.
    for k in (2, 3):
        if (
            w % k == 0
            and h % k == 0
            and ((w // k, h // k) in SCREENS or (h // k, w // k) in SCREENS)
        ):
            exact = True
    ratio = max(w, h) / max(1, min(w, h))
    aspect = min(w, h) >= 360 and any(abs(ratio - a) / a < 0.01 for a in SCREEN_ASPECTS)
    return exact, aspect


def _lit_box(luma: np.ndarray, bw: int) -> float:
    """0..1: how much the part of the picture that stands off its surround (the outer ring's
    darker tenth, by more than 24 levels) is an upright rectangle: the share of its
    bounding box's rows that reach both of the box's sides, or of its columns that reach the top
    and the bottom, whichever is less. A photograph on a black mount, letterboxed, pillarboxed
    or on a viewer's backdrop is one (a dark patch at its edge aside); a head, a body, a round
    field of view or an ultrasound fan meets its surround along curves, and only its widest
    rows reach both sides. 0 without a surround on two opposite sides."""
    h, w = luma.shape
    ring = np.concatenate([luma[:bw].ravel(), luma[-bw:].ravel(), luma[:, :bw].ravel(),
                           luma[:, -bw:].ravel()])  # fmt: skip
    lit = np.abs(luma - int(np.percentile(ring, 10))) > 24  # bars may hold a tenth of the ring
    rows = np.flatnonzero(np.count_nonzero(lit, axis=1) >= max(2, 0.02 * w))
    cols = np.flatnonzero(np.count_nonzero(lit, axis=0) >= max(2, 0.02 * h))
    if rows.size < 4 or cols.size < 4:
        return 0.0
    y0, y1, x0, x1 = rows[0], rows[-1], cols[0], cols[-1]
    if not ((y0 >= 2 and h - 1 - y1 >= 2) or (x0 >= 2 and w - 1 - x1 >= 2)):
        return 0.0  # nothing around it on either pair of sides: not framed
    box = lit[y0 : y1 + 1, x0 : x1 + 1]
    tx, ty = max(1, round(0.03 * box.shape[1])), max(1, round(0.03 * box.shape[0]))
    rows_full = float((box[:, : tx + 1].any(axis=1) & box[:, -tx - 1 :].any(axis=1)).mean())
    cols_full = float((box[: ty + 1].any(axis=0) & box[-ty - 1 :].any(axis=0)).mean())
    return min(rows_full, cols_full)


def measure(image: Image.Image) -> Features | None:
    """Measure ``image``; ``None`` when it is too small to say anything."""
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        return None
    rgb_img = to_rgb(image)
    detail = _reduce(rgb_img, DETAIL_SIDE)
    small = _reduce(detail, SMALL_SIDE)

    # ---- colour, on the small copy
    s = np.asarray(small, dtype=np.int32)
    mx, mn = s.max(axis=2), s.min(axis=2)
    chroma = mx - mn
    n_small = chroma.size
    gray_frac = float(np.count_nonzero(chroma <= 6)) / n_small
    vivid = chroma >= 70
    codes = (s[..., 0].astype(np.int32) << 16) | (s[..., 1].astype(np.int32) << 8) | s[..., 2]
    values, counts = np.unique(codes.ravel(), return_counts=True)
    big = counts >= max(2, 0.005 * n_small)
    palette_share = float(counts[big].sum()) / n_small
    palette_values = values[big]
    vivid_values = np.isin(codes, palette_values) & vivid
    r, g, b = s[..., 0], s[..., 1], s[..., 2]
    luma_s = (r * 299 + g * 587 + b * 114) // 1000
    coloured = chroma >= 25
    # pink, magenta and purple: eosin and haematoxylin, rare as the bulk of a photo
    stain = coloured & (g + 15 < r) & (g + 15 < b) & (luma_s > 40)
    warm = coloured & (r > g + 40) & (r > b + 40)
    glass = (s.min(axis=2) >= 200) & (chroma < 30)
    stain_residual, dye_angle = _two_dyes(s, chroma)
    busy_share = _busy_share(luma_s, glass)

    # ---- structure, on the detail copy
    d = np.asarray(detail, dtype=np.int32)
    # 0..255: int16 halves the memory every mask below reads (differences still fit)
    luma = ((d[..., 0] * 299 + d[..., 1] * 587 + d[..., 2] * 114) // 1000).astype(np.int16)
    h, w = luma.shape
    n = h * w
    codes_d = (d[..., 0].astype(np.int32) << 16) | (d[..., 1].astype(np.int32) << 8) | d[..., 2]
    eq_x = codes_d[:, 1:] == codes_d[:, :-1]
    eq_y = codes_d[1:, :] == codes_d[:-1, :]
    flat = eq_x[:-1, :] & eq_y[:, :-1]
    flat_frac = float(np.count_nonzero(flat)) / max(1, flat.size)
    near_flat_frac, hard_step_share, near = _steps(luma)

    gx = np.abs(luma[:, 1:] - luma[:, :-1])
    strong_x = gx >= EDGE_STEP
    # a step with an unchanging pixel pair just before or just after it
    still = gx <= FLAT_TOL
    crisp_x = np.zeros_like(strong_x)
    crisp_x[:, 1:] |= strong_x[:, 1:] & still[:, :-1]
    crisp_x[:, :-1] |= strong_x[:, :-1] & still[:, 1:]
    gy = np.abs(luma[1:, :] - luma[:-1, :])
    strong_y = gy >= EDGE_STEP
    still_y = gy <= FLAT_TOL
    crisp_y = np.zeros_like(strong_y)
    crisp_y[1:, :] |= strong_y[1:, :] & still_y[:-1, :]
    crisp_y[:-1, :] |= strong_y[:-1, :] & still_y[1:, :]
    n_strong = int(np.count_nonzero(strong_x)) + int(np.count_nonzero(strong_y))
    n_crisp = int(np.count_nonzero(crisp_x)) + int(np.count_nonzero(crisp_y))
    edge_frac = n_strong / n
    crisp_frac = n_crisp / n
    crisp_ratio = n_crisp / n_strong if n_strong else 0.0
    row_crisp = np.count_nonzero(crisp_x, axis=1)
    text_rows = float(np.count_nonzero(row_crisp >= max(3, 0.03 * w))) / h

    hmask = _line_mask(luma)
    vmask = _line_mask(luma.T)
    # every straight border at least a box's side long (``_box_corners``); the long lines among them
    h_box, v_box = _long_lines(hmask, BOX_SIDE), _long_lines(vmask, BOX_SIDE)
    h_rows, h_starts, h_len = _at_least(h_box, max(12, int(0.25 * w)))
    v_cols, v_starts, v_len = _at_least(v_box, max(12, int(0.25 * h)))
    h_lines = len(np.unique(h_rows))
    v_lines = len(np.unique(v_cols))
    full_width_lines = len(np.unique(h_rows[h_len >= 0.9 * (w - 1)]))
    # downscaling blurs an axis and JPEG rings along it: look again with looser tolerances, but
    # only on a mostly flat picture (a plot's page), where such lines are not chance texture
    axes = _find_axes(luma, hmask, vmask)
    if not axes and near_flat_frac >= AXIS_PAGE:
        loose_h = _line_mask(luma, AXIS_TOL, AXIS_STEP)
        axes = _find_axes(luma, loose_h, _line_mask(luma.T, AXIS_TOL, AXIS_STEP))

    # ---- medical-looking tone, on the small copy
    dark = luma_s < 20
    dark_frac = float(np.count_nonzero(dark)) / n_small
    n_lit_s = n_small - int(np.count_nonzero(dark))
    lit_gray_frac = (
        float(np.count_nonzero((chroma <= 8) & ~dark)) / n_lit_s if n_lit_s else gray_frac
    )
    sh, sw = luma_s.shape
    bw = max(1, min(sh, sw) // 12)
    frame = np.concatenate(
        [dark[:bw].ravel(), dark[-bw:].ravel(), dark[:, :bw].ravel(), dark[:, -bw:].ravel()]
    )
    dark_border = float(frame.mean())
    dim = luma_s < 60
    dim_border = float(
        np.concatenate(
            [dim[:bw].ravel(), dim[-bw:].ravel(), dim[:, :bw].ravel(), dim[:, -bw:].ravel()]
        ).mean()
    )
    tinted_border = _tinted_border(s, bw)
    lit_box = _lit_box(luma_s, bw)
    border_luma = float(
        np.concatenate(
            [luma_s[:bw].ravel(), luma_s[-bw:].ravel(), luma_s[:, :bw].ravel(),
             luma_s[:, -bw:].ravel()]
        ).mean()
    )  # fmt: skip
    centre = luma_s[sh // 4 : sh - sh // 4, sw // 4 : sw - sw // 4]
    centre_contrast = (float(centre.mean()) - border_luma) / 255.0 if centre.size else 0.0
    symmetry, cross_symmetry = _symmetry(luma_s, dark)
    panel_symmetry = max(cross_symmetry, _panel_symmetry(luma_s, dark))
    lit = luma[:-1, :-1] >= 20
    varied = ~flat & ~(crisp_x[:-1, :] | crisp_y[:, :-1]) & lit
    n_lit = max(1, int(np.count_nonzero(lit)))
    tone_smooth = float(np.count_nonzero(varied)) / n_lit
    lit_flat_frac = float(np.count_nonzero(flat & lit)) / n_lit
    mid = lit & (luma[:-1, :-1] <= 235)
    mid_flat_frac = float(np.count_nonzero(flat & mid)) / max(1, int(np.count_nonzero(mid)))
    top = int(values[counts.argmax()])
    top_luma = (((top >> 16) & 255) * 299 + ((top >> 8) & 255) * 587 + (top & 255) * 114) // 1000
    page_background = float(counts.max()) / n_small if top_luma >= 200 else 0.0

    exact_screen, screen_aspect = _screen_size(width, height)
    text_grey = _text_grey(rgb_img)
    text_tiles, text_of_ink, text_tile_count = _text_tiles(text_grey)
    # continuous tones for the scan region: beyond JPEG's noise on a flat fill, not a crisp step
    tones = ~near & ~(crisp_x[:-1, :] | crisp_y[:, :-1]) & lit
    scan_area, scan_fill, scan_sides, scan_share = _scan_region(np.asarray(detail), luma, tones)
    return Features(
        width=width,
        height=height,
        gray_frac=gray_frac,
        mean_chroma=float(chroma.mean()),
        vivid_frac=float(np.count_nonzero(vivid)) / n_small,
        palette_share=palette_share,
        palette_colours=int(big.sum()),
        top_colour_share=float(counts.max()) / n_small,
        vivid_palette_share=float(np.count_nonzero(vivid_values)) / n_small,
        flat_frac=flat_frac,
        edge_frac=edge_frac,
        crisp_frac=crisp_frac,
        crisp_ratio=crisp_ratio,
        text_rows=text_rows,
        h_lines=h_lines,
        v_lines=v_lines,
        full_width_lines=full_width_lines,
        axes=axes,
        dark_frac=dark_frac,
        dark_border=dark_border,
        centre_contrast=centre_contrast,
        symmetry=symmetry,
        cross_symmetry=cross_symmetry,
        panel_symmetry=panel_symmetry,
        tone_smooth=tone_smooth,
        lit_flat_frac=lit_flat_frac,
        text_tiles=text_tiles,
        stain_frac=float(np.count_nonzero(stain)) / n_small,
        warm_frac=float(np.count_nonzero(warm)) / n_small,
        page_background=page_background,
        mid_flat_frac=mid_flat_frac,
        screen_size=exact_screen,
        screen_aspect=screen_aspect,
        near_flat_frac=near_flat_frac,
        hard_step_share=hard_step_share,
        text_of_ink=text_of_ink,
        text_tile_count=text_tile_count,
        lit_gray_frac=lit_gray_frac,
        dim_border=dim_border,
        stain_residual=stain_residual,
        dye_angle=dye_angle,
        glass_frac=float(np.count_nonzero(glass)) / n_small,
        busy_share=busy_share,
        fine_detail=_off_mean_share(detail, radius=1, levels=6),
        mid_detail=_off_mean_share(small, radius=4, levels=4),
        top_bar=_top_bar(s),
        box_corners=_box_corners(hmask.shape, h_box, v_box),
        lut_spread=_lut_spread(s, luma_s),
        lit_chroma=float(chroma[~dark].mean()) / 255.0 if n_lit_s else 0.0,
        scan_area=scan_area,
        scan_fill=scan_fill,
        scan_sides=scan_sides,
        scan_share=scan_share,
        tinted_border=tinted_border,
        lit_box=lit_box,
        bevels=_bevels(text_grey),
        title_bar=_title_bar(text_grey),
    )


_OD = -np.log((np.arange(256, dtype=np.float32) + 1.0) / 256.0)  # optical density per level


def _two_dyes(s: np.ndarray, chroma: np.ndarray) -> tuple[float, float]:
    """How well the colours read as two dyes on white glass: plane residual and dye angle.

    A stained slide seen in transmitted light obeys Beer-Lambert: each pixel's optical density
    (-log of transmitted light, per channel) is a non-negative mix of the densities of the dyes
    (haematoxylin and eosin, or haematoxylin and DAB brown), so every tissue pixel lies on one
    plane through the origin, where the white glass is; within that plane the pixels fan out
    between the two dye directions (Macenko's method). Scene colours from many materials and
    lights leave the plane; one coloured material on white (coins on paper, a cat on a sofa)
    stays on it but does not fan out. Returns the share of density energy off the best plane
    (``1.0`` when too little of the picture is visibly coloured), the angle in degrees between
    the extreme directions in the plane (2nd and 98th percentiles).
    """
    od = _OD[s.reshape(-1, 3)]
    total = od.sum(axis=1)
    # visibly coloured, neither glass nor black: a tinted grey picture has too few such pixels
    tissue = od[(total > 0.3) & (total < 4.5) & (chroma.ravel() >= 20)]
    if len(tissue) < max(50, 0.3 * len(od)):
        return 1.0, 0.0
    eig, vec = np.linalg.eigh(tissue.T @ tissue)  # ascending; plane through the origin
    if eig.sum() <= 0:
        return 1.0, 0.0
    main = tissue @ vec[:, 2]
    side = tissue @ vec[:, 1]
    angle = np.degrees(np.arctan2(side, main * np.sign(main.sum())))
    lo, hi = np.percentile(angle, (2, 98))
    return float(eig[0] / eig.sum()), float(hi - lo)


BLOCK = 8  # pixels of the small copy: a few cells of a slide at typical magnification


def _busy_share(luma: np.ndarray, glass: np.ndarray) -> float:
    """Share of the blocks off the glass whose brightness varies (std >= 10 levels).

    Tissue is cells everywhere, so every block of it has texture; a scene has smooth stretches
    (sky, walls, water, out-of-focus background) beside its textured parts.
    """
    h, w = (luma.shape[0] // BLOCK) * BLOCK, (luma.shape[1] // BLOCK) * BLOCK
    if not h or not w:
        return 0.0

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2)

    off_glass = blocks(glass).mean(axis=(2, 3)) < 0.5
    if not off_glass.any():
        return 0.0
    busy = blocks(luma.astype(np.float32)).std(axis=(2, 3)) >= 10
    return float(np.count_nonzero(busy & off_glass)) / int(np.count_nonzero(off_glass))


def _find_axes(luma: np.ndarray, hmask: np.ndarray, vmask: np.ndarray) -> bool:
    """Plot axes among the long lines of two border masks (see ``_axes``).

    Axes are crossed by ticks and grid lines: short breaks are bridged before looking for them.
    """
    h, w = luma.shape
    return _axes(
        luma,
        _long_lines(_close_gaps(hmask, LINE_GAP), max(12, int(0.25 * w))),
        _long_lines(_close_gaps(vmask, LINE_GAP), max(12, int(0.25 * h))),
    )


TICK_GAP = 0.05  # of the axis length: tick labels stand this far apart, a title's words do not
TICK_SPREAD = 0.3  # of the axis length: how far along it the labels must reach


def _ink_clusters(ink: np.ndarray, min_gap: int) -> tuple[int, int]:
    """Groups of ink along a 1-D profile, split where more than ``min_gap`` blank positions
    lie between them: (how many, span from the first ink to the last)."""
    pos = np.flatnonzero(ink)
    if not len(pos):
        return 0, 0
    return int(np.count_nonzero(np.diff(pos) > min_gap)) + 1, int(pos[-1] - pos[0] + 1)


def _tick_labels(strip: np.ndarray, axis: int, length: int) -> bool:
    """Ink beside an axis laid out like tick labels: two or more groups, well apart along the
    axis (``axis`` is the strip's dimension across it), reaching over a good part of it. The
    title of the next group box below a box's corner, or one label left of an entry, is one
    group; a plot's numbers are spaced out along the whole axis."""
    if not strip.size:
        return False
    off = np.abs(strip - np.median(strip)) > 40
    if np.count_nonzero(off) < 4:
        return False
    groups, span = _ink_clusters(off.any(axis=axis), max(3, int(TICK_GAP * length)))
    return groups >= 2 and span >= TICK_SPREAD * length


def _axes(luma: np.ndarray, h: tuple[np.ndarray, ...], v: tuple[np.ndarray, ...]) -> bool:
    """A vertical line whose lower end meets the left end of a horizontal line, with tick labels
    outside the corner: left of the vertical or below the horizontal line (``_tick_labels``).

    The corner of a box (a page in a viewer, a card, a panel, a group box) has a plain surround
    there, or one label, not labels spaced out along it.
    """
    h_rows, h_starts, h_len = h
    v_cols, v_starts, v_len = v
    if not len(h_rows) or not len(v_cols):
        return False
    v_bottom = v_starts + v_len
    near = (np.abs(v_bottom[:, None] - h_rows[None, :]) <= 3) & (
        np.abs(v_cols[:, None] - h_starts[None, :]) <= 3
    )
    height, width = luma.shape
    margin = max(4, min(height, width) // 12)
    for i, j in list(zip(*np.nonzero(near), strict=True))[:8]:
        x, y, top = int(v_cols[i]), int(h_rows[j]), int(v_starts[i])
        left = luma[top:y, max(0, x - margin) : max(0, x - 1)]
        below = luma[y + 3 : y + 3 + margin, int(h_starts[j]) : int(h_starts[j] + h_len[j])]
        if _tick_labels(left, 1, y - top) or _tick_labels(below, 0, int(h_len[j])):
            return True
    return False


def _top_bar(rgb: np.ndarray) -> float:
    """Height share (1.5-15%) of a one-colour bar across the top: a title, menu or navigation bar.

    Rows from the top count while 75% of each is within 8 levels of the first row's colour. A
    chart's figure background also fills the top rows, but it goes on down the side and bottom
    margins; a bar that the page below does not repeat is an application's or a site's.
    """
    height = rgb.shape[0]
    if height < 20:
        return 0.0
    ref = np.median(rgb[0], axis=0)
    if ref.min() >= 235:  # a white top margin is page, not a bar
        return 0.0
    near = np.abs(rgb - ref).max(axis=2) <= 8
    uniform = near.mean(axis=1) >= 0.75  # a bar carries a title or a few menu words
    rows = int(np.argmin(uniform)) if not uniform.all() else height
    if rows < 3 or not 0.015 * height <= rows <= 0.15 * height:
        return 0.0
    margins = np.concatenate([near[rows:, 0], near[rows:, -1], near[-1]])
    if margins.mean() > 0.5 or near[rows:].mean() > 0.5:
        return 0.0
    return rows / height


BOX_SIDE = 10  # detail-copy pixels: the shortest border of a button, an entry or a panel


def _box_corners(
    shape: tuple[int, int],
    h_runs: tuple[np.ndarray, ...],
    v_runs: tuple[np.ndarray, ...],
) -> float:
    """Corners where a horizontal and a vertical straight border end together, per 100k pixels.

    Windows are built of boxes (buttons, entries, panels, tabs, scroll bars, title bars), each
    with four such corners; a plot has its frame and a legend box, a photo almost none.
    ``h_runs`` and ``v_runs`` are the borders at least ``BOX_SIDE`` long of the horizontal border
    mask (``shape``) and of the transposed picture's.
    """
    h, w = shape
    rows, starts, lengths = h_runs
    cols, vstarts, vlengths = v_runs
    if not len(rows) or not len(cols):
        return 0.0
    hy = np.concatenate([rows, rows])
    hx = np.concatenate([starts, starts + lengths - 1])
    # the corner may be a pixel or two off where a border is two pixels wide
    shift = np.arange(-2, 3)
    near = ((hy[:, None, None] + shift[None, :, None]) * (w + 8)
            + hx[:, None, None] + shift[None, None, :]).ravel()  # fmt: skip
    vy = np.concatenate([vstarts, vstarts + vlengths - 1])
    vx = np.concatenate([cols, cols])
    hits = int(np.count_nonzero(np.isin(vy * (w + 8) + vx, near)))
    return hits * 1e5 / max(1, h * w)


def _lut_spread(rgb: np.ndarray, luma: np.ndarray) -> float:
    """Mean colour spread among lit pixels of one brightness: the standard deviation (levels) of
    red minus green and of blue minus green within each 8-level band of brightness.

    A colour-mapped scan (a heat or rainbow map of one value per pixel) gives each brightness
    one colour, or a few; a photograph shows many colours at every brightness. Grey is 0 too.
    """
    lit = luma >= 20
    if np.count_nonzero(lit) < 50:
        return 0.0
    bins = (luma[lit] // 8).astype(np.int64)
    counts = np.bincount(bins, minlength=32).astype(np.float64)
    spread = np.zeros(32)
    g = rgb[..., 1][lit].astype(np.float64)
    for c in (0, 2):  # colour differences: brightness varying within a bin is not colour
        v = rgb[..., c][lit].astype(np.float64) - g
        mean = np.bincount(bins, weights=v, minlength=32) / np.maximum(counts, 1)
        sq = np.bincount(bins, weights=v * v, minlength=32) / np.maximum(counts, 1)
        spread += np.sqrt(np.maximum(sq - mean * mean, 0.0))
    used = counts >= 10
    if not used.any():
        return 0.0
    return float((spread[used] / 2 * counts[used]).sum() / counts[used].sum())


def _off_mean_share(image: Image.Image, *, radius: int, levels: int) -> float:
    """Share of pixels at least ``levels`` away from the mean of their (2r+1)^2 neighbourhood.

    At radius 1 on the detail copy this is pixel-scale detail: a camera photograph has something
    in focus, film or sensor grain, or specks somewhere; a radiograph (X-ray scatter, a large
    detector) and a micrograph taken at the optics' resolution are soft throughout, and JPEG's
    own noise stays under 6 levels. At radius 4 on the small copy it says whether there is any
    structure at all (a plain gradient has none).
    """
    grey = image.convert("L")
    if min(grey.size) < 2 * radius + 1:
        return 0.0
    off = ImageChops.difference(grey, grey.filter(ImageFilter.BoxBlur(radius))).histogram()
    return sum(off[levels:]) / max(1, grey.width * grey.height)


def _symmetry(luma: np.ndarray, dark: np.ndarray) -> tuple[float, float]:
    """Correlation of the lit content with its mirror image, centred on the content: of the
    whole content (a fan or a body outline on black), and without each row's mean.

    Horizontal bands (sky over land, a horizon, a sunset) mirror onto themselves; only what
    varies across each row, the same way on both sides, is the bilateral symmetry of anatomy.
    """
    cols = np.flatnonzero((~dark).any(axis=0))
    rows = np.flatnonzero((~dark).any(axis=1))
    if len(cols) < 8 or len(rows) < 8:
        return 0.0, 0.0
    box = luma[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    out = []
    for a in (box - box.mean(), box - box.mean(axis=1, keepdims=True)):
        m = a[:, ::-1]
        denom = float(np.sqrt((a * a).sum() * (m * m).sum()))
        out.append(max(0.0, float((a * m).sum()) / denom) if denom else 0.0)
    return out[0], out[1]


PANEL_GAP = 0.85  # share of a column that is near-black for it to separate panels
PANEL_WIDTH = 0.1  # of the picture's width: narrower pieces are labels and colour bars


def _panel_symmetry(luma: np.ndarray, dark: np.ndarray) -> float:
    """The best ``cross_symmetry`` among the panels of a figure: pieces of the picture side by
    side, separated by columns that are (almost) all near-black.

    Neuroimaging figures show several views of a scan in a row on black (sagittal, coronal,
    axial; or axial slices at several heights), often with crosshairs, coordinates and a colour
    bar; the whole figure is not symmetric, but a coronal or axial view is, the way a body's
    cross-section is. A crosshair or a label crosses the gap in a few rows only, so a column
    counts as a gap when ``PANEL_GAP`` of it is near-black.
    """
    h, w = luma.shape
    gap = np.count_nonzero(dark, axis=0) >= PANEL_GAP * h
    edges = np.diff(np.concatenate([[0], (~gap).astype(np.int8), [0]]))
    best = 0.0
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if b - a >= max(8, PANEL_WIDTH * w):
            best = max(best, _symmetry(luma[:, a:b], dark[:, a:b])[1])
    return best


TINT_CHROMA = 60  # channel spread of a saturated colour
TINT_LEVELS = 6  # channel difference that still counts as the same colour


def _tinted_border(rgb: np.ndarray, bw: int) -> float:
    """Share of the outer frame (``bw`` pixels of the small copy) within ``TINT_LEVELS`` of its
    median colour, where that colour is saturated (0 otherwise).

    A colour map paints the air around a scan in its lowest colour: black for some maps (hot,
    bone, gray), dark blue or purple for others (jet, viridis), cyan for ``cool``; a photograph's
    backdrop and a page are white, grey or a mix of colours.
    """
    frame = np.concatenate([rgb[:bw].reshape(-1, 3), rgb[-bw:].reshape(-1, 3),
                            rgb[:, :bw].reshape(-1, 3), rgb[:, -bw:].reshape(-1, 3)])  # fmt: skip
    colour = np.median(frame, axis=0)
    if colour.max() - colour.min() < TINT_CHROMA:
        return 0.0
    return float(np.count_nonzero(np.abs(frame - colour).max(axis=1) <= TINT_LEVELS)) / len(frame)


SCAN_BLOCK = 8  # detail-copy pixels per side of the blocks a scan region is made of
SCAN_TONE = 0.5  # share of a block's pixels that vary continuously for it to be scan content
SCAN_DIM = 30  # mean luma of a block of black surround (or of echoes fading into it)
SCAN_RING = 0.5  # share of the blocks around a region that are black surround
SCAN_GREY = 0.5  # share of a content block's lit pixels without colour
SCAN_GREY_LEVELS = 8  # channel spread that still counts as grey
SCAN_CANDIDATES = 3  # the largest regions looked at, largest first
SCAN_MIN_BLOCKS = 16  # a smaller region is too coarse to tell a fan from a box (4 x 4 blocks)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected regions of ``mask``: a label per cell (-1 off the mask) and each region's
    size. Runs along the rows are joined where they overlap a run of the row above."""
    h, w = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows_s, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    parent = list(range(len(starts)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first = np.searchsorted(rows_s, np.arange(h + 1))
    for y in range(1, h):
        i, i_end = int(first[y - 1]), int(first[y])
        for j in range(int(first[y]), int(first[y + 1])):
            while i < i_end and ends[i] <= starts[j]:
                i += 1
            k = i
            while k < i_end and starts[k] < ends[j]:
                a, b = root(j), root(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
            # the next run of this row may overlap the last run above that this one reached
            i = max(i, k - 1)
    labels = np.full(mask.shape, -1, dtype=np.int32)
    if not parent:
        return labels, np.zeros(0, dtype=np.int64)
    _, region = np.unique([root(j) for j in range(len(parent))], return_inverse=True)
    lengths = ends - starts
    for j in range(len(starts)):
        labels[rows_s[j], starts[j] : ends[j]] = region[j]
    return labels, np.bincount(region, weights=lengths).astype(np.int64)


def _scan_region(
    rgb: np.ndarray, luma: np.ndarray, tones: np.ndarray
) -> tuple[float, float, float, float]:
    """The largest region of grey continuous-tone content on black: its share of the picture,
    its share of its bounding box, and how far it runs along the box's sides.

    A scanner's screen shows the scan (an ultrasound fan, a CT or MR field) as one connected
    piece of continuously varying grey with black around it, and the machine's text, bars and
    rulers beside it; a screen's own content is text, boxes and flat fills, and a photograph or
    a video on a screen is in colour, or boxed by the page or the player around it.

    Judged on blocks of ``SCAN_BLOCK`` detail-copy pixels (``rgb``, ``luma``): a block is scan
    content when ``SCAN_TONE`` of its pixels vary continuously (``tones``: lit, changing by
    more than JPEG's noise, not a crisp step) and ``SCAN_GREY`` of its lit pixels have no
    colour (a colour-Doppler box or a colour bar inside the grey makes a hole, not a region);
    it is black surround when it is dim (mean luma under ``SCAN_DIM``: black, or echoes fading
    into it). Of the ``SCAN_CANDIDATES`` largest regions of content blocks, the largest counts
    whose surrounding blocks are at least ``SCAN_RING`` black and that holds at least
    ``SCAN_MIN_BLOCKS``; the picture's edge is not black,
    so a region the edge cuts off (the picture itself, a crop of one) does not count. The shape
    tells a fan or a rounded field from a rectangle of UI: a rectangle fills its box and runs
    along all four sides of it; a fan or a disc touches its box's sides only in places
    (``scan_sides`` is the second-best side's share: one side of a cut-off field is straight).
    """
    b = SCAN_BLOCK
    bh, bw = tones.shape[0] // b, tones.shape[1] // b
    if bh < 4 or bw < 4:
        return 0.0, 0.0, 0.0, 0.0

    def blocks(a: np.ndarray) -> np.ndarray:
        """Mean of each block, 0..255 (a mask counts 255 where true): Pillow's box reduction."""
        a = np.ascontiguousarray(a[: bh * b, : bw * b])
        img = Image.fromarray(a).convert("L") if a.dtype == bool else Image.fromarray(a, "L")
        return np.asarray(img.reduce(b), dtype=np.int32)

    r, g, bl = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    spread = np.maximum(np.maximum(r, g), bl) - np.minimum(np.minimum(r, g), bl)
    lit = luma >= 20
    grey = blocks(lit & (spread <= SCAN_GREY_LEVELS)) >= SCAN_GREY * blocks(lit)
    labels, sizes = _components((blocks(tones) >= SCAN_TONE * 255) & grey)
    # one block beyond the picture's edge on every side, which is not black
    black = np.pad(blocks(luma.astype(np.uint8)) < SCAN_DIM, 1)
    for k in np.argsort(-sizes)[:SCAN_CANDIDATES]:
        if sizes[k] < SCAN_MIN_BLOCKS:
            break
        region = np.pad(labels == k, 1)
        grown = region.copy()
        grown[1:] |= region[:-1]
        grown[:-1] |= region[1:]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        ring = grown & ~region
        if np.count_nonzero(black & ring) < SCAN_RING * np.count_nonzero(ring):
            continue
        ys, xs = np.nonzero(region)
        box = region[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        sides = sorted((box[0].mean(), box[-1].mean(), box[:, 0].mean(), box[:, -1].mean()))
        share = float(sizes[k]) / int(sizes.sum())
        return float(sizes[k]) / (bh * bw), float(box.mean()), float(sides[-2]), share
    return 0.0, 0.0, 0.0, 0.0


def _steps(luma: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Near-flat share and the share of colour changes that are abrupt steps (and the near-flat
    pixels themselves).

    Rendered graphics are flat regions separated by steps (a fill meets a line or a letter);
    camera and scanner images change by small amounts nearly everywhere, and where they are
    flat (blur, overexposure) they have no steps. Both survive JPEG compression, unlike exact
    equality.
    """
    dx = np.abs(np.diff(luma, axis=1))
    dy = np.abs(np.diff(luma, axis=0))
    if not dx.size or not dy.size:
        return 0.0, 0.0, np.ones((max(0, luma.shape[0] - 1), max(0, luma.shape[1] - 1)), bool)
    near = (dx[:-1, :] <= NEAR_TOL) & (dy[:, :-1] <= NEAR_TOL)
    changes = int(np.count_nonzero(dx > NEAR_TOL)) + int(np.count_nonzero(dy > NEAR_TOL))
    hard = int(np.count_nonzero(dx >= EDGE_STEP)) + int(np.count_nonzero(dy >= EDGE_STEP))
    return float(near.mean()), hard / changes if changes else 0.0, near


TILE = 96
TEXT_SIDE = 1600  # text is judged near its rendered size: HiDPI captures are halved first


def _text_grey(rgb: Image.Image) -> np.ndarray:
    """Grey levels (int16) near the rendered size: HiDPI captures and large pictures are
    reduced until the longest side is at most ``TEXT_SIDE``."""
    factor = math.ceil(max(rgb.size) / TEXT_SIDE)
    img = rgb.reduce(factor) if factor > 1 else rgb
    return np.asarray(img.convert("L"), dtype=np.int16)


def _text_tiles(gray: np.ndarray) -> tuple[float, float, int]:
    """Shares of full-resolution tiles whose ink is laid out like lines of text: of all tiles,
    and of the tiles that carry any ink; and the number of tiles.

    Text on a screen is dark (or light) strokes on one background colour, in horizontal bands
    separated by empty rows, each band cut into many short runs (letters). Photos have no single
    background; plot lines make one run per row; medical images have no crisp ink at all.
    Every tile of the grid is judged, so sparse text (a terminal, a phone chat) still counts.
    """
    h, w = gray.shape
    nx, ny = w // TILE, h // TILE
    if nx < 1 or ny < 1:
        return 0.0, 0.0, 0
    x0, y0 = (w - nx * TILE) // 2, (h - ny * TILE) // 2
    grid = gray[y0 : y0 + ny * TILE, x0 : x0 + nx * TILE]
    tiles = grid.reshape(ny, TILE, nx, TILE).transpose(0, 2, 1, 3).reshape(ny * nx, TILE, TILE)
    n = len(tiles)
    area = TILE * TILE
    # background: the most common grey level (in bins of 4) of each tile, from every 4th pixel
    sample = tiles[:, ::2, ::2].reshape(n, -1) >> 2
    codes = sample + (np.arange(n, dtype=np.int16) * 64)[:, None]
    hist = np.bincount(codes.ravel(), minlength=n * 64).reshape(n, 64)
    bg = (hist.argmax(axis=1) * 4 + 2).astype(np.int16)[:, None, None]
    diff = np.abs(tiles - bg)
    ink = diff >= 60
    ink_frac = np.count_nonzero(ink, axis=(1, 2)) / area
    inked = int(np.count_nonzero(ink_frac >= 0.01))
    # only tiles with one dominant background and some ink can hold text
    cand = np.flatnonzero((ink_frac >= 0.01) & (ink_frac <= 0.4))
    cand = cand[np.count_nonzero(diff[cand] <= 6, axis=(1, 2)) >= 0.45 * area]
    ink = ink[cand]
    ink_rows = ink.any(axis=2)
    bands = np.count_nonzero(ink_rows[:, 1:] & ~ink_rows[:, :-1], axis=1) + ink_rows[:, 0]
    starts = np.count_nonzero(ink[:, :, 1:] & ~ink[:, :, :-1], axis=(1, 2)) + np.count_nonzero(
        ink[:, :, 0], axis=1
    )
    runs = starts / np.maximum(1, np.count_nonzero(ink_rows, axis=1))
    n_text = int(np.count_nonzero((bands >= 2) & (runs >= 2.5)))
    return n_text / n, n_text / inked if inked else 0.0, n


BEVEL_STEP = EDGE_STEP  # between the light and the dark line: a strong step, not a JPEG halo
BEVEL_RISE = 8  # each line stands out from the surface on its other side by at least this
BEVEL_TOL = 2  # each line is even along its length (rendered, not a photo's edge)
BEVEL_LEN = 12  # pixels: the shortest bevelled border counted (a small button's side)


def _bevels(gray: np.ndarray) -> float:
    """Length of bevelled borders per (width + height): a light line directly beside a dark one.

    Toolkits draw the edges of buttons, entries, frames, group boxes, separators and scroll bars
    in 3-D: an etched or sunken line is a one-pixel line brighter than the surface on its one
    side right next to a one-pixel line darker than the surface on its other side. A plot's lines
    are dark (or coloured) on a page, with no highlight beside them; a photo's edges are not one
    pixel wide and even along their length. Measured near the rendered size (``_text_grey``),
    since reducing a picture averages the two lines into one.
    """
    h, w = gray.shape
    if h < 8 or w < 8:
        return 0.0
    dy = gray[1:, :] - gray[:-1, :]
    dx = gray[:, 1:] - gray[:, :-1]
    total = 0
    # rows y and y+1 (or columns): one a local maximum, the other a local minimum across them
    for across, along in ((dy, dx), (dx.T, dy.T)):
        mid, before, after = across[1:-1], across[:-2], across[2:]
        pair = ((mid <= -BEVEL_STEP) & (before >= BEVEL_RISE) & (after >= BEVEL_RISE)) | (
            (mid >= BEVEL_STEP) & (before <= -BEVEL_RISE) & (after <= -BEVEL_RISE)
        )
        even = np.abs(along) <= BEVEL_TOL  # along the lines: rows of ``along`` follow ``across``
        pair = pair[:, :-1] & even[1:-2] & even[2:-1]
        _, _, lengths = _runs(pair)
        total += int(lengths[lengths >= BEVEL_LEN].sum())
    return total / (h + w)


TITLE_FRAME = 4  # rows of window frame (outline, highlight) that may lie above a title bar
TITLE_ROWS = 10  # rows near the rendered size: the lowest title bar (small fonts, tool windows)
TITLE_EVEN = 0.5  # share of a row within ``NEAR_TOL * 2`` of its median: the rest is title, buttons
TITLE_SMOOTH = 8  # grey levels a bar may change by from one row to the next (gradients)
TITLE_DRIFT = 40  # ...and over its whole height
TITLE_MAX = 64  # rows: the tallest title bar near the rendered size (HiDPI captures are reduced)


def _title_bar(gray: np.ndarray) -> float:
    """Height share (at most 20%, ``TITLE_MAX`` rows) of a title bar across the top of a window.

    A bar is a stack of full-width rows, each mostly one grey level (the title and the window
    buttons take the rest), changing smoothly from row to row (title bars are often gradients)
    and ending at a clear step (``LINE_STEP``) to the window below within three rows; up to
    ``TITLE_FRAME`` rows of frame may lie above it. A plot's figure background also fills the
    top rows, but it goes on down the side margins and along the bottom: a bar whose level the
    picture's sides (a twentieth of the width in, past any frame) and bottom do not keep is a
    window's. Measured near the rendered size (``_text_grey``), where the frame's lines are not
    blurred into the bar.
    """
    h, w = gray.shape
    if h < 40 or w < 40:
        return 0.0
    top = gray[: min(h // 5, TITLE_MAX) + TITLE_FRAME + 4]
    med = np.median(top, axis=1)
    even = (np.abs(top - med[:, None]) <= 2 * NEAR_TOL).mean(axis=1) >= TITLE_EVEN
    n = len(med)
    for y0 in range(TITLE_FRAME + 1):
        if not even[y0]:
            continue
        y = y0
        while (
            y + 1 < n
            and even[y + 1]
            and abs(med[y + 1] - med[y]) <= TITLE_SMOOTH
            and abs(med[y + 1] - med[y0]) <= TITLE_DRIFT
        ):
            y += 1
        rows = y - y0 + 1
        if rows < TITLE_ROWS or y + 4 > n or np.abs(med[y + 1 : y + 4] - med[y]).max() < LINE_STEP:
            continue
        level = med[y0 : y + 1].mean()
        inset = max(TITLE_FRAME + 1, w // 20)
        below = gray[y + 4 :]
        sides = np.concatenate([below[:, inset], below[:, w - 1 - inset], below[-1 - TITLE_FRAME]])
        if np.count_nonzero(np.abs(sides - level) <= 2 * NEAR_TOL) <= 0.5 * len(sides):
            return rows / h
    return 0.0
