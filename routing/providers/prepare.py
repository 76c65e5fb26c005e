"""Fit one request to what one provider accepts (``Provider.capabilities``), before the call.

``prepare_request`` is pure: it takes a ``CaptionRequest`` and a ``ProviderCapabilities`` and
returns a new request plus short notes of what it changed, for the call log:

- an image in a format the vendor does not decode, over its byte cap or over its longest side is
  re-encoded with Pillow: PNG when the image has real transparency (or comes from a lossless
  format and fits as PNG), otherwise JPEG; lower quality first, then smaller, until it fits. The
  picture is turned upright by its EXIF orientation first, because re-encoding drops that tag;
- an image that is already acceptable is kept byte for byte (only a wrong ``mime_type`` label is
  corrected);
- parameters the vendor does not take are dropped; numbers outside its range are clamped.

Web URLs are left alone: the vendor fetches them, we never see the bytes.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from routing.providers.base import CaptionRequest, ProviderCapabilities
from routing.providers.http import decode_data_url

#: Pillow format name -> MIME type. MPO is what Pillow calls many camera JPEGs.
FORMAT_MIME: Mapping[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
LOSSLESS_FORMATS = frozenset({"PNG", "GIF", "BMP", "TIFF"})
JPEG_QUALITIES = (90, 80, 70, 60)
DOWNSCALED_JPEG_QUALITY = 75
#: Going from the first to the last quality shrinks a photo about this much; beyond it, downscale.
QUALITY_LADDER_REACH = 2.5
#: Size at DOWNSCALED_JPEG_QUALITY relative to the first quality, for a photo (measured ~0.5-0.6).
DOWNSCALED_SIZE_RATIO = 0.6
MAX_DOWNSCALE_STEPS = 6
#: A downscaled JPEG this close to the cap is kept; below it, a larger size is tried.
GOOD_ENOUGH_SHARE = 0.8
MIN_SIDE_PX = 32


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """The request to send, and what was changed to get there (empty when nothing was)."""

    request: CaptionRequest
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.notes)


def prepare_request(request: CaptionRequest, caps: ProviderCapabilities) -> PreparedRequest:
    """``request`` fitted to ``caps``; see the module docstring."""
    notes: list[str] = []
    changes: dict[str, Any] = {}
    image = _prepare_image(request, caps, notes)
    if image is not None:
        data, mime = image
        changes.update(image=data, mime_type=mime, image_url=None)
    params = _prepare_params(request.params, caps, notes)
    if params != dict(request.params):
        changes["params"] = params
    if not changes:
        return PreparedRequest(request, tuple(notes))
    return PreparedRequest(dataclasses.replace(request, **changes), tuple(notes))


# --- images -----------------------------------------------------------------------------------


def _prepare_image(
    request: CaptionRequest, caps: ProviderCapabilities, notes: list[str]
) -> tuple[bytes, str] | None:
    """New ``(bytes, mime)`` when the image must change, else None."""
    data = request.image
    label = request.mime_type
    if data is None and request.image_url:
        decoded = decode_data_url(request.image_url)
        if decoded is None:
            return None  # a web URL: the vendor fetches it
        data, label = decoded
    assert data is not None
    try:
        with Image.open(io.BytesIO(data)) as probe:
            source_format = str(probe.format or "")
            size = probe.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        notes.append("image not recognised by Pillow; sent unchanged")
        return None
    mime = FORMAT_MIME.get(source_format)
    fits_type = mime is not None and mime in caps.image_mime_types
    fits_bytes = caps.max_image_bytes is None or len(data) <= caps.max_image_bytes
    fits_side = caps.max_image_side_px is None or max(size) <= caps.max_image_side_px
    if fits_type and fits_bytes and fits_side:
        assert mime is not None
        if mime != label:
            notes.append(f"image labelled {label} is {mime}; label corrected")
            return data, mime
        return None
    try:
        encoded, target, new_size = _reencode(data, caps)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        notes.append(f"image could not be re-encoded ({type(exc).__name__}); sent unchanged")
        return None
    notes.append(
        f"image re-encoded {source_format or '?'}->{target} {_kb(len(data))}->{_kb(len(encoded))}"
    )
    if new_size != size:
        notes.append(f"image resized {size[0]}x{size[1]}->{new_size[0]}x{new_size[1]} px")
    if caps.max_image_bytes is not None and len(encoded) > caps.max_image_bytes:
        notes.append(f"image still over the {_kb(caps.max_image_bytes)} limit")
    return encoded, FORMAT_MIME[target]


def _reencode(data: bytes, caps: ProviderCapabilities) -> tuple[bytes, str, tuple[int, int]]:
    """``(bytes, Pillow format, size)`` of the best acceptable encoding we can find."""
    with Image.open(io.BytesIO(data)) as opened:
        source_format = str(opened.format or "")
        image = ImageOps.exif_transpose(opened)
        image.load()
    if caps.max_image_side_px is not None and max(image.size) > caps.max_image_side_px:
        image = _scaled(image, caps.max_image_side_px / max(image.size))
    png_ok = "image/png" in caps.image_mime_types
    jpeg_ok = "image/jpeg" in caps.image_mime_types
    alpha = _has_alpha(image)
    if png_ok and (alpha or not jpeg_ok):
        return _fit_png(image, caps.max_image_bytes)
    # A PNG that is over the cap stays over it as PNG: go straight to JPEG then.
    too_big_png = source_format == "PNG" and caps.max_image_bytes is not None
    if png_ok and source_format in LOSSLESS_FORMATS and not too_big_png:
        encoded = _encode(image, "PNG")
        if caps.max_image_bytes is None or len(encoded) <= caps.max_image_bytes:
            return encoded, "PNG", image.size
    if not jpeg_ok:
        raise ValueError("the provider takes neither JPEG nor PNG")
    return _fit_jpeg(image, caps.max_image_bytes)


def _fit_png(image: Image.Image, cap: int | None) -> tuple[bytes, str, tuple[int, int]]:
    encoded = _encode(image, "PNG")
    while cap is not None and len(encoded) > cap and min(image.size) > MIN_SIDE_PX:
        image = _scaled(image, math.sqrt(cap / len(encoded)) * 0.9)
        encoded = _encode(image, "PNG")
    return encoded, "PNG", image.size


def _fit_jpeg(image: Image.Image, cap: int | None) -> tuple[bytes, str, tuple[int, int]]:
    """Lower quality first; when even the lowest cannot fit (estimated from the first try, to spare
    a ladder of slow encodes of a big picture), smaller at a fixed quality."""
    encoded = _encode(image, "JPEG", quality=JPEG_QUALITIES[0])
    if cap is None or len(encoded) <= cap:
        return encoded, "JPEG", image.size
    estimate = len(encoded) * DOWNSCALED_SIZE_RATIO
    if len(encoded) <= cap * QUALITY_LADDER_REACH:
        for quality in JPEG_QUALITIES[1:]:
            encoded = _encode(image, "JPEG", quality=quality)
            if len(encoded) <= cap:
                return encoded, "JPEG", image.size
        estimate = len(encoded)
    return _fit_jpeg_by_size(image, cap, estimate)


def _fit_jpeg_by_size(
    original: Image.Image, cap: int, estimate: float
) -> tuple[bytes, str, tuple[int, int]]:
    """The largest downscale (within a few encodes) whose JPEG fits: estimate the scale from the
    byte count, then bisect between the largest size that fits and the smallest that did not."""
    fits_at, fails_at = 0.0, 1.0
    best: tuple[bytes, tuple[int, int]] | None = None
    last: tuple[bytes, tuple[int, int]] = (b"", original.size)
    scale = min(0.95, math.sqrt(cap / estimate) * 0.92)
    for _ in range(MAX_DOWNSCALE_STEPS):
        smaller = _scaled(original, scale)
        encoded = _encode(smaller, "JPEG", quality=DOWNSCALED_JPEG_QUALITY)
        last = (encoded, smaller.size)
        if len(encoded) <= cap:
            best, fits_at = last, scale
            if len(encoded) >= cap * GOOD_ENOUGH_SHARE:
                break
        else:
            fails_at = scale
            if min(smaller.size) <= MIN_SIDE_PX:
                break
        if best is None:
            scale *= min(0.95, math.sqrt(cap / len(encoded)) * 0.92)
        else:
            scale = math.sqrt(fits_at * fails_at)
    encoded, size = best or last
    return encoded, "JPEG", size


def _encode(image: Image.Image, fmt: str, *, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        _flattened(image).save(buffer, format="JPEG", quality=quality)
    else:
        keep = image.mode in ("1", "L", "LA", "RGB", "RGBA", "P", "I;16")
        (image if keep else image.convert("RGBA" if _has_alpha(image) else "RGB")).save(
            buffer, format="PNG"
        )
    return buffer.getvalue()


def _flattened(image: Image.Image) -> Image.Image:
    """RGB (or L) for JPEG: transparency becomes white, as most viewers show it."""
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("L" if image.mode in ("1", "I", "I;16", "F") else "RGB")


def _has_alpha(image: Image.Image) -> bool:
    """True when some pixel is not fully opaque (an opaque RGBA scan needs no PNG)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        extrema = alpha.getextrema()
        return isinstance(extrema[0], int | float) and extrema[0] < 255
    return False


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    width = max(1, math.floor(image.width * factor))
    height = max(1, math.floor(image.height * factor))
    if image.mode == "P":
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    # reducing_gap: a fast integer reduction first, then Lanczos; much quicker for big pictures.
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _kb(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


# --- parameters -------------------------------------------------------------------------------


def _prepare_params(
    params: Mapping[str, Any], caps: ProviderCapabilities, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in caps.params:
            notes.append(f"{name} dropped: not accepted")
            continue
        bounds = caps.param_ranges.get(name)
        number = _number(value)
        if bounds is None or number is None:
            out[name] = value
            continue
        low, high = bounds
        clamped = min(max(number, low), high)
        if clamped == number:
            out[name] = value
            continue
        if isinstance(value, int) and float(clamped).is_integer():
            clamped = int(clamped)
        out[name] = clamped
        notes.append(f"{name} {value} clamped to {clamped}")
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None
