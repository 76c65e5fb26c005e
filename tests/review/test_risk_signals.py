"""The risk analyser's window-structure and colour-map signals, its learned combination, and the
leave-one-source-out evaluation that measures it (issue 15)."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from review.risk import analyse, analyser, combine, learned
from review.risk.analyser import scan_shown as scan_shown_score
from review.risk.analyser import scan_views as scan_views_score
from review.risk.features import cut_out, measure

from . import risk_samples

ROOT = Path(__file__).resolve().parents[2]


def desktop_window(dark: bool = False) -> Image.Image:
    """A toolkit window as Tk, GTK or Qt draw one: title bar, menu, toolbar buttons, a file list
    with a scroll bar, an entry and OK/Cancel buttons, each a box with a one-pixel border."""
    bg, fg, line = ((45, 45, 45), (225, 225, 225), (20, 20, 20)) if dark else (
        (236, 236, 236), (20, 20, 20), (150, 150, 150))  # fmt: skip
    img = Image.new("RGB", (640, 460), bg)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    d.rectangle([0, 0, 639, 24], fill=(60, 90, 150))
    d.text((10, 5), "Open File - Editor", fill=(255, 255, 255), font=font)
    for i, word in enumerate(["File", "Edit", "View", "Tools", "Help"]):
        d.text((10 + 52 * i, 30), word, fill=fg, font=font)
    for i in range(8):  # toolbar buttons
        d.rectangle([8 + 34 * i, 50, 36 + 34 * i, 76], outline=line, fill=bg)
        d.rectangle([15 + 34 * i, 57, 29 + 34 * i, 69], fill=(90, 120, 170))
    d.rectangle([8, 86, 600, 380], outline=line, fill=(255, 255, 255) if not dark else (30, 30, 30))
    for i, y in enumerate(range(92, 370, 18)):
        d.text((16, y), f"document_{i:02d}.txt", fill=fg, font=font)
        d.text((260, y), f"{(i * 37) % 900 + 12} kB", fill=fg, font=font)
        d.text((380, y), "2026-11-0" + str(i % 9 + 1), fill=fg, font=font)
    d.rectangle([602, 86, 630, 380], outline=line, fill=bg)  # scroll bar and its thumb
    d.rectangle([606, 100, 626, 170], outline=line, fill=(200, 200, 200))
    d.text((10, 396), "File name:", fill=fg, font=font)
    d.rectangle(
        [90, 390, 420, 414], outline=line, fill=(255, 255, 255) if not dark else (30, 30, 30)
    )
    for x, label in ((440, "Cancel"), (540, "Open")):
        d.rectangle([x, 388, x + 88, 416], outline=line, fill=bg)
        d.text((x + 24, 395), label, fill=fg, font=font)
    return img


def colour_mapped(grey: Image.Image, cmap: str) -> Image.Image:
    import matplotlib

    rgba = matplotlib.colormaps[cmap](np.asarray(grey.convert("L"), dtype=np.float32) / 255.0)
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8))


def foggy(img: Image.Image) -> Image.Image:
    """A photograph in fog: colour and contrast mostly gone, lifted towards a light grey."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    grey = arr.mean(axis=2, keepdims=True)
    return Image.fromarray(
        np.clip(0.55 * (0.3 * arr + 0.7 * grey) + 0.45 * 200, 0, 255).astype(np.uint8)
    )


# ---------------------------------------------------------------- window structure: box corners


def test_a_toolkit_window_is_built_of_boxes_whose_corners_the_analyser_counts():
    window = measure(desktop_window())
    photo = measure(risk_samples.photo())
    assert window.box_corners >= 40
    assert photo.box_corners < 2
    # a plot's grid meets its frame at corners too: the count tells windows from photos, and
    # leaves windows against charts to the other evidence (text rows, axes, series colours)
    assert measure(risk_samples.chart_png("line")).box_corners >= 20


def test_dark_themed_windows_have_their_boxes_too():
    assert measure(desktop_window(dark=True)).box_corners >= 40


# ------------------------------------------------------------- colour maps: one colour per level


def test_a_colour_mapped_scan_has_one_colour_per_brightness_and_a_photo_many():
    for cmap in ("hot", "jet", "viridis"):
        scan = measure(colour_mapped(risk_samples.phantom_like(), cmap))
        assert scan.lut_spread < 8, cmap
        assert scan.lit_chroma > 0.2, cmap
    photo = measure(risk_samples.photo())
    assert photo.lut_spread > 9.5  # an orange cat on a grey-green blanket
    assert measure(risk_samples.ct_slice()).lut_spread < 0.5  # grey: no colour at any level


# ------------------------------------------------------------------ the learned combination


def test_the_shipped_model_is_a_few_kilobytes_of_coefficients_for_the_current_inputs():
    raw = learned.MODEL_PATH.read_bytes()
    assert len(raw) < 16_000
    model = json.loads(raw)
    assert model["inputs"] == list(learned.INPUTS)
    assert model["classes"] == list(learned.CLASSES)
    assert len(model["coef"]) == 4 and all(len(r) == len(learned.INPUTS) for r in model["coef"])
    manifest = learned.MODEL_PATH.with_name("model_manifest.csv").read_text().splitlines()
    assert manifest[0] == "file,category,group,source,split"
    assert sum(model["trained_on"].values()) == len(manifest) - 1


def test_the_degraded_copy_is_a_half_size_jpeg_like_a_reposted_thumbnail():
    img = risk_samples.pdf_viewer_png()
    copy = learned.degraded_copy(img)
    assert copy.format == "JPEG" and copy.mode == "RGB"
    assert copy.size == (img.width // 2, img.height // 2)
    tiny = learned.degraded_copy(Image.new("L", (9, 5), 128))
    assert tiny.size == (8, 8)  # never below the analyser's 8 px


def test_training_inputs_are_the_picture_as_built_and_its_degraded_copy():
    from review.risk.analyser import learned_inputs, training_inputs

    img = risk_samples.pdf_viewer_png()
    as_built = learned_inputs(analyse(img, with_features=True, use_model=False))
    copy = learned_inputs(analyse(learned.degraded_copy(img), with_features=True, use_model=False))
    assert training_inputs(img) == [as_built, copy]
    assert training_inputs(img, as_built=as_built) == [as_built, copy]
    assert training_inputs(img, degraded=False) == [as_built]
    # too small to measure: no row, not even from the copy (which is enlarged to 8 px)
    assert training_inputs(Image.new("RGB", (6, 6))) == [None]


def test_the_model_is_trained_on_degraded_copies_so_screen_thumbnails_stay_screens():
    """Trained on pristine pixels alone (``risk-2.2``), the half-size JPEG copies of these three
    screens scored 0.79, 0.71 and 0.73 as screenshots; trained on both copies, 0.82 and up
    (``risk-2.3``). Since ``risk-2.4`` the training set has photographs on a viewer's dark
    backdrop, which is how a PDF viewer shows a page too: that one scores 0.79."""
    assert json.loads(learned.MODEL_PATH.read_bytes())["degraded_copies"] is True
    screens = {
        "dark web page": risk_samples.screenshot_png(dark=True),
        "PDF viewer": risk_samples.pdf_viewer_png(),
        "phone chat": risk_samples.phone_chat_png(),
    }
    for name, img in screens.items():
        report = analyse(learned.degraded_copy(img))
        assert combine(report).flags == ["screenshot"], (name, report.scores)
        assert report.scores["screenshot"] >= 0.75, (name, report.scores)


def test_a_desktop_window_is_a_screenshot_not_a_chart():
    for dark in (False, True):
        report = analyse(desktop_window(dark=dark))
        assert combine(report).flags == ["screenshot"], (dark, report.scores)


def test_a_foggy_photograph_is_not_flagged():
    report = analyse(foggy(risk_samples.photo()))
    assert combine(report).flags == [], report.scores


def test_learned_reasons_are_words_not_feature_names():
    report = analyse(colour_mapped(risk_samples.phantom_like(), "jet"))
    reason = report.reasons["medical"]
    assert reason and "_" not in reason
    without = analyse(colour_mapped(risk_samples.phantom_like(), "jet"), use_model=False)
    assert without.scores != report.scores  # the model, not only the hand-set rules, decided


def test_the_pairwise_model_tells_chart_from_screenshot_when_both_would_be_flagged():
    # both classes look alike to the hand-set rules; one measurement tells them apart, and the
    # big screenshot source does not outweigh the small one (each source weighs the same)
    rng = np.random.default_rng(1)
    rows, y, groups = [], [], []
    for group, category, n, lines in [("c1", "chart", 6, 0.0), ("s1", "screenshot", 60, 3.0),
                                      ("s2", "screenshot", 4, 3.0), ("p", "photo", 20, 0.0),
                                      ("m", "medical", 10, 0.0)]:  # fmt: skip
        for _ in range(n):
            v = dict.fromkeys(learned.INPUTS, 0.0)
            graphic = category in ("chart", "screenshot")
            v.update(hand_chart=2.0 if graphic else -3.0, hand_screenshot=2.5 if graphic else -3.0,
                     hand_medical=3.0 if category == "medical" else -3.0,
                     v_lines=lines + rng.random(), gray_frac=rng.random())  # fmt: skip
            rows.append(learned.vector(v))
            y.append(category)
            groups.append(group)
    model = learned.fit(np.vstack(rows), y, groups=groups)
    assert model["pair"]["classes"] == ["chart", "screenshot"]
    chart_like = dict.fromkeys(learned.INPUTS, 0.0) | {"hand_chart": 2.0, "hand_screenshot": 2.5}
    screen_like = chart_like | {"v_lines": 3.5}
    assert learned.pair_logit(model, chart_like) > 0 > learned.pair_logit(model, screen_like)
    chart = learned.category_scores(model, chart_like)
    screen = learned.category_scores(model, screen_like)
    assert chart["chart"] >= 0.5 > chart["screenshot"], chart
    alone = learned.category_scores(model | {"pair": None}, chart_like)
    assert alone["screenshot"] >= 0.5 > alone["chart"]  # the multinomial model alone: a screen
    assert screen["screenshot"] >= 0.5 > screen["chart"], screen
    why = learned.reasons_for(model, screen_like, "screenshot")
    assert "vertical straight lines (rather than a plot)" in why, why
    assert learned.fit(np.vstack(rows[:66]), y[:66])["pair"] is not None
    assert learned.fit(np.vstack(rows[6:]), y[6:])["pair"] is None  # no chart: no pairwise model


def test_learned_inputs_are_clipped_to_the_range_they_took_in_training():
    # a linear model extrapolates without limit: far outside its training range one input
    # would decide alone (a plain gradient's mid_detail sits 130 sd below every picture)
    rng = np.random.default_rng(2)
    rows, y = [], []
    for category in learned.CLASSES:
        for _ in range(15):
            v = dict.fromkeys(learned.INPUTS, 0.0)
            v.update(
                hand_medical=1.0 if category == "medical" else -1.0,
                mid_detail=(0.2 if category == "medical" else 0.8) + 0.1 * rng.random(),
            )
            rows.append(learned.vector(v))
            y.append(category)
    model = learned.fit(np.vstack(rows), y)
    assert 0.2 <= model["lo"][learned.INPUTS.index("mid_detail")] < 0.3
    row = dict.fromkeys(learned.INPUTS, 0.0) | {"hand_medical": -1.0}
    at_edge = learned.category_scores(model, row | {"mid_detail": model["lo"][
        learned.INPUTS.index("mid_detail")]})  # fmt: skip
    far_below = learned.category_scores(model, row | {"mid_detail": -50.0})
    assert far_below == at_edge
    # older model files have neither the range nor the cap on spreads
    unclipped = {k: v for k, v in model.items() if k not in ("lo", "hi", "z_max")}
    assert learned.category_scores(unclipped, row | {"mid_detail": -50.0})["medical"] > 0.99
    assert at_edge["medical"] < 0.99


# --------------------------------------------------------------- leave-one-source-out itself


def test_leave_one_source_out_never_trains_on_the_source_it_scores(monkeypatch):
    spec = importlib.util.spec_from_file_location("risk_eval", ROOT / "benchmarks" / "risk_eval.py")
    risk_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(risk_eval)
    rng = np.random.default_rng(0)
    rows = []
    for group, category in [("a", "chart"), ("b", "chart"), ("c", "screenshot"),
                            ("d", "screenshot"), ("e", "medical"), ("f", "medical"),
                            ("g", "photo"), ("h", "photo")]:  # fmt: skip
        for _ in range(5):
            values = dict.fromkeys(learned.INPUTS, 0.0)
            values["hand_" + category if category != "photo" else "gray_frac"] = 3 + rng.random()
            rows.append({"group": group, "source": group, "category": category,
                         "inputs": values, "meta": {}, "hand": None})  # fmt: skip
    seen: list[set[str]] = []
    real_fit = learned.fit

    def recording_fit(x, y, **kw):
        seen.append({r["group"] for r in rows if any((learned.vector(r["inputs"]) == x).all(1))})
        return real_fit(x, y, **kw)

    monkeypatch.setattr(learned, "fit", recording_fit)
    scores = risk_eval.loso_scores([r | {"hand": type("R", (), {"scores": {}})()} for r in rows])
    assert len(seen) == 8  # one model per source
    for trained_on in seen:
        assert len(trained_on) == 7  # every source but one
    # one chart source still teaches the model what the other chart source is
    decided = [risk_eval.decided(s) for s in scores["learned"]]
    assert decided == [r["category"] for r in rows]

    # rows that carry their training copies (as built and degraded) train on both, still
    # never on the source scored
    sizes: list[int] = []
    monkeypatch.setattr(
        learned, "fit", lambda x, y, **kw: sizes.append(len(y)) or real_fit(x, y, **kw)
    )
    copies = [r | {"hand": type("R", (), {"scores": {}})(),
                   "train_inputs": [r["inputs"], r["inputs"] | {"mid_detail": 0.9}]}
              for r in rows]  # fmt: skip
    risk_eval.loso_scores(copies)
    assert sizes == [2 * 35] * 8


def test_no_input_counts_for_more_than_four_of_its_training_spreads():
    # mid_detail saturates at 1 on nearly every training picture: its spread is tiny, and a plain
    # gradient (0 there) would sit dozens of spreads out
    x = np.ones((100, 2))
    x[:2, 0] = 0.85
    x[:, 1] = np.linspace(0, 1, 100)
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = learned._standardised(np.array([[0.0, 0.5]]), mean, std, 4.0)
    assert z[0, 0] == -4.0 and abs(z[0, 1]) < 0.01
    assert learned._standardised(np.array([[0.0, 0.5]]), mean, std, None)[0, 0] < -30
    assert learned.shipped_model()["z_max"] == learned.Z_MAX == 4.0


# ------------------------------------------------------------------ capturing desktop windows


def test_an_xwd_screen_dump_decodes_to_the_right_colours():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from capture_desktop_windows import read_xwd
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    w, h = 3, 2
    name = b"root\x00"
    header = [100 + len(name), 7, 2, 24, w, h, 0, 0, 32, 0, 32, 32, w * 4, 4,
              0xFF0000, 0xFF00, 0xFF, 8, 0, 0, w, h, 0, 0, 0]  # fmt: skip
    pixels = bytes(
        v for (r, g, b) in [(255, 0, 0), (0, 255, 0), (0, 0, 255)] * h for v in (b, g, r, 0)
    )
    img = read_xwd(struct.pack(">25I", *header) + name + pixels)
    assert img.size == (3, 2)
    assert [img.getpixel((x, 1)) for x in range(3)] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.mark.skipif(
    not all(Path(p).exists() for p in ("/usr/bin/Xvfb", "/usr/bin/xwd", "/usr/bin/xterm")),
    reason="needs xvfb, x11-apps and xterm",
)
def test_a_real_xterm_under_xvfb_is_captured_as_a_window_and_flagged_as_a_screenshot(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import capture_desktop_windows as cap
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    prog = cap.Program("x11", "xterm", ("xterm", "-geometry", "90x30", "-hold", "-e", "ls",
                                        "-la", "/usr/bin"), "MIT")  # fmt: skip
    with cap.Display((1024, 768), "twm") as display:
        shot = cap.run_one(display, prog, (1024, 768))
    assert shot is not None and 400 < shot.width < 1024
    assert combine(analyse(shot)).flags == ["screenshot"]


# ------------------------------------------------- plot axes: tick labels, not a box's corner


def group_boxes() -> Image.Image:
    """A Qt-style dialog of four group boxes: each box's lower-left corner has the next box's
    title below it, which the axes test once took for tick labels."""
    img = Image.new("RGB", (480, 320), (239, 239, 239))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    for title, x in (("Exclusive Radio Buttons", 10), ("Non-Exclusive Checkboxes", 245)):
        for y in (12, 150):
            d.text((x + 2, y), title, fill=(20, 20, 20), font=font)
            d.rectangle(
                [x, y + 20, x + 225, y + 128], outline=(180, 180, 180), fill=(236, 236, 236)
            )
            for i in range(3):
                d.ellipse([x + 14, y + 36 + 28 * i, x + 26, y + 48 + 28 * i], outline=(90, 90, 90))
                d.text((x + 34, y + 34 + 28 * i), f"Radio button {i + 1}", fill=(20, 20, 20),
                       font=font)  # fmt: skip
    return img


def labelled_axes() -> Image.Image:
    """The same size of picture with two axes and their numbers spaced out along them."""
    img = Image.new("RGB", (480, 320), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    d.line([(60, 20), (60, 270)], fill=(0, 0, 0))
    d.line([(60, 270), (460, 270)], fill=(0, 0, 0))
    for i, x in enumerate(range(60, 461, 80)):
        d.text((x - 6, 280), str(20 * i), fill=(0, 0, 0), font=font)
    for i, y in enumerate(range(270, 19, -50)):
        d.text((25, y - 7), str(10 * i), fill=(0, 0, 0), font=font)
    d.line([(60, 250), (140, 200), (220, 220), (300, 120), (380, 140), (460, 60)],
           fill=(31, 119, 180), width=2)  # fmt: skip
    return img


def test_a_group_box_corner_is_not_plot_axes_but_labelled_axes_are():
    boxes = measure(group_boxes())
    assert boxes.h_lines >= 2 and boxes.v_lines >= 2  # the corners are there...
    assert not boxes.axes  # ...but one title below a corner is not a row of tick labels
    assert measure(labelled_axes()).axes
    assert combine(analyse(group_boxes())).flags == ["screenshot"]
    assert combine(analyse(labelled_axes())).flags == ["chart"]


# --------------------------------------------------- colour-mapped scans keep their symmetry


def test_a_colour_mapped_scan_on_black_is_medical_and_a_colour_mapped_landscape_is_not():
    for cmap in ("hot", "viridis", "jet", "inferno"):
        scan = analyse(colour_mapped(risk_samples.xray_like(), cmap))
        assert combine(scan).flags == ["medical"], (cmap, scan.scores)
        assert "colour-mapped scan" in scan.reasons["medical"] or scan.scores["medical"] >= 0.9
    for cmap in ("hot", "jet"):  # no black surround, no mirror symmetry across the rows
        assert combine(analyse(colour_mapped(risk_samples.grey_landscape(), cmap))).flags == []


# ----------------------------------------------- a slice on transparency keeps its dark surround


def _on_transparency(grey: Image.Image) -> Image.Image:
    """A slice saved with its air made transparent: the black surround becomes alpha 0."""
    arr = np.asarray(grey.convert("L"))
    return Image.fromarray(np.dstack([arr, arr, arr, np.where(arr > 0, 255, 0)]).astype(np.uint8))


def _over_white(rgba: Image.Image) -> Image.Image:
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)


def test_a_slice_on_transparency_is_measured_on_its_dark_surround():
    cut = _on_transparency(risk_samples.phantom_like(300))
    assert cut_out(cut.getchannel("A"))
    f = measure(cut)
    assert f.dark_border > 0.9 and f.cross_symmetry > 0.8
    assert combine(analyse(cut)).flags == ["medical"], analyse(cut).scores
    # the same pixels flattened onto white (what the analyser saw before) read as a drawing
    assert analyse(_over_white(cut).convert("RGB")).scores["medical"] < 0.5


def test_charts_windows_and_pictures_on_transparency_stay_over_white():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for kind in ("bar", "pie"):
        fig, ax = plt.subplots(figsize=(6, 4))
        if kind == "bar":
            ax.bar(range(5), [3, 5, 2, 6, 4])
        else:  # labels stand apart from the pie: not one solid piece
            ax.pie([3, 2, 5, 1], labels=["alpha", "beta", "gamma", "delta"])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", transparent=True)
        plt.close(fig)
        chart = Image.open(io.BytesIO(buf.getvalue()))
        chart.load()
        chart.info = {}  # pixels only: no matplotlib metadata hint
        assert not cut_out(chart.getchannel("A")), kind
        assert combine(analyse(chart)).flags == ["chart"], (kind, analyse(chart).scores)
    # a window (or a photo) placed on a transparent canvas is a rectangle, not a rounded subject
    window = desktop_window().convert("RGBA")
    canvas = Image.new("RGBA", (window.width + 60, window.height + 60), (0, 0, 0, 0))
    canvas.paste(window, (30, 30))
    assert not cut_out(canvas.getchannel("A"))


# ------------------------------------------------ several views of a scan side by side on black


def scan_views() -> Image.Image:
    """A neuroimaging figure: three views of a scan in a row on black (a sheared, asymmetric
    side view and two mirror-symmetric ones), each with a crosshair, a coordinate label and a
    red blob of a statistical map, and a grey colour bar at the right."""
    img = Image.new("RGB", (900, 320), (0, 0, 0))
    body = risk_samples.xray_like().resize((240, 280))
    side = body.transform((240, 280), Image.AFFINE, (1, 0.4, -60, 0, 1, 0))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    views = ((side, "x=0"), (body, "y=-12"), (body.resize((200, 240)), "z=22"))
    for i, (view, label) in enumerate(views):
        x0 = 20 + 290 * i
        img.paste(view.convert("RGB"), (x0, 20))
        d.ellipse([x0 + 40, 80, x0 + 90, 130], fill=(230, 60, 30))
        d.line([(x0 + 135, 20), (x0 + 135, 300)], fill=(255, 255, 255))
        d.line([(x0, 150), (x0 + 240, 150)], fill=(255, 255, 255))
        d.text((x0 + 2, 302), label, fill=(255, 255, 255), font=font)
    for y in range(40, 280):
        v = int(255 * (280 - y) / 240)
        d.line([(880, y), (890, y)], fill=(v, v, v))
    return img


def test_one_symmetric_view_among_panels_on_black_counts_as_anatomy():
    f = measure(scan_views())
    assert f.panel_symmetry > 0.8 and f.cross_symmetry < 0.3  # the whole figure is not symmetric
    assert scan_views_score(f) > 0.5
    hand = analyse(scan_views(), use_model=False)
    assert hand.scores["medical"] >= 0.5 and hand.scores["chart"] < 0.5, hand.scores
    assert "symmetric" in hand.reasons["medical"]
    assert combine(analyse(scan_views())).flags == ["medical"]


def test_views_shown_through_a_colour_map_are_medical_by_themselves(monkeypatch):
    """The same figure with its anatomy shown through a colour map (plasma) instead of grey:
    nothing grey is left for the grey-surround terms, so the views must carry it (``risk-2.5``;
    at their earlier weight, 3.0, such a figure stayed unflagged)."""
    grey = np.asarray(scan_views())
    mapped = np.asarray(colour_mapped(scan_views(), "plasma"))
    # as neuroimaging figures draw it: the map on the anatomy, the surround left black
    figure = Image.fromarray(np.where(grey.mean(axis=2, keepdims=True) > 30, mapped, grey))
    f = measure(figure)
    assert f.lit_gray_frac < 0.3  # crosshairs, labels and the bar alone: no grey scan to read
    assert scan_views_score(f) > 0.5
    hand = analyse(figure, use_model=False)
    assert "views of a symmetric scan on black" in hand.reasons["medical"], hand.reasons
    assert combine(analyse(figure)).flags == ["medical"], analyse(figure).scores
    monkeypatch.setattr(analyser, "VIEWS_WEIGHT", 3.0)
    assert analyse(figure).scores["medical"] < 0.5


def test_symmetric_histograms_in_dark_panels_stay_a_chart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    with plt.style.context("dark_background"):
        fig, axes = plt.subplots(1, 3, figsize=(9, 3))
        for ax in axes:  # bell curves: each panel mirror-symmetric, but drawn, not scanned
            ax.hist(rng.normal(size=2000), bins=30)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
    chart = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    f = measure(chart)
    assert f.panel_symmetry > 0.6 and scan_views_score(f) < 0.1  # flat fills with hard edges
    assert combine(analyse(chart)).flags == ["chart"], analyse(chart).scores


def test_a_mirror_symmetric_colour_photo_in_a_black_frame_is_not_scan_views():
    """A photograph made symmetric (one half mirrored) and letterboxed on black: the framing of a
    picture in a frame, not of a scanner's field, so it is not views of a scan."""
    half = np.asarray(risk_samples.photo().convert("RGB"))
    half = half[:, : half.shape[1] // 2]
    picture = np.concatenate([half, half[:, ::-1]], axis=1)
    framed = np.zeros((picture.shape[0] + 160, picture.shape[1] + 160, 3), np.uint8)
    framed[80:-80, 80:-80] = picture
    f = measure(Image.fromarray(framed))
    assert f.panel_symmetry > 0.8
    assert scan_views_score(f) == 0.0
    assert combine(analyse(Image.fromarray(framed))).flags == []


# ---------------------------------------------------------- a scan shown on a scanner's screen


def scanner_screen(near_field: bool = False) -> Image.Image:
    """An ultrasound machine's screen: a blue title bar with the maker, the patient and the
    time, a column of settings, a fan of speckle on black and a grey scale beside it. With
    ``near_field`` the echoes fade out a little way into the fan (an anechoic field, fluid) and
    most of the screen is black with text, as on an obstetric scan."""
    w, h = 800, 600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(xx - w / 2, yy + 40)
    fan = (r > 110) & (r < 560) & (np.abs(np.arctan2(xx - w / 2, yy + 40)) < 0.55)
    rng = np.random.default_rng(5)
    grains = rng.rayleigh(0.3, (h // 3, w // 3)) * 255
    speckle = Image.fromarray(grains.clip(0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    floor, fade = (0.0, 100.0) if near_field else (0.5, 150.0)
    echo = (floor + (1 - floor) * np.exp(-(r - 110) / fade)) * (0.8 + 0.2 * np.sin(r / 15.0))
    grey = np.clip(1.5 * echo * np.asarray(speckle) / 255.0, 0, 1) * 230
    img = Image.fromarray(np.where(fan, grey, 0).astype(np.uint8), "L").convert("RGB")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=16)
    d.rectangle([0, 0, w, 58], fill=(40, 70, 110))
    for x, y, text in ((10, 8, "ACME"), (100, 8, "OB"), (580, 8, "MI 1.1     12/07/2026"),
                       (100, 32, "26-12-07-101530     ACME Healthcare"),
                       (580, 32, "TIB 0.2   10:15:30 AM")):  # fmt: skip
        d.text((x, y), text, fill=(255, 255, 255), font=font)
    settings = ["Gen OB", "C5-1", "28Hz", "11cm", "", "2D", "HGen", "Gn 60", "C 61", "3/3/4", "",
                "PW", "WF 50", "PRF 4k", "Gn 40"]  # fmt: skip
    for i, text in enumerate(settings):
        d.text((6, 70 + 19 * i), text, fill=(235, 235, 235), font=font)
    d.text((130, 90), "+ Dist  1.06 cm", fill=(235, 235, 235), font=font)
    d.text((6, 570), "Store  Freeze  Review  Report  Patient  End Exam", fill=(235, 235, 235),
           font=font)  # fmt: skip
    for y in range(90, 330):
        d.line([(782, y), (790, y)], fill=(int(255 * (330 - y) / 240),) * 3)
    for y in range(90, 560, 48):
        d.line([(776, y), (782, y)], fill=(200, 200, 200))
    return img


def test_a_scan_shown_on_a_scanners_screen_is_medical():
    for near_field in (False, True):
        screen = scanner_screen(near_field)
        for img in (screen, risk_samples.thumbnail(screen)):
            f = measure(img)
            # one grey fan on black, most of the picture's grey continuous tones
            assert f.scan_area > 0.03 and f.scan_share > 0.6, (near_field, f.scan_area)
            assert scan_shown_score(f) > 0.6
            hand = analyse(img, use_model=False)
            assert hand.scores["medical"] > max(hand.scores["chart"], hand.scores["screenshot"])
            assert combine(analyse(img)).flags == ["medical"], analyse(img).scores
    # the near field under the machine's bars and text: what made it read as a drawing or a
    # screen is the screen's, and the reason names the scan
    assert "scan" in analyse(scanner_screen(True), use_model=False).reasons["medical"]


def _page_showing(picture: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """A page or window on ``background`` with a column of text and a picture placed on it."""
    fg = (34, 34, 34) if sum(background) > 384 else (220, 220, 220)
    img = Image.new("RGB", (1280, 800), background)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    for i, y in enumerate(range(20, 780, 22)):
        d.text((20, y), f"Item {i}: captions accepted in review", fill=fg, font=font)
    img.paste(picture.convert("RGB").resize((480, 320)), (420, 160))
    return img


def _rounded(picture: Image.Image, radius: int) -> Image.Image:
    """A picture with rounded corners (a card, a video tile) on black."""
    picture = picture.convert("RGB").resize((480, 320))
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, 479, 319], radius=radius, fill=255)
    out = Image.new("RGB", picture.size, (0, 0, 0))
    out.paste(picture, (0, 0), mask)
    return out


def test_screens_showing_photos_and_dark_windows_do_not_show_a_scan():
    from skimage import data

    gravel = Image.fromarray(data.gravel())  # grey texture, like speckle, but boxed by the page
    screens = {
        "dark window": desktop_window(dark=True),
        "dark web page": risk_samples.screenshot_png(dark=True),
        "page with a photo": _page_showing(risk_samples.photo(), (255, 255, 255)),
        "dark page with a photo": _page_showing(risk_samples.photo(), (30, 30, 30)),
        "black page with grey texture": _page_showing(gravel, (0, 0, 0)),
        "black page with a rounded tile": _page_showing(_rounded(gravel, 30), (0, 0, 0)),
    }
    for name, screen in screens.items():
        for img in (screen, risk_samples.thumbnail(screen)):
            assert scan_shown_score(measure(img)) < 0.1, name
        assert combine(analyse(screen)).flags == ["screenshot"], (name, analyse(screen).scores)
    # a grey patch against the night sky is a small part of a colour photograph's tones
    astronaut = measure(Image.fromarray(data.astronaut()))
    assert astronaut.scan_share < 0.3 and scan_shown_score(astronaut) == 0.0


# ------------------------------------------------- a colour map's own colour round a scan


def test_a_scan_in_a_colour_maps_lowest_colour_is_framed_like_one_on_black():
    """``cool`` paints a scan's air cyan, not black: one saturated colour all round frames the
    subject as black does; a picture in a coloured frame and a flat drawing on one do not."""
    arr = np.asarray(risk_samples.xray_like()).copy()
    arr[arr < 40] = 0  # the air around the body
    scan = colour_mapped(Image.fromarray(arr), "cool")
    for img in (scan, risk_samples.thumbnail(scan)):
        f = measure(img)
        assert f.tinted_border > 0.95 and f.dark_border < 0.1
        assert combine(analyse(img)).flags == ["medical"], analyse(img).scores
        assert "colour-mapped scan" in analyse(img, use_model=False).reasons["medical"]
    # a mirror-symmetric photograph in a cyan frame: straight edges, a picture in a frame
    half = np.asarray(risk_samples.photo().convert("RGB"))
    half = half[:, : half.shape[1] // 2]
    picture = np.concatenate([half, half[:, ::-1]], axis=1)
    framed = np.zeros((picture.shape[0] + 160, picture.shape[1] + 160, 3), np.uint8)
    framed[:] = (0, 255, 255)
    framed[80:-80, 80:-80] = picture
    assert measure(Image.fromarray(framed)).tinted_border > 0.95
    assert analyse(Image.fromarray(framed)).scores["medical"] < 0.5
    # a symmetric face drawn in flat colours on cyan: a drawing
    face = Image.new("RGB", (400, 400), (0, 255, 255))
    d = ImageDraw.Draw(face)
    d.ellipse([80, 40, 320, 360], fill=(255, 0, 255))
    for x in (140, 210):
        d.ellipse([x, 120, x + 50, 200], fill=(120, 135, 255))
    d.rectangle([190, 220, 210, 330], fill=(60, 195, 255))
    for img in (face, risk_samples.thumbnail(face)):
        assert analyse(img).scores["medical"] < 0.5, analyse(img).scores


def _boxed(img: Image.Image, ratio: float, fill: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """``img`` centred on ``fill`` bars to the shape ``ratio`` (width to height)."""
    w, h = img.size
    canvas = Image.new("RGB", (max(w, int(h * ratio)), max(h, int(w / ratio))), fill)
    canvas.paste(img.convert("RGB"), ((canvas.width - w) // 2, (canvas.height - h) // 2))
    return canvas


def test_a_letterboxed_photo_or_one_on_a_viewer_backdrop_is_framed_not_a_scan(monkeypatch):
    """A greyscale photograph letterboxed to a screen's shape meets black along two straight
    edges, and the lines that find a frame need four; on a viewer's dark-grey backdrop its own
    edges may not read as lines at all. Its lit part is still an upright rectangle
    (``lit_box``), where a scan's has the shape of a head, a body, a round field or a fan.
    With ``lit_box`` held at 0 these two score medical 0.96 and 0.81."""
    from skimage import data

    pictures = {
        "coins, letterboxed 16:9": _boxed(Image.fromarray(data.coins()), 16 / 9),
        "moon, on a viewer's backdrop": _boxed(Image.fromarray(data.moon()), 1.4, (28, 28, 28)),
    }
    for name, img in pictures.items():
        f = measure(img)
        assert f.lit_box > 0.95, (name, f.lit_box)
        assert combine(analyse(img)).flags == [], name
    with monkeypatch.context() as m:  # the lines alone do not see these frames
        m.setattr("review.risk.features._lit_box", lambda luma, bw: 0.0)
        for name, img in pictures.items():
            assert combine(analyse(img)).flags == ["medical"], name
    scans = [risk_samples.ct_slice(), risk_samples.xray_like(), risk_samples.phantom_like(),
             risk_samples.ultrasound_like()]  # fmt: skip
    for scan in scans:
        assert measure(scan).lit_box < 0.9
        assert combine(analyse(scan)).flags == ["medical"]
    # a picture with no surround on two opposite sides is not framed at all
    assert measure(risk_samples.photo()).lit_box == 0.0
