"""Search a project's images by what was said about them: approved captions, model captions, file
name and file metadata.

PostgreSQL: a ``tsvector`` column on ``labeling_image`` (``search_vector``, GIN-indexed), kept up
to date by triggers on images, captions and review items (migration 0003_image_search), queried
with ``websearch_to_tsquery`` so people can type "quoted phrases", OR and -exclusions. Weights:
approved text (A) > model captions (B) > file name (C) > format, source and path (D). A model's
one-word answer to the risk analyser's question is not a caption and is not indexed (0006).

Ranking reads every match's vector from the table (the GIN index finds rows, it cannot order
them), so its cost grows with the number of matches: about 4-9 ms per 1,000 at a million images
(benchmarks/README.md, "Image search"). Hence two orders, decided on a query's first page:

- **best first** (``rank``) when at most ``BROAD_MATCHES`` images match: every match is ranked,
  exactly, and the count is exact;
- **newest first** (``newest``) when more match (a common word): a count that stops at
  ``BROAD_MATCHES + 1`` says so, then the newest matches are read in index order
  (``image_project_recent``) until a page is full, which costs about page size / share of
  images matching, not the number of matches. Nothing is called a rank: pages and the API say
  the order is newest first and that more words would rank them.

A cursor carries its order, so a query keeps the order of its first page while images arrive.

SQLite (the first-run default) has no full-text search here: every word must appear somewhere
(case-insensitive substring), newest first.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, DecimalField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from labeling.models import Image, Project

MAX_QUERY_CHARS = 200
TS_CONFIG = "english"
# Above this many matches a query is shown newest first instead of ranked (module attribute:
# read at each call).
BROAD_MATCHES = 5_000
RANK = "rank"
NEWEST = "newest"

_TSQUERY = f"websearch_to_tsquery('{TS_CONFIG}', %s)"
_FIELDS = (
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


class BadCursor(ValueError):
    """A cursor this module did not write."""


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last (rank, id), or its last id when newest first."""

    order: str
    last_id: int
    rank: Decimal | None = None

    def encode(self) -> str:
        rank = None if self.rank is None else str(self.rank)
        return base64.urlsafe_b64encode(
            json.dumps({"r": rank, "i": self.last_id}).encode()
        ).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text.encode()))
            last_id = int(data["i"])
            if data["r"] is None:
                return cls(order=NEWEST, last_id=last_id)
            rank = Decimal(str(data["r"]))
            if not rank.is_finite():
                raise ValueError(rank)
        except (ValueError, TypeError, KeyError, ArithmeticError, binascii.Error) as exc:
            raise BadCursor(text) from exc
        return cls(order=RANK, last_id=last_id, rank=rank)


@dataclass(frozen=True)
class SearchPage:
    images: list[Image]  # ``rank`` set on each (None when newest first)
    order: str  # RANK (best first) or NEWEST
    # Exact number of matches on a query's first page; None on later pages (not counted again)
    # and when newest first because more than BROAD_MATCHES match.
    matches: int | None
    next_cursor: Cursor | None


def search_is_full_text() -> bool:
    return connection.vendor == "postgresql"


def _base(project: Project) -> QuerySet[Image]:
    return Image.objects.filter(project=project).only(*_FIELDS)


def _clean(query: str) -> str:
    return query.strip()[:MAX_QUERY_CHARS]


def _matching(base: QuerySet[Image], query: str, *, indexed: bool = True) -> QuerySet[Image]:
    if not search_is_full_text():
        return _substring_search(base, query)
    # ``@@`` lets the planner use the GIN index (a bitmap of every match); the function form of
    # the same test does not, so a newest-first page walks ``image_project_recent`` and stops
    # once the page is full instead of fetching every match first.
    vector = "labeling_image.search_vector"
    test = f"{vector} @@ {_TSQUERY}" if indexed else f"ts_match_vq({vector}, {_TSQUERY})"
    return base.filter(
        RawSQL(test, [query], output_field=BooleanField())  # noqa: S611 - the text is a parameter
    )


def image_search(*, project: Project, query: str) -> QuerySet[Image]:
    """The project's images matching ``query``, best first (``rank``, then newest): every match
    ranked, whatever their number (see ``image_search_page`` for what pages use)."""
    query = _clean(query)
    base = _base(project)
    if not query:
        return base.none()
    if search_is_full_text():
        return _ranked(_matching(base, query), query)
    return _substring_search(base, query).order_by("-id")


def _ranked(matches: QuerySet[Image], query: str) -> QuerySet[Image]:
    # Rounded so that a client's cursor can name a rank exactly.
    return matches.annotate(
        rank=RawSQL(  # noqa: S611 - constant SQL; the user's text is a parameter
            f"round(ts_rank(labeling_image.search_vector, {_TSQUERY})::numeric, 6)",
            [query],
            output_field=DecimalField(max_digits=12, decimal_places=6),
        )
    ).order_by("-rank", "-id")


def matches_count(*, project: Project, query: str, cap: int) -> int:
    """How many images match, counting no further than ``cap + 1``."""
    query = _clean(query)
    if not query:
        return 0
    return _matching(Image.objects.filter(project=project), query)[: cap + 1].count()


def image_search_page(
    *, project: Project, query: str, size: int, cursor: Cursor | None = None
) -> SearchPage:
    """One page of results. The first page (no cursor) decides the order: best first when at
    most ``BROAD_MATCHES`` images match, newest first otherwise; a cursor keeps its order."""
    query = _clean(query)
    base = _base(project)
    if not query:
        return SearchPage(images=[], order=RANK, matches=0, next_cursor=None)
    full_text = search_is_full_text()
    matches = None
    if cursor is not None:
        order = cursor.order if full_text else NEWEST
    elif full_text:
        counted, ranked = _first_ranked(project, query, size=size, cap=BROAD_MATCHES)
        if counted <= BROAD_MATCHES:
            return _page(ranked, RANK, size, matches=counted)
        order = NEWEST
    else:
        counted = matches_count(project=project, query=query, cap=BROAD_MATCHES)
        order, matches = NEWEST, (None if counted > BROAD_MATCHES else counted)
    if order == RANK:
        rows = _ranked(_matching(base, query), query)
        if cursor is not None:
            rows = rows.filter(Q(rank__lt=cursor.rank) | Q(rank=cursor.rank, id__lt=cursor.last_id))
    else:
        rows = _matching(base, query, indexed=False).order_by("-id")
        if cursor is not None:
            rows = rows.filter(id__lt=cursor.last_id)
    return _page(list(rows[: size + 1]), order, size, matches=matches)


def _page(images: list[Image], order: str, size: int, *, matches: int | None) -> SearchPage:
    """``images``: up to ``size + 1`` rows in order (one more says there is a next page)."""
    next_cursor = None
    if len(images) > size:
        images = images[:size]
        last = images[-1]
        next_cursor = Cursor(
            order=order, last_id=last.pk, rank=last.rank if order == RANK else None
        )
    if order == NEWEST:
        for image in images:
            image.rank = None
    return SearchPage(images=images, order=order, matches=matches, next_cursor=next_cursor)


# A query's first page, best first, in one pass over at most ``cap + 1`` matches: their number
# (the window count) and the best ``size + 1`` of them. Over ``cap`` the ranking is of an
# arbitrary subset and is thrown away (the caller goes newest first); at most ``cap`` it is
# every match, ranked exactly as ``_ranked`` ranks them.
_COLUMNS = ", ".join(_FIELDS)
_FIRST_RANKED_SQL = f"""
SELECT {_COLUMNS}, rank, total FROM (
    SELECT {_COLUMNS}, round(ts_rank(v, {_TSQUERY})::numeric, 6) AS rank,
        count(*) OVER () AS total
    FROM (
        SELECT {_COLUMNS}, search_vector AS v FROM labeling_image
        WHERE project_id = %s AND search_vector @@ {_TSQUERY}
        LIMIT %s
    ) AS m
) AS r
ORDER BY rank DESC, id DESC
LIMIT %s
"""  # noqa: S608 - constant SQL; the user's text is a parameter


def _first_ranked(project: Project, query: str, *, size: int, cap: int) -> tuple[int, list[Image]]:
    rows = list(
        Image.objects.raw(  # noqa: S611 - constant SQL; the user's text is a parameter
            _FIRST_RANKED_SQL, [query, project.pk, query, cap + 1, size + 1]
        )
    )
    total = rows[0].total if rows else 0
    return total, ([] if total > cap else rows)


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
