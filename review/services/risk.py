"""Risk flags of stored images: compute them, keep them current, let admins correct them."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from PIL import Image as PILImage

from labeling.models import Image, Project
from review.models import RiskCategory, RiskCorrection, RiskFlag
from review.risk import ANALYSER_VERSION, CATEGORIES, DEFAULT_THRESHOLD, analyse_file, combine
from review.services.items import review_items_refresh

MAX_CAPTIONS = 20  # the latest captions are enough to know what the models think


def risk_thresholds_for(*, project: Project) -> dict[str, float]:
    """Flag thresholds: 0.5, then ``settings.RISK_THRESHOLDS``, then the project's own.

    The project's own come from ``ReviewPolicy.risk_thresholds`` (a JSON object category ->
    0..1) when that field exists.
    """
    thresholds = {c: DEFAULT_THRESHOLD for c in CATEGORIES}
    thresholds.update(_valid(getattr(settings, "RISK_THRESHOLDS", None) or {}))
    from review.models import ReviewPolicy

    policy = ReviewPolicy.objects.filter(project=project).first()
    thresholds.update(_valid(getattr(policy, "risk_thresholds", None) or {}))
    return thresholds


def _valid(raw: dict) -> dict[str, float]:
    out = {}
    for category, value in raw.items():
        if category in CATEGORIES and isinstance(value, int | float) and 0 <= value <= 1:
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


def risk_flags_compute(
    *, image: Image, thresholds: dict[str, float] | None = None
) -> list[RiskFlag]:
    """Analyse the stored file with the captions it has so far; write one flag per category.

    Safe to run twice (one row per image and category, overwritten). Open review items of the
    image get their risk, required reviews and priority re-applied.
    """
    thresholds = thresholds or risk_thresholds_for(project=image.project)
    captions = _caption_texts(image)
    try:
        with image.file.open("rb") as fh:
            report = analyse_file(fh)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        # A file that cannot be read gets unflagged rows with the reason, so it is not retried
        # forever; an admin can still flag it by hand.
        reason = f"image could not be analysed: {exc.__class__.__name__}"
        values = {c: (0.0, False, reason) for c in CATEGORIES}
    else:
        result = combine(report, captions, thresholds)
        values = {c: (result.scores[c], c in result.flags, result.reasons[c]) for c in CATEGORIES}
    flags = []
    with transaction.atomic():
        for category, (score, flagged, reason) in values.items():
            flag, _ = RiskFlag.objects.update_or_create(
                image=image,
                category=category,
                defaults={
                    "score": score,
                    "flagged": flagged,
                    "reason": reason[:500],
                    "analyser_version": ANALYSER_VERSION,
                },
            )
            flags.append(flag)
        review_items_refresh(image_ids=[image.pk])
    return flags


def risk_flags_stale(*, limit: int = 500) -> list[int]:
    """Ids of images whose flags are missing or came from another analyser version."""
    current = RiskFlag.objects.filter(analyser_version=ANALYSER_VERSION).values("image_id")
    return list(
        Image.objects.exclude(pk__in=current).order_by("pk").values_list("pk", flat=True)[:limit]
    )


def risk_flags_refresh_stale(*, limit: int = 500) -> int:
    """Enqueue a recomputation for every image the current analyser has not seen yet."""
    from review import tasks

    ids = risk_flags_stale(limit=limit)
    for image_id in ids:
        tasks.risk_flags_compute.delay_on_commit(image_id=image_id)
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


def risk_corrections_count(*, project: Project) -> dict[str, dict[str, int]]:
    """How often admins corrected the analyser in this project, per category and direction.

    ``added``: flagged by an admin where the analyser had not flagged it; ``removed``: the
    reverse; ``confirmed``: the admin agreed with the analyser.
    """
    counts = {c: {"added": 0, "removed": 0, "confirmed": 0} for c in CATEGORIES}
    analyser = {
        (image_id, category): flagged
        for image_id, category, flagged in RiskFlag.objects.filter(
            image__project=project
        ).values_list("image_id", "category", "flagged")
    }
    rows = (
        RiskCorrection.objects.filter(image__project=project)
        .values("image_id", "category", "flagged")
        .annotate(n=Count("id"))
    )
    for row in rows:
        said = analyser.get((row["image_id"], row["category"]), False)
        key = "confirmed" if row["flagged"] == said else ("added" if row["flagged"] else "removed")
        counts[row["category"]][key] += row["n"]
    return counts
