"""Small real-looking images for the risk-flag tests, made in a few milliseconds each.

Charts are drawn by matplotlib, the photo is scikit-image's cat, the medical image is pydicom's CT
test slice; the screenshot is drawn with Pillow (Chromium would be too slow for unit tests).
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def chart_png(kind: str = "bar") -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    if kind == "bar":
        ax.bar(["north", "south", "east", "west", "centre"], [23, 17, 35, 29, 12])
        ax.set_ylabel("sales (k$)")
    else:
        x = np.arange(120)
        ax.plot(x, np.cumsum(rng.normal(size=120)), label="series A")
        ax.plot(x, np.cumsum(rng.normal(size=120)), label="series B")
        ax.legend()
        ax.grid(True)
    ax.set_title("Quarterly figures")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


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
    words = ["review", "caption", "model", "image", "export", "route", "queue", "flag", "chart", "the", "a", "of", "to", "and"]
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
