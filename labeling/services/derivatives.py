"""What is served: WebP thumbnails and a full-size copy, orientation applied, metadata stripped.

Each derivative is made once. Makers take the image's row lock, so concurrent callers (grid
requests racing the import task, two workers) wait and find the file made instead of decoding
the original again each. The full-size copy is never made on a request: the request queues
`image_make_display` once and is answered with the large thumbnail until the copy exists.

A failure is recorded on the image's row (``display_error``, ``display_failed_at``), shown on
the image's page, and not retried by every request. ``image_derivatives_failure_clear`` lets it
be tried again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from labeling import imaging
from labeling.models import Image

logger = logging.getLogger(__name__)

# How long a queued full-size copy keeps later requests from queueing it again. Past it (a lost
# message) the next request queues it once more.
DISPLAY_QUEUED_S = 600


class DerivativeFailed(Exception):
    """The derivative cannot be made from this file; `reason` is recorded and shown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def image_derivatives_failure(*, image: Image) -> str:
    """Why this image's previews could not be made ('' when nothing failed). Read from the row,
    not the instance: another process may have recorded it since the instance was loaded."""
    return Image.objects.filter(pk=image.pk).values_list("display_error", flat=True).first() or ""


def image_derivatives_failure_clear(*, image: Image) -> None:
    Image.objects.filter(pk=image.pk).update(display_error="", display_failed_at=None)
    image.display_error, image.display_failed_at = "", None


def _record_failure(image: Image, reason: str) -> None:
    logger.warning("image %s: derivatives failed: %s", image.pk, reason)
    now = timezone.now()
    reason = reason[:2000]
    Image.objects.filter(pk=image.pk).update(display_error=reason, display_failed_at=now)
    image.display_error, image.display_failed_at = reason, now


def _read_original(image: Image) -> bytes:
    # A missing original (storage moved) raises OSError and is not recorded: it is not the
    # file's fault, and the views answer it with a 404.
    with image.file.open("rb") as fh:
        return fh.read()


def _make_or_record(image: Image, make) -> str:
    """Make it, under the caller's row lock: '' when made, else why not, recorded on the row in
    the caller's transaction (so the caller raises DerivativeFailed once that has committed: an
    exception out of the transaction would roll the record back)."""
    failure = image_derivatives_failure(image=image)
    if failure:
        return failure
    data = _read_original(image)
    try:
        make(data)
    except MemoryError:
        reason = "the image needs more memory to convert than this server has"
    except imaging.ImageRejected as exc:
        reason = exc.reason
    except Exception as exc:  # noqa: BLE001 - decoders and encoders raise anything; recorded
        logger.exception("image %s: derivative failed", image.pk)
        reason = f"{exc.__class__.__name__}: {exc}"
    else:
        return ""
    _record_failure(image, reason)
    return reason


def image_make_derivatives(*, image: Image) -> None:
    """Both thumbnail sizes, once; safe to run twice and concurrently (it fills what is missing).
    Raises DerivativeFailed when they cannot be made (recorded; later calls fail at once)."""
    if image.thumb_small and image.thumb_large:
        return
    with transaction.atomic():
        row = Image.objects.select_for_update().only("thumb_small", "thumb_large").get(pk=image.pk)
        if row.thumb_small and row.thumb_large:
            image.thumb_small, image.thumb_large = row.thumb_small.name, row.thumb_large.name
            return

        def make(data: bytes) -> None:
            pixels = imaging.open_for_derivatives(
                data,
                target_side=settings.THUMBNAIL_SIZES["large"],
                max_decoded_bytes=settings.INGEST_MAX_DECODED_BYTES,
            )
            image_thumbnails_save(image=image, pixels=pixels)

        failure = _make_or_record(image, make)
    if failure:
        raise DerivativeFailed(failure)


@dataclass(frozen=True)
class Thumbnails:
    """Both thumbnail files, encoded and not yet stored."""

    large: bytes
    large_ext: str
    small: bytes


def thumbnails_encode(pixels: PILImage.Image) -> Thumbnails:
    """Both sizes from already decoded pixels (as stored: orientation is applied here)."""
    sizes = settings.THUMBNAIL_SIZES
    img = imaging.normalise_for_display(pixels)
    # One decode serves both sizes; the small one is cut from the large one's pixels.
    large_img = imaging.resize_thumbnail(img, sizes["large"])
    large, large_ext = imaging.encode_large_thumbnail(large_img)
    small = imaging.encode_webp(imaging.resize_thumbnail(large_img, sizes["small"]), max_side=None)
    return Thumbnails(large=large, large_ext=large_ext, small=small)


def image_thumbnails_store(*, image: Image, thumbnails: Thumbnails) -> None:
    """Write both files to storage and set the image's fields (the row is not saved here: an
    import stores them before it inserts the row, so one INSERT carries their names)."""
    base = image.sha256
    image.thumb_large.save(
        f"{base[:2]}/{base}-l.{thumbnails.large_ext}", ContentFile(thumbnails.large), save=False
    )
    image.thumb_small.save(f"{base[:2]}/{base}-s.webp", ContentFile(thumbnails.small), save=False)


def image_thumbnails_save(*, image: Image, pixels: PILImage.Image) -> None:
    """Both sizes from already decoded pixels, stored, and the row updated."""
    image_thumbnails_store(image=image, thumbnails=thumbnails_encode(pixels))
    Image.objects.filter(pk=image.pk).update(
        thumb_large=image.thumb_large.name, thumb_small=image.thumb_small.name
    )


def image_display_file(*, image: Image) -> str:
    """Storage name of the full-size served copy, made here if missing (tasks and exports call
    this; requests call `image_display_request`). Always WebP, downscaled where the encoder
    refuses the full size. Raises DerivativeFailed when it cannot be made."""
    if image.display:
        return image.display.name
    with transaction.atomic():
        row = Image.objects.select_for_update().only("display").get(pk=image.pk)
        if row.display:
            image.display = row.display.name
            return image.display.name

        def make(data: bytes) -> None:
            pixels = imaging.open_for_derivatives(
                data, target_side=0, max_decoded_bytes=settings.INGEST_MAX_DECODED_BYTES
            )
            encoded = imaging.encode_display(imaging.normalise_for_display(pixels))
            base = image.sha256
            image.display.save(f"{base[:2]}/{base}-full.webp", ContentFile(encoded), save=False)
            Image.objects.filter(pk=image.pk).update(display=image.display.name)

        failure = _make_or_record(image, make)
    if failure:
        raise DerivativeFailed(failure)
    return image.display.name


def image_display_request(*, image: Image) -> None:
    """A page wants the full-size copy: queue its making once (not once per request). Callers
    show the large thumbnail meanwhile. With Redis down nothing is queued; the next request
    after it is back queues it."""
    if image.display:
        return
    from labeling import tasks

    # The creation time tells this row from another database's (a restored backup, tests).
    key = f"labeling:display-queued:{image.pk}:{image.created_at.timestamp()}"
    try:
        if not cache.add(key, "1", timeout=DISPLAY_QUEUED_S):
            return
        tasks.image_make_display.delay(image_id=image.pk)
    except Exception:  # noqa: BLE001 - the broker or cache is down: the thumbnail is served
        logger.warning("image %s: could not queue the full-size copy", image.pk, exc_info=True)
        with contextlib.suppress(Exception):
            cache.delete(key)


def display_content_type(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower()
    return {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}.get(ext, "image/webp")
