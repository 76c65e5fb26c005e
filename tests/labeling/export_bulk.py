"""Many approved captions at once, for the export memory/cancel tests and benchmarks/export.py.

Rows are copies of one template row made by the ORM (so every default other apps add is filled
in), multiplied in SQL with generate_series: a million rows load in well under a minute.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

# Text in the shape of a real caption, with what tends to break exporters.
CAPTION_SQL = (
    "'Photo ' || {n} || ': a café on a corner, \"Le Zinc\", two people; 🐈 on a chair, "
    "قطة' || CASE WHEN {n} %% 7 = 0 THEN E'\\nsecond line, with a comma' ELSE '' END"
)


def _copy_rows(model, template_pk: int, overrides: dict[str, str], source: str, params: list):
    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    exprs = [overrides.get(c, f't."{c}"') for c in columns]
    quoted = ", ".join(f'"{c}"' for c in columns)
    select = ", ".join(exprs)  # columns from the model, expressions from this module
    sql = f'INSERT INTO "{table}" ({quoted}) SELECT {select} FROM "{table}" t {source}'  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')


_TRIGGERED = ("labeling_image", "routing_caption", "review_reviewitem")


@contextmanager
def _user_triggers_off():
    """Other features' row triggers (the image search vector) off while loading: with them a
    million rows take the better part of an hour. Foreign keys and constraints stay checked."""
    with connection.cursor() as cursor:
        for table in _TRIGGERED:
            cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            # The deferred foreign-key checks run now; ALTER TABLE refuses while they are pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in _TRIGGERED:
                cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')


def seed_approved(project, n: int, *, model_name: str = "blip2-opt-2.7b") -> None:
    """n images of `project`, each with one caption approved as-is. The project's images must
    all come from here (captions are matched to images by id, after the template's)."""
    from labeling.models import Image
    from review.models import ReviewItem
    from routing.models import Caption

    now = timezone.now()
    with transaction.atomic(), _user_triggers_off():
        image = Image.objects.create(
            project=project,
            file="originals/bulk/template.jpg",
            sha256="t" * 64,
            phash=0,
            width=640,
            height=480,
            format="JPEG",
            mode="RGB",
            byte_size=50_000,
            original_name="template.jpg",
            source=Image.Source.UPLOAD,
            status=Image.Status.APPROVED,
        )
        caption = Caption.objects.create(
            image=image,
            origin=Caption.Origin.IMPORTED,
            model_name=model_name,
            status=Caption.Status.SUCCEEDED,
            text="template",
            finished_at=now,
        )
        item = ReviewItem.objects.create(
            caption=caption,
            image=image,
            project=project,
            state=ReviewItem.State.APPROVED,
            queued_at=now,
            final_text="template",
            edited=False,
            char_distance=0,
            word_distance=0,
            char_effort=0.0,
            word_effort=0.0,
            decided_at=now,
        )
        tag = f"{project.pk}-{Image.objects.count()}"
        _copy_rows(
            Image,
            image.pk,
            {
                "sha256": f"md5('{tag}a' || g) || md5('{tag}b' || g)",
                "phash": "g",
                "original_name": "'img-' || g || '.jpg'",
                "file": "'originals/bulk/' || g || '.jpg'",
            },
            "CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
            [n, image.pk],
        )
        _analyze("labeling_image")  # fresh statistics, or the planner picks nested loops
        _copy_rows(
            Caption,
            caption.pk,
            {"image_id": "i.id", "text": CAPTION_SQL.format(n="i.id")},
            "CROSS JOIN labeling_image i WHERE t.id = %s AND i.project_id = %s AND i.id > %s",
            [caption.pk, project.pk, image.pk],
        )
        _analyze("routing_caption")
        _copy_rows(
            ReviewItem,
            item.pk,
            {"caption_id": "c.id", "image_id": "c.image_id", "final_text": "c.text"},
            "CROSS JOIN routing_caption c WHERE t.id = %s AND c.image_id > %s AND c.id > %s",
            [item.pk, image.pk, caption.pk],
        )
        image.delete()  # the template, its caption and its item
