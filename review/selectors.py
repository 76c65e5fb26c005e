"""Reads of the review app: the current lease, queue counts, risk, approved text, admin lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from labeling.models import Image, Membership, Project
from labeling.selectors import project_role
from review.models import (
    Lease,
    ReviewItem,
    ReviewPolicy,
    RiskCategory,
    RiskCorrection,
    RiskFlag,
    Verdict,
)
from review.risk.captions import RISK_QUESTION
from routing.models import Caption
from routing.policy import RiskSignal


def lease_seconds() -> int:
    return int(getattr(settings, "REVIEW_LEASE_SECONDS", 300))


def heartbeat_seconds() -> int:
    return int(getattr(settings, "REVIEW_HEARTBEAT_SECONDS", 60))


def undo_seconds() -> int:
    return int(getattr(settings, "REVIEW_UNDO_SECONDS", 30))


# --- Roles -------------------------------------------------------------------------------------


def can_review(*, project: Project, user) -> bool:
    return project_role(project=project, user=user) is not None


def can_manage(*, project: Project, user) -> bool:
    return project_role(project=project, user=user) == Membership.Role.ADMIN


def can_see_metrics(*, project: Project, user) -> bool:
    """Admins always; annotators where the project's review policy opens the comparison and
    dashboards to them; nobody else."""
    role = project_role(project=project, user=user)
    if role == Membership.Role.ADMIN:
        return True
    return role is not None and review_policy_for(project=project).annotators_see_metrics


def review_projects_for(*, user) -> QuerySet[Project]:
    """Projects whose queue the user may work: their own, or all of them for site admins."""
    qs = Project.objects.all()
    if not (user.is_superuser or user.is_staff):
        qs = qs.filter(memberships__user=user)
    return qs.order_by("name")


def project_reviewers(*, project: Project) -> QuerySet:
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(memberships__project=project, is_active=True)
        .order_by("username")
    )


# --- Policy and risk ---------------------------------------------------------------------------


def review_policy_for(*, project: Project) -> ReviewPolicy:
    """The project's policy; an unsaved one with the defaults when none was set."""
    policy = ReviewPolicy.objects.filter(project=project).first()
    return policy or ReviewPolicy(project=project)


def risk_corrections_latest(*, image_ids: list[int]) -> dict[tuple[int, str], bool]:
    """An admin's latest word on each (image, category) that was corrected."""
    corrections = (
        RiskCorrection.objects.filter(image_id__in=image_ids)
        .order_by("created_at", "id")
        .values_list("image_id", "category", "flagged")
    )
    # oldest first: the latest one wins
    return {(image_id, category): is_flagged for image_id, category, is_flagged in corrections}


def image_risk_categories(*, image_ids: list[int]) -> dict[int, set[str]]:
    """Categories each image is flagged in, an admin's latest correction overriding the analyser."""
    flagged: dict[int, set[str]] = {image_id: set() for image_id in image_ids}
    if not image_ids:
        return flagged
    for image_id, category in RiskFlag.objects.filter(
        image_id__in=image_ids, flagged=True
    ).values_list("image_id", "category"):
        flagged[image_id].add(category)
    for (image_id, category), is_flagged in risk_corrections_latest(image_ids=image_ids).items():
        if is_flagged:
            flagged[image_id].add(category)
        else:
            flagged[image_id].discard(category)
    return flagged


def image_risk_signals(image_ids: Sequence[int]) -> dict[int, list[RiskSignal]]:
    """Each image's flags as chain rules read them, an admin's correction counting over the
    analyser (a flag they added is certain: score 1)."""
    corrected = risk_corrections_latest(image_ids=list(image_ids))
    signals: dict[int, list[RiskSignal]] = {}
    for image_id, category, score, flagged in RiskFlag.objects.filter(
        image_id__in=image_ids
    ).values_list("image_id", "category", "score", "flagged"):
        says = corrected.pop((image_id, category), None)
        if says is not None:
            flagged, score = says, (1.0 if says else score)
        signals.setdefault(image_id, []).append(
            RiskSignal(category=category, score=score, flagged=flagged)
        )
    for (image_id, category), says in corrected.items():  # corrected before it was analysed
        if says:
            signals.setdefault(image_id, []).append(
                RiskSignal(category=category, score=1.0, flagged=True)
            )
    return signals


def image_flagged_q(*, category: str = "") -> Q:
    """For an ``Image`` queryset: flagged in ``category`` (or in any), in SQL, an admin's latest
    correction overriding the analyser (``image_risk_categories`` does this for a list of ids).

    Either the admin's latest word on a category is "flagged", or there is none and the
    analyser's row is flagged.
    """
    scope = {"category": category} if category else {}
    later = RiskCorrection.objects.filter(
        Q(created_at__gt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id")),
        image_id=OuterRef("image_id"),
        category=OuterRef("category"),
    )
    admin_says_yes = RiskCorrection.objects.filter(
        ~Exists(later), image_id=OuterRef("pk"), flagged=True, **scope
    )
    uncorrected = RiskFlag.objects.filter(
        ~Exists(
            RiskCorrection.objects.filter(
                image_id=OuterRef("image_id"), category=OuterRef("category")
            )
        ),
        image_id=OuterRef("pk"),
        flagged=True,
        **scope,
    )
    return Q(Exists(admin_says_yes)) | Q(Exists(uncorrected))


NEAR_THRESHOLD = 0.1  # "near the threshold": a score within this distance of its category's


def images_by_risk(
    images: QuerySet[Image],
    *,
    project: Project,
    category: str = "",
    near_threshold: bool = False,
    thresholds: dict[str, float] | None = None,
) -> QuerySet[Image]:
    """Narrow an image list (the project grid) to images flagged in ``category`` (any when
    empty, an admin's correction winning), or to those whose analyser score lies within
    NEAR_THRESHOLD of the category's threshold: the ones a small change of threshold would flip,
    worth a human look."""
    if not near_threshold:
        return images.filter(image_flagged_q(category=category))
    if thresholds is None:
        from review.services.risk import risk_thresholds_for

        thresholds = risk_thresholds_for(project=project)
    near = Q()
    for name, threshold in thresholds.items():
        if category and name != category:
            continue
        near |= Q(
            category=name,
            score__gte=threshold - NEAR_THRESHOLD,
            score__lte=threshold + NEAR_THRESHOLD,
        )
    return images.filter(Exists(RiskFlag.objects.filter(near, image_id=OuterRef("pk"))))


@dataclass(frozen=True)
class CaptionReview:
    """One caption of an image as its page shows it: the text, review state and verdicts."""

    caption: Caption
    item: ReviewItem | None
    verdicts: list[Verdict]


def image_caption_reviews(*, image: Image, limit: int = 50) -> list[CaptionReview]:
    """The image's captions (oldest first, the risk question to the model left out) with their
    review item and every verdict; three queries whatever the number of captions."""
    captions = list(
        Caption.objects.filter(image=image)
        .exclude(task="question", prompt=RISK_QUESTION)
        .select_related("route")
        .prefetch_related(
            Prefetch(
                "verdicts",
                queryset=Verdict.objects.select_related("reviewer").order_by("created_at", "id"),
                to_attr="shown_verdicts",
            )
        )
        .order_by("id")[:limit]
    )
    items = {
        item.caption_id: item
        for item in ReviewItem.objects.filter(image=image).select_related("adjudication__admin")
    }
    return [
        CaptionReview(caption=c, item=items.get(c.pk), verdicts=c.shown_verdicts) for c in captions
    ]


@dataclass(frozen=True)
class ShownFlag:
    category: str
    label: str
    score: float | None
    reason: str
    corrected: bool


def image_risk_flags(*, image: Image) -> list[ShownFlag]:
    """The flags a reviewer sees next to the image, with the analyser's reasons."""
    categories = image_risk_categories(image_ids=[image.pk])[image.pk]
    flags = {f.category: f for f in RiskFlag.objects.filter(image=image)}
    shown = []
    for category in sorted(categories):
        flag = flags.get(category)
        analyser_says = bool(flag and flag.flagged)
        shown.append(
            ShownFlag(
                category=category,
                label=RiskFlag(category=category).get_category_display(),
                score=flag.score if flag else None,
                reason=flag.reason if flag and analyser_says else "Flagged by an admin.",
                corrected=not analyser_says,
            )
        )
    return shown


@dataclass(frozen=True)
class RiskRow:
    """One category of one image as an admin sees it: the analyser's view and the latest word."""

    category: str
    label: str
    score: float | None
    reason: str
    analyser_flagged: bool
    analyser_version: str
    correction: RiskCorrection | None  # the latest one; it wins over the analyser
    corrections: int

    @property
    def flagged(self) -> bool:
        return self.correction.flagged if self.correction else self.analyser_flagged


def image_risk_overview(*, image: Image) -> list[RiskRow]:
    """Every category of the image (flagged or not) with score, reason and admin corrections."""
    flags = {f.category: f for f in RiskFlag.objects.filter(image=image)}
    latest: dict[str, RiskCorrection] = {}
    totals: dict[str, int] = {}
    corrections = (
        RiskCorrection.objects.filter(image=image)
        .select_related("corrected_by")
        .order_by("-created_at", "-id")
    )
    for correction in corrections:  # newest first: the first one seen is the one in force
        latest.setdefault(correction.category, correction)
        totals[correction.category] = totals.get(correction.category, 0) + 1
    rows = []
    for category, label in RiskCategory.choices:
        flag = flags.get(category)
        rows.append(
            RiskRow(
                category=category,
                label=label,
                score=flag.score if flag else None,
                reason=flag.reason if flag else "",
                analyser_flagged=bool(flag and flag.flagged),
                analyser_version=flag.analyser_version if flag else "",
                correction=latest.get(category),
                corrections=totals.get(category, 0),
            )
        )
    return rows


# --- The queue ---------------------------------------------------------------------------------


def lease_current(*, project: Project, reviewer, now: datetime | None = None) -> Lease | None:
    """The reviewer's live lease in this project (the oldest, if an admin gave them several)."""
    now = now or timezone.now()
    return (
        Lease.objects.filter(
            project=project, reviewer=reviewer, state=Lease.State.ACTIVE, expires_at__gt=now
        )
        .select_related("item__caption__route", "item__image")
        .order_by("created_at", "id")
        .first()
    )


@dataclass(frozen=True)
class QueueCounts:
    to_review: int  # reviews still needed that nobody holds a live lease for
    in_progress: int  # live leases
    done: int  # reviews given (skips excluded)
    open_items: int
    adjudication: int
    approved: int
    rejected: int
    # captions (not review slots) with a review still needed that nobody holds
    items_waiting: int = 0
    # succeeded captions the queue has not picked up yet (it does on the next claim)
    unqueued: int = 0

    @property
    def captions_to_review(self) -> int:
        """What a person means by "to review": captions waiting, however many reviews each
        needs (a risky one needs two, and is still one caption)."""
        return self.items_waiting + self.unqueued

    @property
    def total(self) -> int:
        return self.to_review + self.in_progress + self.done


_COUNTS_SQL = """
SELECT
  COALESCE(SUM(GREATEST(i.required - i.reviews_done - COALESCE(l.n, 0), 0))
           FILTER (WHERE i.state = 'open'), 0),
  COALESCE(SUM(COALESCE(l.n, 0)) FILTER (WHERE i.state = 'open'), 0),
  COALESCE(SUM(i.reviews_done), 0),
  COUNT(*) FILTER (WHERE i.state = 'open'),
  COUNT(*) FILTER (WHERE i.state = 'adjudication'),
  COUNT(*) FILTER (WHERE i.state = 'approved'),
  COUNT(*) FILTER (WHERE i.state = 'rejected'),
  COUNT(*) FILTER (WHERE i.state = 'open' AND i.required - i.reviews_done - COALESCE(l.n, 0) > 0),
  (SELECT COUNT(*) FROM routing_caption c
     JOIN labeling_image im ON im.id = c.image_id
     WHERE im.project_id = %s AND c.status = 'succeeded'
       AND NOT (c.task = 'question' AND c.prompt = %s)
       AND NOT EXISTS (SELECT 1 FROM review_reviewitem r WHERE r.caption_id = c.id))
FROM review_reviewitem i
LEFT JOIN (
  SELECT item_id, COUNT(*) AS n FROM review_lease
  WHERE state = 'active' AND expires_at > %s AND project_id = %s GROUP BY item_id
) l ON l.item_id = i.id
WHERE i.project_id = %s
"""


def queue_counts(*, project: Project, now: datetime | None = None) -> QueueCounts:
    """All counts from one statement, so they are one consistent snapshot even under load."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_COUNTS_SQL, [project.pk, RISK_QUESTION, now, project.pk, project.pk])
            row = cursor.fetchone()
        return QueueCounts(*(int(v) for v in row))
    return _queue_counts_portable(project=project, now=now)


def _queue_counts_portable(*, project: Project, now: datetime) -> QueueCounts:
    live: dict[int, int] = dict(
        Lease.objects.filter(project=project, state=Lease.State.ACTIVE, expires_at__gt=now)
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    to_review = in_progress = done = items_waiting = 0
    states = dict.fromkeys(ReviewItem.State.values, 0)
    for pk, state, required, reviews_done in ReviewItem.objects.filter(project=project).values_list(
        "pk", "state", "required", "reviews_done"
    ):
        states[state] += 1
        done += reviews_done
        if state == ReviewItem.State.OPEN:
            in_progress += live.get(pk, 0)
            free = max(required - reviews_done - live.get(pk, 0), 0)
            to_review += free
            items_waiting += 1 if free else 0
    return QueueCounts(
        to_review=to_review,
        in_progress=in_progress,
        done=done,
        open_items=states["open"],
        adjudication=states["adjudication"],
        approved=states["approved"],
        rejected=states["rejected"],
        items_waiting=items_waiting,
        unqueued=Caption.objects.filter(
            image__project=project, status=Caption.Status.SUCCEEDED, review_item__isnull=True
        )
        .exclude(task="question", prompt=RISK_QUESTION)
        .count(),
    )


def verdict_undoable(*, project: Project, reviewer, now: datetime | None = None) -> Verdict | None:
    """The reviewer's last verdict in the project while it can still be taken back."""
    now = now or timezone.now()
    last = (
        Verdict.objects.filter(project=project, reviewer=reviewer)
        .select_related("item")
        .order_by("-created_at", "-id")
        .first()
    )
    if last is None or last.created_at < now - timedelta(seconds=undo_seconds()):
        return None
    if hasattr(last.item, "adjudication"):  # an admin has ruled on it since
        return None
    return last


@dataclass(frozen=True)
class ReviewerProgress:
    today: int  # reviews given since local midnight (skips not counted)
    total: int
    skipped: int


def reviewer_progress(
    *, project: Project, reviewer, now: datetime | None = None
) -> ReviewerProgress:
    """One reviewer's own figures in a project, from one aggregate query."""
    now = now or timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    counted = ~Q(decision=Verdict.Decision.SKIP)
    row = Verdict.objects.filter(project=project, reviewer=reviewer).aggregate(
        today=Count("id", filter=counted & Q(created_at__gte=midnight)),
        total=Count("id", filter=counted),
        skipped=Count("id", filter=Q(decision=Verdict.Decision.SKIP)),
    )
    return ReviewerProgress(**row)


def reviewer_history(*, project: Project, reviewer) -> QuerySet[Verdict]:
    """A reviewer's own verdicts in a project, newest first (paginate it)."""
    return (
        Verdict.objects.filter(project=project, reviewer=reviewer)
        .select_related("item__image", "caption")
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class CaptionPosition:
    number: int  # this caption's place among the image's captions under review, from 1
    of: int


def item_caption_position(*, item: ReviewItem) -> CaptionPosition:
    """ "Caption 1 of 2 for this image": each model's caption of an image is its own item."""
    row = ReviewItem.objects.filter(image_id=item.image_id).aggregate(
        of=Count("id"), number=Count("id", filter=Q(caption_id__lte=item.caption_id))
    )
    return CaptionPosition(number=row["number"], of=row["of"])


def leases_active(*, project: Project) -> QuerySet[Lease]:
    return (
        Lease.objects.filter(project=project, state=Lease.State.ACTIVE)
        .select_related("reviewer", "item__image", "item__caption")
        .order_by("expires_at")
    )


def adjudication_queue(*, project: Project) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.filter(project=project, state=ReviewItem.State.ADJUDICATION)
        .select_related("caption", "image")
        .order_by("-priority", "queued_at", "id")
    )


def adjudication_page_items(*, project: Project) -> QuerySet[ReviewItem]:
    """The disputed items with what each reviewer decided (skips left out), for the list page."""
    decided = (
        Verdict.objects.exclude(decision=Verdict.Decision.SKIP)
        .select_related("reviewer")
        .order_by("created_at", "id")
    )
    return adjudication_queue(project=project).prefetch_related(
        Prefetch("verdicts", queryset=decided, to_attr="decided")
    )


def adjudication_next(*, project: Project, after: ReviewItem | None = None) -> ReviewItem | None:
    """The next disputed item to decide, in queue order (``after`` left out)."""
    qs = adjudication_queue(project=project)
    if after is not None:
        qs = qs.exclude(pk=after.pk)
    return qs.first()


def item_verdicts(*, item: ReviewItem) -> QuerySet[Verdict]:
    return item.verdicts.exclude(decision=Verdict.Decision.SKIP).select_related("reviewer")


# --- Approved text, for exports and dashboards --------------------------------------------------


@dataclass(frozen=True)
class ApprovedText:
    caption_id: int
    image_id: int
    model_name: str
    model_text: str
    text: str
    edited: bool
    char_effort: float | None
    word_effort: float | None
    adjudicated: bool
    decided_at: datetime | None


def _approved(item: ReviewItem) -> ApprovedText:
    return ApprovedText(
        caption_id=item.caption_id,
        image_id=item.image_id,
        model_name=item.caption.model_name,
        model_text=item.caption.text,
        text=item.final_text,
        edited=bool(item.edited),
        char_effort=item.char_effort,
        word_effort=item.word_effort,
        adjudicated=hasattr(item, "adjudication"),
        decided_at=item.decided_at,
    )


def approved_items(*, project: Project) -> QuerySet[ReviewItem]:
    """Approved items of a project with their caption; use .iterator() for exports."""
    return (
        ReviewItem.objects.filter(project=project, state=ReviewItem.State.APPROVED)
        .select_related("caption", "adjudication")
        .order_by("image_id", "caption_id")
    )


def caption_approved_text(*, caption: Caption) -> ApprovedText | None:
    """The approved text of one caption, or None while it is unreviewed, disputed or rejected."""
    item = (
        ReviewItem.objects.filter(caption=caption, state=ReviewItem.State.APPROVED)
        .select_related("caption", "adjudication")
        .first()
    )
    return _approved(item) if item else None


def image_approved_texts(*, image: Image) -> list[ApprovedText]:
    """Every approved caption of an image, oldest caption first."""
    items = (
        ReviewItem.objects.filter(image=image, state=ReviewItem.State.APPROVED)
        .select_related("caption", "adjudication")
        .order_by("caption_id")
    )
    return [_approved(item) for item in items]


def item_with_context(*, item_id: int) -> ReviewItem:
    return (
        ReviewItem.objects.select_related("caption__route", "image", "project")
        .prefetch_related(Prefetch("verdicts", queryset=Verdict.objects.select_related("reviewer")))
        .get(pk=item_id)
    )
