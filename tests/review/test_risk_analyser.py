"""The pixel analyser (signal a), the caption keywords (signal b) and their combination."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from review.risk import (
    ANALYSER_VERSION,
    CATEGORIES,
    RiskReport,
    analyse,
    analyse_file,
    caption_signal,
    combine,
)
from review.risk.analyser import metadata_hints

from . import risk_samples


def pixels_only(img: Image.Image) -> Image.Image:
    """The same pixels without file metadata (matplotlib names itself in PNG text chunks)."""
    clean = img.copy()
    clean.info = {}
    return clean


def flagged(img: Image.Image) -> list[str]:
    return combine(analyse(img)).flags


# ------------------------------------------------------------------ each signal on its own kind


def test_a_bar_chart_is_flagged_as_a_chart_from_pixels_alone():
    report = analyse(pixels_only(risk_samples.chart_png("bar")))
    assert report.scores["chart"] >= 0.8
    assert report.scores["screenshot"] < 0.5
    assert report.scores["medical"] < 0.2
    assert "rendered graphic" in report.reasons["chart"]


def test_a_line_chart_with_grid_and_legend_is_a_chart():
    assert flagged(pixels_only(risk_samples.chart_png("line"))) == ["chart"]


def test_a_web_page_is_a_screenshot_and_the_reason_mentions_text():
    report = analyse(risk_samples.screenshot_png())
    assert report.scores["screenshot"] >= 0.8
    assert report.scores["chart"] < 0.5
    assert "text" in report.reasons["screenshot"]


def test_dark_mode_and_odd_sized_screens_are_still_screenshots():
    assert flagged(risk_samples.screenshot_png(dark=True)) == ["screenshot"]
    assert flagged(risk_samples.screenshot_png(size=(1000, 700))) == ["screenshot"]


def test_a_ct_slice_and_a_radiograph_are_medical():
    for img in (risk_samples.ct_slice(), risk_samples.xray_like()):
        report = analyse(img)
        assert report.scores["medical"] >= 0.6, report.reasons
        assert report.scores["chart"] < 0.5 and report.scores["screenshot"] < 0.5
        assert "grey" in report.reasons["medical"]


def test_a_colour_photo_of_a_cat_is_not_flagged():
    report = analyse(risk_samples.photo())
    assert combine(report).flags == []
    assert max(report.scores.values()) < 0.3
    assert report.reasons["medical"] == "natural colours"


def test_pink_and_purple_tissue_texture_reads_as_stained_histology():
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, (300, 300))
    smooth = np.fft.ifft2(np.fft.fft2(base) * np.exp(-np.add.outer(
        np.fft.fftfreq(300) ** 2, np.fft.fftfreq(300) ** 2) * 2000)).real  # fmt: skip
    t = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    # eosin pink where t is low, haematoxylin purple where t is high
    r = 230 - 110 * t
    g = 150 - 110 * t
    b = 200 - 40 * t
    img = Image.fromarray(np.dstack([r, g, b]).clip(0, 255).astype(np.uint8))
    report = analyse(img)
    assert report.scores["medical"] >= 0.5
    assert "stained" in report.reasons["medical"]


def _od(rgb: np.ndarray) -> np.ndarray:
    return -np.log((rgb.astype(np.float64) + 1.0) / 256.0)


def _from_od(od: np.ndarray) -> Image.Image:
    return Image.fromarray((256.0 * np.exp(-od) - 1.0).clip(0, 255).astype(np.uint8))


def test_brown_and_blue_ihc_on_slide_glass_reads_as_two_stains():
    from skimage import data

    ihc = data.immunohistochemistry()
    report = analyse(Image.fromarray(ihc))
    assert report.scores["medical"] >= 0.8, report.reasons
    assert "two stains" in report.reasons["medical"]
    # the same slide after a half-size JPEG trip
    small = Image.fromarray(ihc).resize((256, 256))
    assert analyse(risk_samples.jpeg(small, quality=70)).scores["medical"] >= 0.5


def test_one_coloured_material_on_white_is_not_two_stains():
    from skimage import data

    # the IHC slide re-dyed with its main colour only: same texture and glass, one hue
    od = _od(data.immunohistochemistry())
    flat = od.reshape(-1, 3)
    _, vec = np.linalg.eigh(flat.T @ flat)
    main = np.abs(vec[:, 2])
    one_dye = _from_od((od @ main)[..., None] * main)
    report = analyse(one_dye)
    assert report.features == {}
    assert "two stains" not in report.reasons["medical"]
    assert report.scores["medical"] < 0.5


def test_two_colours_with_smooth_sky_are_not_two_stains():
    from skimage import data

    # brown and blue texture under a smooth blue sky: a scene, not cells everywhere
    ihc = data.immunohistochemistry().copy()
    rows = np.linspace(0, 1, 200)[:, None, None]
    ihc[:200] = (np.array([110, 160, 225]) + rows * np.array([60, 50, 20])).astype(np.uint8)
    report = analyse(Image.fromarray(ihc))
    assert "two stains" not in report.reasons["medical"]
    assert report.scores["medical"] < 0.5


def test_a_chart_saved_as_jpeg_is_still_a_chart():
    # JPEG removes exact flatness; near-flat regions meeting at hard steps survive it
    for kind in ("bar", "line"):
        report = analyse(risk_samples.jpeg(pixels_only(risk_samples.chart_png(kind))))
        assert combine(report).flags == ["chart"], report.reasons
        assert report.features == {}


def test_half_size_jpeg_thumbnails_keep_their_category():
    # the trip most web images take: scaled down, then recompressed
    def thumbnail(img: Image.Image) -> Image.Image:
        small = img.resize((img.width // 2, img.height // 2), Image.BILINEAR)
        return risk_samples.jpeg(small, quality=70)

    for kind in ("bar", "line"):
        assert flagged(thumbnail(pixels_only(risk_samples.chart_png(kind)))) == ["chart"]
    assert flagged(thumbnail(risk_samples.screenshot_png())) == ["screenshot"]
    assert flagged(thumbnail(risk_samples.photo())) == []


def test_a_blurred_axis_on_a_thumbnail_is_still_an_axis():
    # halving blurs the one-pixel axis and JPEG rings along it; a looser tolerance finds it
    report = analyse(risk_samples.thumbnail(pixels_only(risk_samples.chart_png("bar"))),
                     with_features=True)  # fmt: skip
    assert report.features["axes"]
    assert combine(report).flags == ["chart"], report.reasons
    # the crisp original keeps its axes too (the looser search only adds)
    assert analyse(pixels_only(risk_samples.chart_png("bar")), with_features=True).features["axes"]


def test_light_grey_axes_still_count_on_a_thumbnail():
    # a light spine halved to a two-pixel smear keeps a step of only 16-24 levels
    for kind, style in (("bar", "seaborn-v0_8-whitegrid"), ("line", "bmh")):
        img = pixels_only(risk_samples.chart_png(kind, style))
        report = analyse(risk_samples.thumbnail(img), with_features=True)
        assert report.features["axes"], style
        assert combine(report).flags == ["chart"], report.reasons


def test_blurred_axes_are_not_looked_for_in_grey_texture():
    # weak straight steps occur by chance in texture; only a flat page is searched for them
    report = analyse(risk_samples.thumbnail(risk_samples.gravel_crop()), with_features=True)
    assert not report.features["axes"]
    assert combine(report).flags == []


def test_a_plot_on_black_is_a_chart_not_a_scan():
    report = analyse(pixels_only(risk_samples.dark_chart_png()), with_features=True)
    assert report.features["axes"]
    assert combine(report).flags == ["chart"], report.reasons


def test_a_terminal_on_black_is_a_screenshot_not_a_scan():
    report = analyse(risk_samples.terminal_png(), with_features=True)
    assert report.features["text_of_ink"] >= 0.5
    assert report.features["hard_step_share"] >= 0.3
    assert combine(report).flags == ["screenshot"], report.reasons


def test_a_tall_phone_capture_and_a_document_viewer_are_screenshots():
    assert flagged(risk_samples.phone_chat_png()) == ["screenshot"]
    report = analyse(risk_samples.pdf_viewer_png(), with_features=True)
    # the page's lower-left corner is a box corner with a plain surround, not plot axes
    assert not report.features["axes"]
    assert combine(report).flags == ["screenshot"], report.reasons


def test_a_sparse_form_under_a_navigation_bar_is_a_screenshot():
    # little text and four input boxes look like marks; the bar across the top is an app's
    report = analyse(risk_samples.sparse_form_png(), with_features=True)
    assert report.features["top_bar"] > 0
    assert combine(report).flags == ["screenshot"], report.reasons


def test_a_figure_background_round_a_chart_is_not_a_top_bar():
    # ggplot and bmh fill the figure with grey on every side; the default figure is white
    for style in ("ggplot", "bmh", "default"):
        report = analyse(pixels_only(risk_samples.chart_png("bar", style)), with_features=True)
        assert report.features["top_bar"] == 0, style
        assert combine(report).flags == ["chart"], (style, report.reasons)


def test_bevelled_widget_borders_tell_a_toolkit_dialog_from_a_plot():
    # a colour dialog has little text and flat saturated fills, like a plot; its etched group
    # boxes, sunken entries and raised buttons (a light line beside a dark one) are a window's
    report = analyse(risk_samples.toolkit_dialog_png(), with_features=True)
    assert report.features["bevels"] >= 0.4
    assert combine(report).flags == ["screenshot"], report.reasons
    assert "bevelled" in report.reasons["screenshot"]
    assert analyse(risk_samples.toolkit_dialog_png(), use_model=False).scores["screenshot"] > 0.5
    # a plot's lines are dark on the page with no highlight beside them, in every style
    for kind, style in (("bar", "default"), ("line", "default"), ("line", "ggplot"),
                        ("bar", "bmh")):  # fmt: skip
        chart = analyse(pixels_only(risk_samples.chart_png(kind, style)), with_features=True)
        assert chart.features["bevels"] < 0.05, (kind, style)
    assert analyse(risk_samples.photo(), with_features=True).features["bevels"] < 0.05


def test_a_shaded_title_bar_under_a_window_frame_is_a_title_bar_and_a_figure_margin_is_not():
    # the bar is a gradient below a bevelled frame: even rows that change smoothly, then a step
    report = analyse(risk_samples.toolkit_dialog_png(), with_features=True)
    assert 0.05 <= report.features["title_bar"] <= 0.1
    assert analyse(risk_samples.screenshot_png(), with_features=True).features["title_bar"] > 0
    # a figure's background fills the top rows too, but goes on down the sides and the bottom
    for style in ("default", "ggplot", "bmh", "dark_background"):
        for kind in ("bar", "line"):
            chart = analyse(pixels_only(risk_samples.chart_png(kind, style)), with_features=True)
            assert chart.features["title_bar"] == 0, (kind, style)
    assert analyse(risk_samples.photo(), with_features=True).features["title_bar"] == 0


def test_plot_axes_need_ink_outside_the_corner():
    assert analyse(pixels_only(risk_samples.chart_png("bar")), with_features=True).features["axes"]
    box = Image.new("RGB", (800, 600), (90, 90, 90))
    box.paste((255, 255, 255), (200, 50, 700, 550))
    assert not analyse(box, with_features=True).features["axes"]


def test_an_ultrasound_with_text_and_a_ruler_is_medical():
    report = analyse(risk_samples.ultrasound_like())
    assert report.scores["medical"] >= 0.6, report.reasons
    assert report.scores["chart"] < 0.5 and report.scores["screenshot"] < 0.5


def test_a_phantom_drawn_in_flat_greys_is_a_scan_not_a_chart():
    # flat fills usually mean a drawing, but a bare symmetric grey body on black is how a
    # scanner shows a phantom or a slice exported with few grey levels
    for img in (risk_samples.phantom_like(), risk_samples.thumbnail(risk_samples.phantom_like())):
        report = analyse(img)
        assert combine(report).flags == ["medical"], report.reasons


def test_flat_greys_in_a_ruled_panel_stay_a_drawing():
    img = risk_samples.phantom_like()
    d = ImageDraw.Draw(img)
    d.rectangle([20, 8, 380, 392], outline=(200, 200, 200), width=2)
    d.line([(20, 200), (380, 200)], fill=(200, 200, 200), width=2)
    d.line([(200, 8), (200, 392)], fill=(200, 200, 200), width=2)
    report = analyse(img)
    assert report.scores["medical"] < 0.5, report.reasons
    assert "flat" in report.reasons["medical"]


def test_an_ultrasound_on_a_dark_grey_viewer_keeps_its_overlay_text():
    # viewers put dark grey, not black, around the image; the machine's text is still an overlay
    arr = np.asarray(risk_samples.ultrasound_like()).copy()
    arr[arr < 8] = 24
    img = Image.fromarray(arr)
    for version in (img, risk_samples.thumbnail(img)):
        report = analyse(version)
        assert combine(report).flags == ["medical"], report.reasons


def test_greyscale_photos_are_not_medical_without_a_scanner_cue():
    from skimage import data

    for arr in (data.camera(), data.moon(), data.coins()):
        report = analyse(Image.fromarray(arr))
        assert report.scores["medical"] < 0.5, report.reasons


def test_a_horizon_is_not_bilateral_anatomy():
    # sky over land mirrors onto itself; anatomy varies across each row the same way both sides
    report = analyse(risk_samples.grey_landscape(), with_features=True)
    assert report.features["symmetry"] > 0.8 > 0.5 > report.features["cross_symmetry"]
    assert report.scores["medical"] < 0.5, report.reasons
    chest = analyse(risk_samples.xray_like(), with_features=True)
    assert chest.features["cross_symmetry"] > 0.8
    assert "left-right symmetric anatomy" in chest.reasons["medical"]


def test_a_greyscale_photo_in_a_black_frame_is_not_a_scan():
    from skimage import data

    for pad in (20, 60):
        framed = ImageOps.expand(Image.fromarray(data.coins()), border=pad, fill=0)
        report = analyse(framed)
        assert report.scores["medical"] < 0.5, report.reasons
    assert "frame" in analyse(framed).reasons["medical"]


def _grey_cells(grain: float = 0.0) -> Image.Image:
    """Smooth grey blobs without a surround; ``grain`` adds pixel-scale noise (levels, sd)."""
    rng = np.random.default_rng(11)
    base = rng.normal(0, 1, (300, 300))
    blobs = np.fft.ifft2(np.fft.fft2(base) * np.exp(-np.add.outer(
        np.fft.fftfreq(300) ** 2, np.fft.fftfreq(300) ** 2) * 3000)).real  # fmt: skip
    t = (blobs - blobs.min()) / (blobs.max() - blobs.min())
    arr = 60 + 120 * t + rng.normal(0, grain, t.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def test_soft_grey_without_pixel_scale_detail_reads_as_transmission_imaging():
    # a radiograph or a micrograph is soft at the scale of one pixel everywhere
    report = analyse(_grey_cells(), with_features=True)
    assert report.features["fine_detail"] < 0.001
    assert combine(report).flags == ["medical"], report.reasons
    assert "soft throughout" in report.reasons["medical"]
    # a half-size JPEG copy is sharper but still has no grain
    assert combine(analyse(risk_samples.thumbnail(_grey_cells()))).flags == ["medical"]


def test_a_plain_grey_gradient_is_soft_but_shows_nothing():
    # dithered so that it is not flat fills either: soft, but there is nothing to see
    ramp = np.tile(np.linspace(60, 200, 300), (300, 1))
    ramp += np.random.default_rng(0).normal(0, 1.0, ramp.shape)
    report = analyse(Image.fromarray(ramp.astype(np.uint8), "L"), with_features=True)
    assert report.features["fine_detail"] < 0.001 and report.features["mid_detail"] < 0.005
    assert report.scores["medical"] < 0.5, report.reasons


def test_smooth_grey_with_grain_stays_below_the_line_but_a_caption_lifts_it():
    # the same tones with film or sensor grain: a photograph is not soft everywhere
    report = analyse(_grey_cells(grain=6.0), with_features=True)
    assert report.features["fine_detail"] > 0.01
    # close enough to the line that a caption can decide (0.29 since risk-2.3, 0.33 before)
    assert 0.25 <= report.scores["medical"] < 0.5, report.reasons
    assert combine(report, ["cells under a microscope"]).flags == ["medical"]


def test_greyscale_photos_with_specks_or_focus_are_not_soft():
    from skimage import data

    for arr in (data.moon()[100:400, 100:400], data.camera(), data.brick()):
        features = analyse(Image.fromarray(arr), with_features=True).features
        assert features["fine_detail"] >= 0.004, features["fine_detail"]


def test_file_metadata_from_a_plotting_library_or_screenshot_tool_counts():
    chart = risk_samples.chart_png("bar")
    assert "matplotlib" in chart.info.get("Software", "").lower()
    assert metadata_hints(chart)["chart"] == 1.0
    shot = risk_samples.screenshot_png()
    shot.info["Software"] = "gnome-screenshot"
    assert metadata_hints(shot)["screenshot"] == 1.0
    assert metadata_hints(risk_samples.photo()) == {"chart": 0.0, "screenshot": 0.0, "medical": 0.0}


def test_report_carries_the_version_and_every_category():
    report = analyse(risk_samples.photo())
    assert report.version == ANALYSER_VERSION
    assert set(report.scores) == set(report.reasons) == set(CATEGORIES)


def test_one_megapixel_is_analysed_well_under_the_budget():
    img = risk_samples.screenshot_png(size=(1155, 866))
    analyse(img)  # warm-up
    t0 = time.process_time()
    for _ in range(5):
        analyse(img)
    per_image_ms = (time.process_time() - t0) * 1000 / 5
    # the budget is 50 ms on one core. CPU time, not wall time: on a machine shared with other
    # work wall time measures the wait for a core (600 ms seen at load 20 on 2 cores); this only
    # guards against a many-fold regression, the figure itself comes from benchmarks/risk_eval.py
    assert per_image_ms < 150


# --------------------------------------------------------------------------- odd images


def _animated_gif() -> Image.Image:
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.n_frames == 3
    img.seek(2)  # the analyser must cope with an image left on a later frame
    return img


ODD_IMAGES = {
    "1x1": lambda: Image.new("RGB", (1, 1), "red"),
    "0x0": lambda: Image.new("RGB", (0, 0)),
    "tall 1x5000": lambda: Image.new("RGB", (1, 5000), "white"),
    "wide 6000x3": lambda: Image.new("L", (6000, 3), 128),
    "thin 4000x12": lambda: Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (12, 4000), dtype=np.uint8)
    ),
    "16-bit": lambda: Image.fromarray(
        ((np.arange(256 * 256).reshape(256, 256) * 3) % 4096).astype(np.uint16)
    ),
    "16-bit flat": lambda: Image.new("I;16", (64, 64), 1000),
    "32-bit int": lambda: Image.new("I", (64, 64), 70000),
    "float": lambda: Image.fromarray(np.random.default_rng(1).normal(size=(80, 80)).astype("f4")),
    "palette": lambda: risk_samples.photo().convert("P", palette=Image.ADAPTIVE, colors=16),
    "palette with transparency": lambda: _palette_transparent(),
    "RGBA": lambda: Image.new("RGBA", (120, 90), (10, 200, 30, 0)),
    "LA": lambda: Image.new("LA", (50, 50), (100, 128)),
    "1-bit": lambda: Image.new("1", (64, 64), 1),
    "CMYK": lambda: risk_samples.photo().convert("CMYK"),
    "YCbCr": lambda: risk_samples.photo().convert("YCbCr"),
    "HSV": lambda: risk_samples.photo().convert("HSV"),
    "LAB": lambda: Image.new("LAB", (64, 64), (50, 0, 0)),
    "animated GIF": _animated_gif,
    "huge flat": lambda: Image.new("RGB", (5000, 4000), (250, 250, 250)),
}


def _palette_transparent() -> Image.Image:
    img = Image.new("P", (60, 60), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize("name", list(ODD_IMAGES))
def test_odd_images_never_crash_and_scores_stay_in_range(name):
    report = analyse(ODD_IMAGES[name]())
    assert set(report.scores) == set(CATEGORIES)
    for category in CATEGORIES:
        assert 0.0 <= report.scores[category] <= 1.0
        assert report.reasons[category]


def test_images_too_small_to_judge_say_so():
    report = analyse(Image.new("RGB", (1, 1)))
    assert report.scores == {c: 0.0 for c in CATEGORIES}
    assert "too small" in report.reasons["chart"]


def test_analyse_file_turns_a_sideways_file_upright_by_its_exif_orientation():
    # phones store pixels sideways and an EXIF tag that says how to show them
    sideways = risk_samples.screenshot_png().transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    sideways.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    report = analyse_file(io.BytesIO(buf.getvalue()))
    assert report.scores["screenshot"] >= 0.9, report.reasons  # 0.53 read sideways


def test_analyse_file_reads_jpeg_and_png_bytes_and_refuses_garbage():
    buf = io.BytesIO()
    risk_samples.screenshot_png().save(buf, format="JPEG", quality=80)
    buf.seek(0)
    assert analyse_file(buf).scores["screenshot"] >= 0.5
    with pytest.raises(OSError):
        analyse_file(io.BytesIO(b"not an image at all"))


# ------------------------------------------------------------------ captions and combination


def test_caption_keywords_name_their_category_and_scene_words_lean_away():
    assert caption_signal("a screenshot of a web page")["screenshot"] == 1.0
    assert caption_signal("A bar graph showing sales by region")["chart"] == 1.0
    assert caption_signal("an X-ray of a human chest")["medical"] == 1.0
    assert caption_signal("cells under a microscope")["medical"] == 1.0
    scene = caption_signal("a man sitting on a bench in a park")
    assert all(v < 0 for v in scene.values())
    assert caption_signal("") == {"chart": 0.0, "screenshot": 0.0, "medical": 0.0}
    # "screen" alone is only a hint: people stand in front of screens
    assert 0 < caption_signal("a man in front of a screen")["screenshot"] < 0.5


def _report(**scores: float) -> RiskReport:
    full = {c: scores.get(c, 0.0) for c in CATEGORIES}
    return RiskReport(scores=full, reasons={c: f"image says {v}" for c, v in full.items()})


def test_captions_lift_a_borderline_image_over_the_threshold():
    report = _report(chart=0.35)
    assert combine(report).flags == []
    lifted = combine(report, ["a line chart of stock prices"])
    assert lifted.flags == ["chart"]
    assert lifted.scores["chart"] > 0.8
    assert "caption says" in lifted.reasons["chart"]


def test_a_caption_alone_cannot_flag_an_image_that_looks_nothing_like_it():
    result = combine(_report(medical=0.01), ["an x-ray of a hand"])
    assert "medical" not in result.flags
    assert result.scores["medical"] > 0.01


def test_captions_are_averaged_so_one_dissenting_model_weighs_less():
    one = combine(_report(screenshot=0.4), ["a screenshot of a website"]).scores["screenshot"]
    mixed = combine(
        _report(screenshot=0.4), ["a screenshot of a website", "a dog on the grass"]
    ).scores["screenshot"]
    assert one > mixed > 0.0


def test_scene_captions_lower_a_borderline_score():
    result = combine(_report(medical=0.55), ["a woman walking a dog in the street"])
    assert result.scores["medical"] < 0.55
    assert result.flags == []


def test_thresholds_are_per_category_and_inclusive():
    report = _report(chart=0.6, screenshot=0.6, medical=0.3)
    assert combine(report).flags == ["chart", "screenshot"]
    strict = combine(report, thresholds={"chart": 0.7, "medical": 0.3})
    assert strict.flags == ["screenshot", "medical"]


def _variants() -> list[tuple[str, Image.Image, str, dict]]:
    """The sample pictures in the modes and formats that uploads come in."""
    ct, shot, chart = (
        risk_samples.ct_slice(),
        risk_samples.screenshot_png(),
        risk_samples.chart_png(),
    )
    chart.info.clear()  # matplotlib's Software chunk is evidence Pillow does not write back
    sixteen = Image.fromarray(np.asarray(ct).astype(np.uint16) * 257)
    see_through = np.asarray(shot.convert("RGBA")).copy()
    see_through[..., 3] = np.where(see_through[..., :3].min(axis=2) > 250, 0, 255)
    return [
        ("L", ct, "PNG", {}),
        ("I;16", sixteen, "PNG", {}),
        ("I;16 TIFF", sixteen, "TIFF", {}),
        ("LA", ct.convert("LA"), "PNG", {}),
        ("P", chart.convert("P", palette=Image.ADAPTIVE), "PNG", {}),
        ("RGBA", Image.fromarray(see_through), "PNG", {}),
        ("RGB", shot, "PNG", {}),
        ("GIF", shot, "GIF", {}),
        ("WebP", chart, "WEBP", {"lossless": True}),
        ("JPEG", risk_samples.photo(), "JPEG", {"quality": 90}),
        ("CMYK JPEG", risk_samples.photo().convert("CMYK"), "JPEG", {"quality": 90}),
        ("large JPEG", shot.resize((5120, 3200)), "JPEG", {"quality": 90}),
    ]


@pytest.mark.parametrize("index", range(12))
def test_analysing_a_picture_and_its_file_give_the_same_scores(index):
    """Production analyses stored files (``analyse_file``); the evaluation and the tests analyse
    pictures (``analyse``). Across modes (16-bit, palette, alpha, CMYK) and formats they agree:
    a lossless file to the digit, a lossy or huge one (JPEG decoded at half size by ``draft``)
    within 0.02."""
    name, picture, fmt, options = _variants()[index]
    buf = io.BytesIO()
    picture.save(buf, format=fmt, **options)
    from_file = analyse_file(io.BytesIO(buf.getvalue()))
    decoded = analyse(Image.open(io.BytesIO(buf.getvalue())))
    for c in CATEGORIES:
        assert abs(from_file.scores[c] - decoded.scores[c]) <= 0.02, (name, c)
        if fmt in {"PNG", "TIFF", "GIF"} or options.get("lossless"):
            assert from_file.scores[c] == analyse(picture).scores[c], (name, c)
