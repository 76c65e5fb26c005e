"""Search a project's images by what was said about them: approved captions, model captions, file
name and file metadata.

PostgreSQL: a ``tsvector`` column on ``labeling_image`` (``search_vector``, GIN-indexed), kept up
to date by triggers on images, captions and review items (migration 0003_image_search), queried
with ``websearch_to_tsquery`` so people can type "quoted phrases", OR and -exclusions. Weights:
approved text (A) > model captions (B) > file name (C) > format, source and path (D).

SQLite (the first-run default) has no full-text search here: every word must appear somewhere
(case-insensitive substring), newest first.
"""

from __future__ import annotations

import shlex

from django.db import connection
from django.db.models import BooleanField, DecimalField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from labeling.models import Image, Project

MAX_QUERY_CHARS = 200
TS_CONFIG = "english"


def search_is_full_text() -> bool:
    return connection.vendor == "postgresql"


def image_search(*, project: Project, query: str) -> QuerySet[Image]:
    """The project's images matching ``query``, best first (``rank``, then newest)."""
    query = query.strip()[:MAX_QUERY_CHARS]
    base = Image.objects.filter(project=project).only(
        "id",
        "project_id",
        "batch_id",
        "original_name",
        "width",
        "height",
        "format",
        "status",
        "thumb_small",
        "near_duplicate_of_id",
        "near_duplicate_distance",
    )
    if not query:
        return base.none()
    if search_is_full_text():
        tsquery = f"websearch_to_tsquery('{TS_CONFIG}', %s)"
        return (
            base.filter(
                RawSQL(  # noqa: S611 - constant SQL; the user's text is a parameter
                    f"labeling_image.search_vector @@ {tsquery}",
                    [query],
                    output_field=BooleanField(),
                )
            )
            # Rounded so that a client's cursor can name a rank exactly.
            .annotate(
                rank=RawSQL(  # noqa: S611 - constant SQL; the user's text is a parameter
                    f"round(ts_rank(labeling_image.search_vector, {tsquery})::numeric, 6)",
                    [query],
                    output_field=DecimalField(max_digits=12, decimal_places=6),
                )
            )
            .order_by("-rank", "-id")
        )
    return _substring_search(base, query).order_by("-id")


def _substring_search(base: QuerySet[Image], query: str) -> QuerySet[Image]:
    from review.models import ReviewItem
    from routing.models import Caption

    try:
        words = shlex.split(query)
    except ValueError:  # an unbalanced quote
        words = query.split()
    for word in [w for w in words if w.strip()][:10]:
        captions = Caption.objects.filter(
            image=OuterRef("pk"), status=Caption.Status.SUCCEEDED, text__icontains=word
        )
        approved = ReviewItem.objects.filter(
            image=OuterRef("pk"), state=ReviewItem.State.APPROVED, final_text__icontains=word
        )
        base = base.filter(
            Q(original_name__icontains=word)
            | Q(source_detail__icontains=word)
            | Q(Exists(captions))
            | Q(Exists(approved))
        )
    return base
