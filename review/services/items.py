"""Putting captions into the review queue, keeping items in line with the policy, deciding them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from integrations.services import webhooks
from labeling.models import Image, Project
from review import selectors
from review.models import Lease, ReviewItem, ReviewPolicy, Verdict
from review.risk.captions import RISK_QUESTION
from review.services.effort import correction_effort
from routing.models import Caption

SYNC_BATCH = 1000
APPROVING = (Verdict.Decision.ACCEPT, Verdict.Decision.EDIT)


def _required(policy: ReviewPolicy, risky: bool) -> int:
    return policy.risky_approvals_required if risky else policy.approvals_required


def _priority(policy: ReviewPolicy, risky: bool) -> int:
    return 1 if risky and policy.risky_first else 0


def _is_risky(policy: ReviewPolicy, categories: set[str]) -> bool:
    return bool(categories & set(policy.risky_categories or []))


def _new_items(captions: list[Caption]) -> list[ReviewItem]:
    categories = selectors.image_risk_categories(image_ids=sorted({c.image_id for c in captions}))
    policies: dict[int, ReviewPolicy] = {}
    items = []
    for caption in captions:
        project = caption.image.project
        if project.pk not in policies:
            policies[project.pk] = selectors.review_policy_for(project=project)
        policy = policies[project.pk]
        risky = _is_risky(policy, categories[caption.image_id])
        items.append(
            ReviewItem(
                caption=caption,
                image_id=caption.image_id,
                project_id=project.pk,
                risky=risky,
                required=_required(policy, risky),
                priority=_priority(policy, risky),
                queued_at=caption.finished_at or caption.created_at,
            )
        )
    return items


def _is_risk_question(caption: Caption) -> bool:
    return caption.task == "question" and caption.prompt == RISK_QUESTION


def review_item_enqueue(*, caption: Caption) -> ReviewItem | None:
    """Queue one succeeded caption for review (idempotent). Call it when a caption succeeds."""
    if caption.status != Caption.Status.SUCCEEDED or _is_risk_question(caption):
        return None
    caption = Caption.objects.select_related("image__project").get(pk=caption.pk)
    ReviewItem.objects.bulk_create(_new_items([caption]), ignore_conflicts=True)
    return ReviewItem.objects.get(caption=caption)


def review_items_sync(*, project: Project | None = None) -> int:
    """Queue every succeeded caption that has no review item yet; returns how many were added.

    The risk flags' own question to the model ("is this a chart ...?") is evidence, not an
    output to review; a project's real question captions are reviewed like any caption.
    """
    pending = (
        Caption.objects.filter(status=Caption.Status.SUCCEEDED, review_item__isnull=True)
        .exclude(task="question", prompt=RISK_QUESTION)
        .select_related("image__project")
    )
    if project is not None:
        pending = pending.filter(image__project=project)
    added = 0
    while True:
        batch = list(pending.order_by("id")[:SYNC_BATCH])
        if not batch:
            return added
        created = ReviewItem.objects.bulk_create(_new_items(batch), ignore_conflicts=True)
        added += len(created)
        if len(batch) < SYNC_BATCH:
            return added


def review_items_refresh(*, image_ids: Iterable[int], now: datetime | None = None) -> int:
    """Re-apply risk and policy to the open items of these images (after flags or policy change).

    An item whose stricter count is already met by the reviews it has is decided on the spot.
    """
    now = now or timezone.now()
    image_ids = sorted(set(image_ids))
    categories = selectors.image_risk_categories(image_ids=image_ids)
    policies: dict[int, ReviewPolicy] = {}
    changed = 0
    with transaction.atomic():
        items = (
            ReviewItem.objects.filter(image_id__in=image_ids, state=ReviewItem.State.OPEN)
            .select_related("project")
            .select_for_update(of=("self",))
            .order_by("id")
        )
        for item in items:
            if item.project_id not in policies:
                policies[item.project_id] = selectors.review_policy_for(project=item.project)
            policy = policies[item.project_id]
            risky = _is_risky(policy, categories[item.image_id])
            new = (risky, _required(policy, risky), _priority(policy, risky))
            if new == (item.risky, item.required, item.priority):
                continue
            item.risky, item.required, item.priority = new
            item.save(update_fields=["risky", "required", "priority"])
            changed += 1
            if item.reviews_done >= item.required:
                item_decide(item=item, now=now)
    return changed


def review_policy_apply(*, project: Project, now: datetime | None = None) -> int:
    """Bring every open item of the project in line with its (changed) policy."""
    image_ids = (
        ReviewItem.objects.filter(project=project, state=ReviewItem.State.OPEN)
        .values_list("image_id", flat=True)
        .distinct()
        .order_by("image_id")
    )
    changed = 0
    batch: list[int] = []
    for image_id in image_ids.iterator(chunk_size=SYNC_BATCH):
        batch.append(image_id)
        if len(batch) == SYNC_BATCH:
            changed += review_items_refresh(image_ids=batch, now=now)
            batch = []
    if batch:
        changed += review_items_refresh(image_ids=batch, now=now)
    return changed


# --- Outcome -----------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Texts that differ only in spacing agree."""
    return _SPACE.sub(" ", text).strip()


def item_decide(*, item: ReviewItem, now: datetime, verdicts: list[Verdict] | None = None) -> str:
    """Decide an item whose reviews are all in. Caller holds the item's row lock.

    Unanimous approvals of one text approve it; unanimous rejections reject it; anything else goes
    to an admin. Live leases that are no longer needed are revoked. `verdicts` (the counted ones)
    saves a query when the caller already has them.
    """
    if verdicts is None:
        verdicts = list(
            item.verdicts.exclude(decision=Verdict.Decision.SKIP).order_by("created_at", "id")
        )
    approving = [v for v in verdicts if v.decision in APPROVING]
    texts = {normalise_text(v.final_text) for v in approving}
    if verdicts and len(approving) == len(verdicts) and len(texts) == 1:
        item_finish(item=item, approved=True, text=approving[0].final_text, now=now)
    elif verdicts and not approving:
        item_finish(item=item, approved=False, text="", now=now)
    else:
        item.state = ReviewItem.State.ADJUDICATION
        item.save(update_fields=["state"])
    Lease.objects.filter(item=item, state=Lease.State.ACTIVE).update(
        state=Lease.State.REVOKED, ended_at=now
    )
    image_status_refresh(image_id=item.image_id)
    return item.state


def item_finish(*, item: ReviewItem, approved: bool, text: str, now: datetime) -> None:
    item.state = ReviewItem.State.APPROVED if approved else ReviewItem.State.REJECTED
    item.decided_at = now
    if approved:
        model_text = item.caption.text
        effort = correction_effort(model_text=model_text, final_text=text)
        item.final_text = text
        item.edited = normalise_text(text) != normalise_text(model_text)
        item.char_distance, item.word_distance = effort.char_distance, effort.word_distance
        item.char_effort, item.word_effort = effort.char_effort, effort.word_effort
    else:
        item.final_text, item.edited = "", None
        item.char_distance = item.word_distance = None
        item.char_effort = item.word_effort = None
    item.save(
        update_fields=[
            "state",
            "decided_at",
            "final_text",
            "edited",
            "char_distance",
            "word_distance",
            "char_effort",
            "word_effort",
        ]
    )
    if approved:  # sent once the transaction commits
        webhooks.webhook_event_send(
            project_id=item.project_id,
            event="item.approved",
            payload=webhooks.item_approved_payload(item=item),
        )


def item_reopen(*, item: ReviewItem) -> None:
    item.state = ReviewItem.State.OPEN
    item.decided_at = None
    item.final_text, item.edited = "", None
    item.char_distance = item.word_distance = None
    item.char_effort = item.word_effort = None
    item.save(
        update_fields=[
            "state",
            "decided_at",
            "final_text",
            "edited",
            "char_distance",
            "word_distance",
            "char_effort",
            "word_effort",
        ]
    )


# --- Image status ------------------------------------------------------------------------------

_UNDECIDED = {ReviewItem.State.OPEN, ReviewItem.State.ADJUDICATION}


def image_mark_in_review(*, image_id: int) -> None:
    Image.objects.filter(pk=image_id, status__in=[Image.Status.NEW, Image.Status.CAPTIONED]).update(
        status=Image.Status.IN_REVIEW
    )


def image_status_refresh(*, image_id: int) -> None:
    """in_review while any caption is undecided; then approved if any caption was, else rejected."""
    states = set(ReviewItem.objects.filter(image_id=image_id).values_list("state", flat=True))
    if not states:
        return
    if states & _UNDECIDED:
        Image.objects.filter(
            pk=image_id, status__in=[Image.Status.APPROVED, Image.Status.REJECTED]
        ).update(status=Image.Status.IN_REVIEW)
        return
    status = Image.Status.APPROVED if ReviewItem.State.APPROVED in states else Image.Status.REJECTED
    Image.objects.filter(pk=image_id).exclude(status=status).update(status=status)


def review_policy_save(
    *,
    project: Project,
    approvals_required: int,
    risky_approvals_required: int,
    risky_categories: list[str],
    risky_first: bool,
    show_model_name: bool,
    risk_thresholds: dict[str, float] | None = None,
    risk_ask_model: bool | None = None,
    risk_ask_scope: str | None = None,
    annotators_see_metrics: bool | None = None,
) -> ReviewPolicy:
    """Save the project's policy; open items follow it in a background task.

    ``risk_thresholds`` (category -> 0..1, missing = default) replaces the project's own when
    given; when they changed, the project's flags are recomputed in chunks in the background.
    ``risk_ask_model`` / ``risk_ask_scope`` (when given) say whether new images are also asked
    about through the project's default chain; images already analysed are not asked.
    ``annotators_see_metrics`` (when given) opens the comparison and dashboards to annotators.
    """
    from review import tasks  # tasks import this module

    defaults: dict[str, object] = {
        "approvals_required": approvals_required,
        "risky_approvals_required": risky_approvals_required,
        "risky_categories": list(risky_categories),
        "risky_first": risky_first,
        "show_model_name": show_model_name,
    }
    previous = (
        ReviewPolicy.objects.filter(project=project)
        .values_list("risk_thresholds", flat=True)
        .first()
        or {}
    )
    if risk_ask_model is not None:
        defaults["risk_ask_model"] = risk_ask_model
    if risk_ask_scope:
        defaults["risk_ask_scope"] = risk_ask_scope
    if annotators_see_metrics is not None:
        defaults["annotators_see_metrics"] = annotators_see_metrics
    if risk_thresholds is not None:
        defaults["risk_thresholds"] = {k: float(v) for k, v in sorted(risk_thresholds.items())}
    policy, _ = ReviewPolicy.objects.update_or_create(project=project, defaults=defaults)
    tasks.review_policy_apply.delay_on_commit(project_id=project.pk)
    if risk_thresholds is not None and defaults["risk_thresholds"] != previous:
        tasks.risk_flags_apply_thresholds.delay_on_commit(project_id=project.pk)
    return policy
