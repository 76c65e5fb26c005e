"""Celery tasks of the labeling app: thin wrappers that load by id and call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from labeling.models import Image, ImportBatch

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=2)
def image_make_derivatives(*, image_id: int) -> None:
    from labeling.services.derivatives import DerivativeFailed
    from labeling.services.derivatives import image_make_derivatives as make

    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return
    try:
        make(image=image)
    except DerivativeFailed:
        return  # recorded on the image and shown on its page


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def image_make_display(*, image_id: int) -> None:
    """The full-size served copy, off the request path (pages show the large thumbnail)."""
    from labeling.services.derivatives import DerivativeFailed, image_display_file

    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.display:
        return
    try:
        image_display_file(image=image)
    except DerivativeFailed:
        return  # recorded on the image and shown on its page


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def batch_process(*, batch_id: int) -> None:
    """Zip archives and URL lists uploaded in the browser run here; progress is in the batch row."""
    from labeling.services.batches import batch_process_payload

    batch = ImportBatch.objects.filter(pk=batch_id).first()
    if batch is None or batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED):
        return
    batch_process_payload(batch=batch)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def export_run(*, export_id: int) -> None:
    """One export job on the `default` queue; progress and the file are on the Export row."""
    from labeling.models import Export
    from labeling.services.export import export_run as run

    export = Export.objects.select_related("project").filter(pk=export_id).first()
    if export is None or not export.is_active:
        return
    run(export=export)
