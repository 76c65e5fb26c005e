"""What is served: WebP thumbnails and a full-size copy, orientation applied, metadata stripped."""

from __future__ import annotations

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from labeling import imaging
from labeling.models import Image


def image_make_derivatives(*, image: Image) -> None:
    """Both thumbnail sizes; safe to run twice (it only fills what is missing)."""
    if image.thumb_small and image.thumb_large:
        return
    with image.file.open("rb") as fh:
        data = fh.read()
    pixels = imaging.open_for_derivatives(data, target_side=settings.THUMBNAIL_SIZES["large"])
    image_thumbnails_save(image=image, pixels=pixels)


def image_thumbnails_save(*, image: Image, pixels: PILImage.Image) -> None:
    """Both sizes from already decoded pixels (as stored: orientation is applied here)."""
    sizes = settings.THUMBNAIL_SIZES
    img = imaging.normalise_for_display(pixels)
    # One decode serves both sizes; the small one is cut from the large one's pixels.
    large_img = imaging.resize_to_fit(img, sizes["large"])
    large = imaging.encode_webp(large_img, max_side=None)
    small = imaging.encode_webp(large_img, max_side=sizes["small"])
    base = image.sha256
    image.thumb_large.save(f"{base[:2]}/{base}-l.webp", ContentFile(large), save=False)
    image.thumb_small.save(f"{base[:2]}/{base}-s.webp", ContentFile(small), save=False)
    Image.objects.filter(pk=image.pk).update(
        thumb_large=image.thumb_large.name, thumb_small=image.thumb_small.name
    )


def image_display_file(*, image: Image) -> str:
    """Storage name of the full-size served copy, made on first request (most are never opened)."""
    if image.display:
        return image.display.name
    with image.file.open("rb") as fh:
        data = fh.read()
    img = imaging.normalise_for_display(imaging.open_for_derivatives(data, target_side=0))
    encoded = imaging.encode_webp(img, max_side=None, quality=90)
    base = image.sha256
    image.display.save(f"{base[:2]}/{base}-full.webp", ContentFile(encoded), save=False)
    Image.objects.filter(pk=image.pk).update(display=image.display.name)
    return image.display.name
