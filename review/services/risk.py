"""Risk flags of stored images: compute them, keep them current, let admins correct them."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Count, Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from PIL import Image as PILImage

from labeling.models import Image, Project
from review.models import ReviewPolicy, RiskCategory, RiskCorrection, RiskFlag
from review.risk import ANALYSER_VERSION, CATEGORIES, DEFAULT_THRESHOLD, analyse_file, combine
from review.risk.analyser import RiskReport
from review.risk.captions import RISK_QUESTION
from review.services.items import review_items_refresh

MAX_CAPTIONS = 20  # the latest captions are enough to know what the models think
THRESHOLD_CHUNK = 500  # images per task when a project's thresholds change
UNREADABLE = "image could not be analysed"
BORDERLINE_FLOOR = 0.2  # below this, a model's answer cannot lift an image to a flag


def risk_thresholds_default() -> dict[str, float]:
    """Thresholds of a project that set none: 0.5, then ``settings.RISK_THRESHOLDS``."""
    thresholds = {c: DEFAULT_THRESHOLD for c in CATEGORIES}
    thresholds.update(_valid(getattr(settings, "RISK_THRESHOLDS", None) or {}))
    return thresholds


def risk_thresholds_for(*, project: Project) -> dict[str, float]:
    """Flag thresholds: the defaults, then the project's own (``ReviewPolicy.risk_thresholds``,
    a JSON object category -> 0..1; invalid entries are ignored)."""
    thresholds = risk_thresholds_default()
    own = (
        ReviewPolicy.objects.filter(project=project)
        .values_list("risk_thresholds", flat=True)
        .first()
    )
    thresholds.update(_valid(own or {}))
    return thresholds


def _valid(raw: dict) -> dict[str, float]:
    out = {}
    for category, value in raw.items():
        if category not in CATEGORIES or isinstance(value, bool):
            continue
        if isinstance(value, int | float) and 0 <= value <= 1:
            out[category] = float(value)
    return out


def _caption_texts(image: Image) -> list[str]:
    from routing.models import Caption

    texts = (
        Caption.objects.filter(image=image, status=Caption.Status.SUCCEEDED, task="caption")
        .exclude(text="")
        .order_by("-id")
        .values_list("text", flat=True)[:MAX_CAPTIONS]
    )
    return list(texts)


def _model_answer(image: Image) -> str | None:
    """The latest succeeded answer of a model to ``RISK_QUESTION`` about ``image``."""
    from routing.models import Caption

    return (
        Caption.objects.filter(
            image=image, status=Caption.Status.SUCCEEDED, task="question", prompt=RISK_QUESTION
        )
        .order_by("-id")
        .values_list("text", flat=True)
        .first()
    )


def _in_ask_scope(scope: str, report: RiskReport, thresholds: dict[str, float]) -> bool:
    if scope == ReviewPolicy.AskScope.ALL:
        return True
    return any(
        BORDERLINE_FLOOR <= report.scores.get(c, 0.0) < thresholds.get(c, DEFAULT_THRESHOLD)
        for c in CATEGORIES
    )


def risk_question_ask(
    *, image: Image, report: RiskReport, thresholds: dict[str, float]
) -> int | None:
    """Ask the project's default chain what kind of image this is, when the project opted in
    (``ReviewPolicy.risk_ask_model``) and the image is in its scope; the id of the new question
    caption, enqueued after commit, or None.

    At most once per image: an image that has a pending, running or succeeded answer on any
    chain is not asked again, and the caption's request key (unique while live) stops two
    computations racing. A failed question may be asked again by a later full analysis. Without
    a default chain nothing is asked. The answer is read by ``risk_flags_compute`` when the
    caption's success asks for the recompute.
    """
    from routing.models import Caption, Chain
    from routing.services.cache import request_key
    from routing.services.runs import caption_enqueue

    scope = (
        ReviewPolicy.objects.filter(project_id=image.project_id, risk_ask_model=True)
        .values_list("risk_ask_scope", flat=True)
        .first()
    )
    if scope is None or not _in_ask_scope(scope, report, thresholds):
        return None
    chain = Chain.objects.filter(project_id=image.project_id, is_default=True).first()
    if chain is None:
        return None
    live = (Caption.Status.PENDING, Caption.Status.RUNNING, Caption.Status.SUCCEEDED)
    asked = Caption.objects.filter(
        image=image, task="question", prompt=RISK_QUESTION, status__in=live
    )
    if asked.exists():
        return None
    key = request_key(
        image_id=image.pk,
        chain_id=chain.pk,
        route_id=None,
        task="question",
        prompt=RISK_QUESTION,
        params={},
    )
    try:
        with transaction.atomic():
            caption = Caption.objects.create(
                image=image,
                chain=chain,
                origin=Caption.Origin.MODEL,
                task="question",
                prompt=RISK_QUESTION,
                params={},
                request_key=key,
                status=Caption.Status.PENDING,
            )
    except IntegrityError:
        return None  # another computation asked it first
    transaction.on_commit(lambda: caption_enqueue(caption_ids=[caption.pk]))
    return caption.pk


def _stored_report(image: Image) -> RiskReport | None:
    """The current analyser's image-only scores of ``image``, when all categories have them."""
    rows = RiskFlag.objects.filter(
        image=image, analyser_version=ANALYSER_VERSION, image_score__isnull=False
    ).values_list("category", "image_score", "image_reason")
    scores = {category: score for category, score, _ in rows}
    if set(scores) != set(CATEGORIES):
        return None
    return RiskReport(scores=scores, reasons={category: why for category, _, why in rows})


def risk_flags_compute(
    *, image: Image, thresholds: dict[str, float] | None = None, reanalyse: bool = True
) -> list[RiskFlag]:
    """Combine the image's analysis with the captions it has so far; write one flag per category.

    ``reanalyse=False`` (a new caption arrived) reuses the image-only scores the current
    analyser stored, so only the cheap caption evidence is recomputed; the file is analysed
    when there are none. Safe to run twice (one row per image and category, overwritten).
    Open review items of the image get their risk, required reviews and priority re-applied.
    """
    thresholds = thresholds or risk_thresholds_for(project=image.project)
    captions = _caption_texts(image)
    answer = _model_answer(image)
    report = None if reanalyse else _stored_report(image)
    try:
        if report is None:
            with image.file.open("rb") as fh:
                report = analyse_file(fh)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        # A file that cannot be read gets unflagged rows with the reason, so it is not retried
        # forever; an admin can still flag it by hand.
        reason = f"{UNREADABLE}: {exc.__class__.__name__}"
        values = {c: (0.0, False, reason, None, "") for c in CATEGORIES}
    else:
        result = combine(report, captions, thresholds, answer=answer)
        values = {
            c: (
                result.scores[c],
                c in result.flags,
                result.reasons[c],
                report.scores[c],
                report.reasons[c],
            )
            for c in CATEGORIES
        }
    flags = []
    with transaction.atomic():
        for category, (score, flagged, reason, image_score, image_reason) in values.items():
            flag, _ = RiskFlag.objects.update_or_create(
                image=image,
                category=category,
                defaults={
                    "score": score,
                    "flagged": flagged,
                    "reason": reason[:500],
                    "image_score": image_score,
                    "image_reason": image_reason[:500],
                    "analyser_version": ANALYSER_VERSION,
                },
            )
            flags.append(flag)
        review_items_refresh(image_ids=[image.pk])
    if reanalyse and answer is None and report is not None:
        risk_question_ask(image=image, report=report, thresholds=thresholds)
    return flags


def risk_flags_stale(*, limit: int = 500, after_id: int = 0) -> list[int]:
    """Ids, in order after ``after_id``, of images whose flags are missing or came from another
    analyser version.

    ``NOT EXISTS``, which PostgreSQL runs as an anti-join probing the (image, category) index and
    stops at ``limit``; a ``NOT IN`` over every current flag row does not fit ``work_mem`` at a
    million images and is then checked row by row (it ran for minutes; see the README).
    """
    current = RiskFlag.objects.filter(image_id=OuterRef("pk"), analyser_version=ANALYSER_VERSION)
    stale = Image.objects.filter(pk__gt=after_id).filter(~Exists(current)).order_by("pk")
    return list(stale.values_list("pk", flat=True)[:limit])


REFRESH_CURSOR = f"risk:refresh-after:{ANALYSER_VERSION}"
REFRESH_CHUNK = 100  # images per message


def risk_flags_refresh_stale(*, limit: int | None = None) -> int:
    """Enqueue recomputations for the next ``limit`` images the current analyser has not seen.

    Periodic (beat). A cursor in the cache carries on after the last image enqueued, so a tick
    that comes before the previous ticks' messages are done does not enqueue the same images
    again; past the last image it starts over from the first, which also picks up any message
    that was lost. Images go ``REFRESH_CHUNK`` to a message.
    """
    from review import tasks

    limit = settings.RISK_REFRESH_PER_TICK if limit is None else limit
    after = int(cache.get(REFRESH_CURSOR) or 0)
    ids = risk_flags_stale(limit=limit, after_id=after)
    if not ids and after:
        ids = risk_flags_stale(limit=limit)
    for start in range(0, len(ids), REFRESH_CHUNK):
        tasks.risk_flags_compute_many.delay_on_commit(image_ids=ids[start : start + REFRESH_CHUNK])
    cache.set(REFRESH_CURSOR, ids[-1] if ids else 0, timeout=7 * 24 * 3600)
    return len(ids)


def risk_flag_correct(
    *, image: Image, category: str, flagged: bool, by, note: str = ""
) -> RiskCorrection:
    """An admin says whether the image really is ``category``; kept forever, latest one wins.

    The analyser's own row is left as it was (its score and reason stay visible and comparable);
    the correction overrides it wherever flags are read, and the queue follows at once.
    """
    if category not in RiskCategory.values:
        raise ValueError(f"unknown risk category {category!r}")
    with transaction.atomic():
        correction = RiskCorrection.objects.create(
            image=image, category=category, flagged=flagged, note=note[:500], corrected_by=by
        )
        review_items_refresh(image_ids=[image.pk])
    return correction


def risk_flags_correct_bulk(
    *, images: Iterable[Image], category: str, flagged: bool, by, note: str = ""
) -> int:
    """The same correction for many images at once (chosen in the grid); returns how many.
    One insert and one refresh of the queue for all of them."""
    if category not in RiskCategory.values:
        raise ValueError(f"unknown risk category {category!r}")
    image_ids = sorted({image.pk for image in images})
    with transaction.atomic():
        RiskCorrection.objects.bulk_create(
            RiskCorrection(
                image_id=image_id,
                category=category,
                flagged=flagged,
                note=note[:500],
                corrected_by=by,
            )
            for image_id in image_ids
        )
        review_items_refresh(image_ids=image_ids)
    return len(image_ids)


def risk_corrections_count(*, project: Project) -> dict[str, dict[str, int]]:
    """How often admins corrected the analyser in this project, per category and direction.

    ``added``: flagged by an admin where the analyser had not flagged it; ``removed``: the
    reverse; ``confirmed``: the admin agreed with the analyser. One grouped query over the
    corrections (never over every flag of the project), so the project page can show it.
    """
    counts = {c: {"added": 0, "removed": 0, "confirmed": 0} for c in CATEGORIES}
    analyser = RiskFlag.objects.filter(
        image_id=OuterRef("image_id"), category=OuterRef("category")
    ).values("flagged")[:1]
    rows = (
        RiskCorrection.objects.filter(image__project=project)
        .order_by()
        .annotate(said=Coalesce(Subquery(analyser), Value(False), output_field=BooleanField()))
        .values("category", "flagged", "said")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["category"] not in counts:
            continue
        said = row["said"]
        key = "confirmed" if row["flagged"] == said else ("added" if row["flagged"] else "removed")
        counts[row["category"]][key] += row["n"]
    return counts


def risk_flags_apply_thresholds(
    *, project: Project, after_id: int = 0, chunk: int = THRESHOLD_CHUNK
) -> int:
    """Bring one chunk of the project's images (ids above ``after_id``) in line with its
    current thresholds, then enqueue the next chunk; returns how many images this chunk had.

    Scores do not depend on thresholds, so current rows are re-thresholded in SQL rather than
    re-analysed; images without current rows (new, or an older analyser) are analysed in full.
    Thresholds are read when the chunk runs, so a second change while a walk is under way
    only makes the walk end on the newest values. Safe to run twice.
    """
    from review import tasks

    ids = list(
        Image.objects.filter(project=project, pk__gt=after_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:chunk]
    )
    if not ids:
        return 0
    thresholds = risk_thresholds_for(project=project)
    current = set(
        RiskFlag.objects.filter(image_id__in=ids, analyser_version=ANALYSER_VERSION)
        .values_list("image_id", flat=True)
        .distinct()
    )
    now = timezone.now()
    with transaction.atomic():
        rows = RiskFlag.objects.filter(image_id__in=current).exclude(reason__startswith=UNREADABLE)
        for category, threshold in thresholds.items():
            mine = rows.filter(category=category)
            mine.filter(score__gte=threshold, flagged=False).update(flagged=True, updated_at=now)
            mine.filter(score__lt=threshold, flagged=True).update(flagged=False, updated_at=now)
        review_items_refresh(image_ids=current, now=now)
    for image_id in ids:
        if image_id not in current:
            tasks.risk_flags_compute.delay_on_commit(image_id=image_id)
    if len(ids) == chunk:
        tasks.risk_flags_apply_thresholds.delay_on_commit(project_id=project.pk, after_id=ids[-1])
    return len(ids)
