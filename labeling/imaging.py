"""Pure image checks and transforms (Pillow/NumPy only, no Django): what ingestion trusts.

Every function takes bytes or a PIL image and either returns facts or raises `ImageRejected`
with a reason a user can act on.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps, UnidentifiedImageError

# Truncated files must fail, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}

# Magic numbers of things people upload that we do not take, so the reason can name them.
_KNOWN_OTHER_FORMATS: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF", 0, "PDF document"),
    (b"ftypheic", 4, "HEIC image"),
    (b"ftypheix", 4, "HEIC image"),
    (b"ftypmif1", 4, "HEIF image"),
    (b"ftypavif", 4, "AVIF image"),
    (b"\x00\x00\x01\x00", 0, "ICO icon"),
    (b"8BPS", 0, "Photoshop document"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000 image"),
    (b"PK\x03\x04", 0, "zip archive"),
    (b"\x1f\x8b", 0, "gzip archive"),
    (b"DICM", 128, "DICOM file"),
)


# WebP stores each side in 14 bits, and libwebp fails on large images whose per-macroblock
# headers overflow its 512 KB first partition. The served copy is scaled to fit both.
WEBP_MAX_SIDE = 16383
WEBP_MAX_PIXELS = 4096 * 4096

_SAMPLE_BITS = re.compile(r";(\d+)")


class ImageRejected(Exception):
    """The file cannot become an Image; `reason` says why in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    image: PILImage.Image  # decoded first frame (JPEG at reduced scale), no orientation applied
    format: str
    width: int  # as displayed, after EXIF orientation
    height: int
    mode: str
    sha256: str
    phash: int  # signed 64-bit difference hash of the oriented image


def sniff_markup(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html", b"<!--", b"<head", b"<body"))


def _other_format(data: bytes) -> str | None:
    for magic, offset, name in _KNOWN_OTHER_FORMATS:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def decoded_bytes(img: PILImage.Image) -> int:
    """Bytes the decoder produces for `img`, from its header: pixels x bands x bytes per sample,
    where a sample is as wide as the file's (a 16-bit PNG's 2 bytes) or the mode's, whichever is
    wider. A pixel count alone lets 64 M pixels of 16-bit RGBA (512 MB) through."""
    bits = 8
    if img.mode.startswith("I;16"):
        bits = 16
    elif img.mode in ("I", "F"):
        bits = 32
    for tile in getattr(img, "tile", None) or ():
        rawmode = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(rawmode, str):
            bits = max(bits, *(int(n) for n in _SAMPLE_BITS.findall(rawmode)), 0)
    return img.width * img.height * len(img.getbands()) * bits // 8


def _check_decoded_bytes(img: PILImage.Image, max_decoded_bytes: int | None) -> None:
    if not max_decoded_bytes:
        return
    size = decoded_bytes(img)
    if size > max_decoded_bytes:
        raise ImageRejected(
            f"decompression bomb refused: {img.width}x{img.height} {img.mode} decodes to "
            f"{size:,} bytes (limit {max_decoded_bytes:,})"
        )


def decode(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_decoded_bytes: int | None = None,
    keep_side: int = 0,
) -> DecodedImage:
    """Validate and decode `data`. Raises ImageRejected with the reason.

    ``keep_side``: the pixels are kept for thumbnails of this size, so a JPEG is decoded at no
    less than that (otherwise at 1/8 scale, enough for the perceptual hash)."""
    size = len(data)
    if size == 0:
        raise ImageRejected("empty file (0 bytes)")
    if size > max_bytes:
        raise ImageRejected(f"file too large: {size:,} bytes (limit {max_bytes:,})")
    if sniff_markup(data):
        raise ImageRejected("SVG/HTML markup, not a raster image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            img = PILImage.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        other = _other_format(data)
        if other:
            raise ImageRejected(f"unsupported format: {other}") from exc
        raise ImageRejected(
            "not an image Pillow can identify (JPEG, PNG, WebP, GIF, BMP, TIFF)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt header can raise almost anything
        raise ImageRejected(f"unreadable image header: {exc}") from exc

    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected("image has no pixels")
    # Refused from the header, before a single pixel is decoded.
    if width * height > max_pixels:
        raise ImageRejected(
            f"decompression bomb refused: {width}x{height} = {width * height:,} pixels "
            f"(limit {max_pixels:,})"
        )
    _check_decoded_bytes(img, max_decoded_bytes)
    fmt = img.format or "?"
    mode = img.mode
    orientation = _orientation(img)
    if fmt == "JPEG":
        # libjpeg still entropy-decodes every block at a reduced scale (so truncated or corrupt
        # data fails exactly as at full size) but skips most of the IDCT and colour work: a
        # third of the cost at 1/8 scale. Only the hash and the thumbnails look at these pixels.
        scale = min(1.0, keep_side / max(width, height)) if keep_side else 0.125
        img.draft(img.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
    except PILImage.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - decoder errors have no common type
        message = str(exc) or exc.__class__.__name__
        if "truncated" in message.lower() or isinstance(exc, EOFError):
            raise ImageRejected(f"truncated file: {message}") from exc
        raise ImageRejected(f"corrupt image data: {message}") from exc

    oriented = ImageOps.exif_transpose(img) if orientation not in (None, 1) else img
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return DecodedImage(
        image=img,
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        sha256=hashlib.sha256(data).hexdigest(),
        phash=difference_hash(oriented),
    )


def _orientation(img: PILImage.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - broken EXIF must not reject a good image
        return None


def difference_hash(img: PILImage.Image) -> int:
    """64-bit dHash: robust to re-encoding and resizing, cheap (a 9x8 grayscale resize)."""
    # Shrink by an integer factor first (cheap box filter), then convert: never a full-size copy.
    factor = max(1, min(img.width // 64, img.height // 64))
    small_img = (
        img.reduce(factor) if factor > 1 and img.mode in ("RGB", "RGBA", "L", "LA", "CMYK") else img
    )
    gray = to_display_mode(small_img).convert("L")
    small = np.asarray(gray.resize((9, 8), PILImage.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    # Stored in a signed BIGINT column.
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def to_display_mode(img: PILImage.Image) -> PILImage.Image:
    """Modes a browser can show: CMYK/16-bit/palette/float become RGB(A) or L, 8 bits."""
    mode = img.mode
    if mode in ("RGB", "RGBA", "L"):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return PILImage.fromarray(scaled.astype(np.uint8), "L")
    if mode == "CMYK":
        return img.convert("RGB")
    if mode in ("P", "PA", "LA", "RGBa", "La"):
        return img.convert("RGBA")
    if mode == "1":
        return img.convert("L")
    return img.convert("RGB")


def normalise_for_display(img: PILImage.Image) -> PILImage.Image:
    """Orientation applied, browser-friendly mode. Returns a new image without metadata."""
    if _orientation(img) not in (None, 1):
        img = ImageOps.exif_transpose(img)
    img = to_display_mode(img)
    # getextrema() reads the bands in place; getchannel() would copy the alpha plane first.
    if img.mode == "RGBA" and img.getextrema()[3] == (255, 255):
        img = img.convert("RGB")
    return img


def resize_to_fit(
    img: PILImage.Image,
    max_side: int,
    resample: PILImage.Resampling = PILImage.Resampling.BILINEAR,
    reducing_gap: float = 2.0,
) -> PILImage.Image:
    if max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    # An integer box pre-reduction, then the filter for what is left. Straight from the source
    # pixels: no full-size copy first (256 MB for 64 M pixels of RGBA).
    return img.resize(size, resample, reducing_gap=reducing_gap)


def resize_thumbnail(img: PILImage.Image, max_side: int) -> PILImage.Image:
    """Both thumbnails: an area average (box filter), by whole factors with ``reduce`` first.
    Against a Lanczos reference (benchmarks/README.md, "Ingestion"): 1600 -> 1024 px PSNR
    46.6 dB (bilinear 48.0) in 60% of the time, 2048 -> 1024 px 51.8 dB (bilinear 46.7) in a
    fifth, 1024 -> 256 px 41.8 dB (bilinear 37.2) in a tenth; the JPEG encode that follows the
    large one loses more (40 dB at quality 85)."""
    return resize_to_fit(img, max_side, PILImage.Resampling.BOX, reducing_gap=1.0)


def encode_webp(img: PILImage.Image, *, max_side: int | None, quality: int = 80) -> bytes:
    """Thumbnail (or full size) as WebP. Nothing but pixels is written: no EXIF, no XMP, no GPS."""
    out = resize_to_fit(img, max_side) if max_side else img
    buf = io.BytesIO()
    # method 0 is the fastest WebP encoder setting; thumbnails are re-made, never archived.
    out.save(buf, "WEBP", quality=quality, method=0)
    return buf.getvalue()


def encode_large_thumbnail(img: PILImage.Image, *, quality: int = 85) -> tuple[bytes, str]:
    """The 1024 px copy the review screen paints first, and its extension. JPEG unless the image
    has real transparency (then WebP): libjpeg encodes 1024 px about fifteen times faster than
    libwebp even at its fastest method, for files about 1.4 times larger at a similar look
    (benchmarks/README.md, "Import"), and this encode was the slow part of a bulk import."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return encode_webp(img, max_side=None), "webp"
    buf = io.BytesIO()
    # convert() to the mode an image already has is a full copy: only convert what needs it.
    (img if img.mode in ("RGB", "L") else img.convert("RGB")).save(buf, "JPEG", quality=quality)
    return buf.getvalue(), "jpg"


def encode_display(img: PILImage.Image, *, quality: int = 90, floor_side: int = 1024) -> bytes:
    """The full-size served copy as WebP: at full size where libwebp takes it, else downscaled
    until it does. libwebp refuses a side over 16383 px ("encoding error 5"), and its first
    partition overflows on large images ("encoding error 6": 8000x8000 of one colour, 4096x4096
    of noise) after allocating about 9 bytes a pixel; past 16.7 M pixels the copy is scaled to
    that, and halved again while the encoder refuses it, never below `floor_side`."""
    scale = min(
        1.0,
        WEBP_MAX_SIDE / max(img.size),
        (WEBP_MAX_PIXELS / (img.width * img.height)) ** 0.5,
    )
    while True:
        size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
        out = (
            img
            if size == img.size
            else img.resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0)
        )
        try:
            return encode_webp(out, max_side=None, quality=quality)
        except (OSError, ValueError):
            if max(size) <= floor_side:
                raise
            scale /= 2


def open_for_derivatives(
    data: bytes, *, target_side: int, max_decoded_bytes: int | None = None
) -> PILImage.Image:
    """Open already-validated bytes, letting JPEG decode at reduced scale when that is enough.
    Files imported before a decoded-size limit existed are refused here (ImageRejected)."""
    img = PILImage.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    _check_decoded_bytes(img, max_decoded_bytes)
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    if img.format == "JPEG" and target_side > 0:
        orientation = _orientation(img)
        w, h = img.size
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        scale = target_side / max(w, h)
        if scale < 1:
            img.draft("RGB", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
    img.load()
    return img
