"""Small real-looking images for the risk-flag tests, made in a few milliseconds each.

Charts are drawn by matplotlib, the photo is scikit-image's cat, the medical image is pydicom's CT
test slice; the screenshot is drawn with Pillow (Chromium would be too slow for unit tests).
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont


def chart_png(kind: str = "bar", style: str = "default") -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    with plt.style.context(style):
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        _draw_chart(ax, kind, rng)
        ax.set_title("Quarterly figures")
        fig.savefig(buf, format="png")
        plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _draw_chart(ax, kind: str, rng: np.random.Generator) -> None:
    if kind == "bar":
        ax.bar(["north", "south", "east", "west", "centre"], [23, 17, 35, 29, 12])
        ax.set_ylabel("sales (k$)")
    else:
        x = np.arange(120)
        ax.plot(x, np.cumsum(rng.normal(size=120)), label="series A")
        ax.plot(x, np.cumsum(rng.normal(size=120)), label="series B")
        ax.legend()
        ax.grid(True)


def screenshot_png(size: tuple[int, int] = (1280, 800), dark: bool = False) -> Image.Image:
    """A desktop web page: title bar, navigation bar, a sidebar and paragraphs of text."""
    bg, fg = ((30, 30, 30), (220, 220, 220)) if dark else ((255, 255, 255), (34, 34, 34))
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    w, h = size
    d.rectangle([0, 0, w, 28], fill=(222, 222, 222) if not dark else (50, 50, 50))
    d.text((12, 7), "Docs - captiondesk - Chromium", fill=fg, font=font)
    d.rectangle([0, 28, w, 76], fill=(51, 103, 214))
    d.text((24, 42), "captiondesk   Guide   API   Changelog", fill=(255, 255, 255), font=font)
    d.rectangle([0, 76, 220, h], fill=(245, 245, 245) if not dark else (40, 40, 40))
    rnd = random.Random(1)
    words = ["review", "caption", "model", "image", "export", "route", "queue", "flag", "chart",
             "the", "a", "of", "to", "and"]  # fmt: skip
    for i, y in enumerate(range(96, h - 20, 22)):
        d.text((20, y), f"Section {i}", fill=fg, font=font)
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 16)))
        d.text((250, y), line.capitalize() + ".", fill=fg, font=font)
    return img


def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())


def ct_slice() -> Image.Image:
    """pydicom's CT test slice, windowed like a viewer and shown at 4x."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    lo, hi = np.percentile(hu, (1, 99))
    arr = (np.clip((hu - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(arr).resize((512, 512), Image.BICUBIC)


def xray_like() -> Image.Image:
    """A radiograph-like picture: smooth, grey, symmetric, on black, no colour at all."""
    yy, xx = np.mgrid[-1:1:400j, -1:1:400j]
    body = np.exp(-((xx / 0.6) ** 2 + (yy / 0.85) ** 2) * 2)
    lungs = np.exp(-(((np.abs(xx) - 0.3) / 0.18) ** 2 + (yy / 0.45) ** 2))
    spine = np.exp(-((xx / 0.05) ** 2))
    img = 0.75 * body - 0.35 * lungs * body + 0.3 * spine * body
    noise = np.random.default_rng(0).normal(0, 0.01, img.shape)
    arr = np.clip((img + noise) * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "L")


def jpeg(img: Image.Image, quality: int = 75) -> Image.Image:
    """The same picture after a round trip through JPEG (exact flatness is gone)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def dark_chart_png() -> Image.Image:
    """A line plot in matplotlib's dark_background style: grey and white marks on black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(5)
    with plt.style.context("dark_background"):
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        ax.plot(np.cumsum(rng.normal(size=200)), color="white")
        ax.set_xlabel("day")
        ax.set_ylabel("level")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def terminal_png(size: tuple[int, int] = (1366, 768)) -> Image.Image:
    """A terminal: light grey monospace lines on pure black, the way a scan's surround looks."""
    img = Image.new("RGB", size, (0, 0, 0))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    rnd = random.Random(2)
    words = ["ls", "-la", "drwxr-xr-x", "root", "4096", "Dec", "src", "make", "test", "ok", "git"]
    for y in range(8, size[1] // 2, 18):
        line = "$ " + " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12)))
        d.text((8, y), line, fill=(204, 204, 204), font=font)
    return img


def phone_chat_png() -> Image.Image:
    """A phone chat at 360x740 CSS pixels, captured at 3x: bubbles on white, a text field."""
    w, h = 1080, 2220
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=40)
    d.rectangle([0, 0, w, 150], fill=(245, 245, 245))
    d.text((60, 50), "Sam", fill=(0, 0, 0), font=font)
    rnd = random.Random(4)
    words = ["are", "you", "coming", "tonight", "sure", "see", "you", "there", "ok", "thanks"]
    y = 220
    while y < h - 320:
        mine = rnd.random() < 0.5
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(2, 5)))
        x0 = w - 700 if mine else 40
        fill = (0, 132, 255) if mine else (233, 233, 235)
        d.rounded_rectangle([x0, y, x0 + 660, y + 110], 40, fill=fill)
        d.text((x0 + 40, y + 32), text, fill=(255, 255, 255) if mine else (0, 0, 0), font=font)
        y += 170
    d.rounded_rectangle([40, h - 200, w - 40, h - 80], 50, outline=(200, 200, 200), width=4)
    return img


def pdf_viewer_png() -> Image.Image:
    """A document viewer: a white page of small print on a grey canvas, a toolbar on top."""
    w, h = 1280, 800
    img = Image.new("RGB", (w, h), (82, 86, 89))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    d.rectangle([0, 0, w, 40], fill=(50, 54, 57))
    d.text((16, 14), "report.pdf    1 / 3    100%", fill=(230, 230, 230), font=font)
    d.rectangle([340, 70, 940, 800], fill=(255, 255, 255))
    rnd = random.Random(6)
    words = ["the", "results", "of", "review", "show", "that", "captions", "were", "accepted", "in"]
    for y in range(120, 780, 16):
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 14)))
        d.text((390, y), line, fill=(20, 20, 20), font=font)
    return img


def ultrasound_like() -> Image.Image:
    """A grey speckle fan on black with the machine's text and a depth ruler: no colour."""
    w, h = 800, 600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(xx - w / 2, yy + 60)
    angle = np.arctan2(xx - w / 2, yy + 60)
    fan = (r > 120) & (r < 620) & (np.abs(angle) < 0.6)
    rng = np.random.default_rng(9)
    speckle = rng.rayleigh(0.35, (h // 3 + 1, w // 3 + 1))
    speckle = np.kron(speckle, np.ones((3, 3)))[:h, :w]
    tissue = 0.5 + 0.3 * np.sin(r / 40.0) * np.cos(angle * 5)
    arr = np.where(fan, np.clip(tissue * speckle, 0, 1) * 220, 0).astype(np.uint8)
    img = Image.fromarray(arr, "L").convert("RGB")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    for i, text in enumerate(["ACME US  C5-2", "ABD  GEN", "FR 21Hz", "DR 60", "G 48"]):
        d.text((12, 10 + 18 * i), text, fill=(235, 235, 235), font=font)
    d.line([(w - 30, 60), (w - 30, 560)], fill=(200, 200, 200), width=1)
    for y in range(60, 561, 50):
        d.line([(w - 38, y), (w - 30, y)], fill=(200, 200, 200), width=1)
    return img


def thumbnail(img: Image.Image) -> Image.Image:
    """Half size (bilinear), then JPEG quality 70: how images re-posted on the web arrive."""
    small = img.resize((max(8, img.width // 2), max(8, img.height // 2)), Image.BILINEAR)
    return jpeg(small, quality=70)


def gravel_crop() -> Image.Image:
    """A crop of scikit-image's gravel: grey texture, no flat page anywhere."""
    from skimage import data

    return Image.fromarray(data.gravel()).crop((256, 0, 512, 256))


def phantom_like(size: int = 400) -> Image.Image:
    """A head phantom drawn with a few flat greys: skull ring, brain, two dark ventricles."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    c, s = size / 2, size / 400

    def ellipse(rx: float, ry: float, dx: float, dy: float, fill: int) -> None:
        d.ellipse([c + (dx - rx) * s, c + (dy - ry) * s, c + (dx + rx) * s, c + (dy + ry) * s],
                  fill=fill)  # fmt: skip

    ellipse(140, 185, 0, 0, 235)  # skull
    ellipse(130, 173, 0, 4, 70)  # brain
    ellipse(30, 70, -45, 0, 15)  # ventricles
    ellipse(30, 70, 45, 0, 15)
    ellipse(35, 40, 0, -90, 110)
    for dx in (-25, 0, 25):
        ellipse(6, 4, dx, 120, 125)
    return img.convert("RGB")


def sparse_form_png(size: tuple[int, int] = (1440, 900)) -> Image.Image:
    """A sign-up page: a coloured navigation bar, a card with four empty inputs, little text."""
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=16)
    d.rectangle([0, 0, w, 48], fill=(51, 103, 214))
    d.text((20, 14), "Acme Cloud", fill=(255, 255, 255), font=font)
    d.text((w - 220, 14), "Docs  Pricing  Sign in", fill=(255, 255, 255), font=font)
    x0, x1 = w // 2 - 190, w // 2 + 190
    d.rounded_rectangle([x0, 90, x1, 520], radius=8, outline=(200, 200, 200))
    for i, label in enumerate(["Phone", "Name", "Password", "Email"]):
        y = 150 + 80 * i
        d.text((x0 + 20, y), label, fill=(34, 34, 34), font=font)
        d.rectangle([x0 + 20, y + 24, x1 - 20, y + 52], outline=(150, 150, 150))
    d.rectangle([x0 + 20, 470, x0 + 120, 500], fill=(51, 103, 214))
    return img


def grey_landscape() -> Image.Image:
    """A black-and-white landscape: sky over land below a ragged horizon, with film grain."""
    rng = np.random.default_rng(4)
    h, w = 400, 600
    horizon = (220 + np.cumsum(rng.normal(0, 2, w))).astype(int)
    yy = np.arange(h)[:, None]
    arr = np.where(yy < horizon[None, :], 200 - 60 * yy / h, 80 + 0.1 * (yy - horizon[None, :]))
    arr = arr + rng.normal(0, 6, (h, w))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    return img.filter(ImageFilter.GaussianBlur(1.0))


FACE, LIGHT, SHADE, DARK = (212, 208, 200), (255, 255, 255), (128, 128, 128), (64, 64, 64)


def _bevel(d: ImageDraw.ImageDraw, box: tuple[int, int, int, int], *, sunken: bool) -> None:
    """A classic 3-D edge: light top and left, shaded bottom and right (swapped when sunken)."""
    x0, y0, x1, y1 = box
    hi, lo = (SHADE, LIGHT) if sunken else (LIGHT, SHADE)
    d.line([(x0, y1), (x0, y0), (x1, y0)], fill=hi)
    d.line([(x0 + 1, y1 - 1), (x0 + 1, y0 + 1), (x1 - 1, y0 + 1)], fill=DARK if sunken else FACE)
    d.line([(x0, y1), (x1, y1), (x1, y0)], fill=lo)
    d.line([(x0 + 1, y1 - 1), (x1 - 1, y1 - 1), (x1 - 1, y0 + 1)], fill=FACE if sunken else DARK)


def toolkit_dialog_png(size: tuple[int, int] = (420, 300)) -> Image.Image:
    """A colour dialog in a classic toolkit style (Windows 9x, Motif, Tk, Qt's Windows style):
    grey face, a shaded title bar, etched group boxes, sunken entries and a swatch, raised buttons,
    colour sliders and a few words. Little text, flat saturated fills: what reads as a plot."""
    w, h = size
    img = Image.new("RGB", size, FACE)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    _bevel(d, (0, 0, w - 1, h - 1), sunken=False)
    for y in range(3, 23):  # a title bar shaded top to bottom, as many window managers draw it
        d.line([(3, y), (w - 4, y)], fill=(10 + 2 * y, 36 + 2 * y, 106 + 2 * y))
    d.text((8, 6), "Select Colour", fill=(255, 255, 255), font=font)
    for x0, y0, x1, y1, title in ((10, 30, 260, 190, "Red, green, blue"),
                                  (270, 30, w - 12, 190, "Selection")):  # fmt: skip
        for off, colour in ((0, SHADE), (1, LIGHT)):  # an etched line: shade, then light
            d.rectangle([x0 + off, y0 + off, x1 + off, y1 + off], outline=colour)
        d.rectangle([x0 + 8, y0 - 6, x0 + 12 + 7 * len(title), y0 + 6], fill=FACE)
        d.text((x0 + 10, y0 - 6), title, fill=(0, 0, 0), font=font)
    for i, (name, colour) in enumerate((("Red", (255, 0, 0)), ("Green", (0, 160, 0)),
                                        ("Blue", (0, 0, 255)))):  # fmt: skip
        y = 50 + 45 * i
        d.text((20, y + 4), name, fill=(0, 0, 0), font=font)
        for x in range(70, 200):  # a gradient slider in a sunken trough
            t = (x - 70) / 130
            d.line([(x, y + 2), (x, y + 18)], fill=tuple(int(c * t) for c in colour))
        _bevel(d, (68, y, 201, y + 20), sunken=True)
        d.rectangle([210, y, 250, y + 20], fill=(255, 255, 255))
        _bevel(d, (210, y, 250, y + 20), sunken=True)
        d.text((215, y + 4), str(40 * (i + 1)), fill=(0, 0, 0), font=font)
    d.rectangle([282, 50, w - 24, 170], fill=(51, 102, 204))
    _bevel(d, (282, 50, w - 24, 170), sunken=True)
    for x0, label in ((w - 190, "OK"), (w - 100, "Cancel")):
        _bevel(d, (x0, h - 40, x0 + 80, h - 14), sunken=False)
        d.text((x0 + 24, h - 34), label, fill=(0, 0, 0), font=font)
    return img
