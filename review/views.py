"""Pages of the review app. Thin: check the role, call one service, pick the response.

Every action is a plain POST form; htmx requests get the item partial back instead of a redirect.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import Image, Project
from review import selectors
from review.forms import (
    AdjudicationForm,
    ReassignForm,
    ReviewPolicyForm,
    RiskBulkCorrectionForm,
    RiskCorrectionForm,
    VerdictForm,
)
from review.models import Lease, RejectReason, ReviewItem, RiskCategory, SkipReason, Verdict
from review.services import items as item_services
from review.services import queue, risk
from review.services.verdict import (
    LeaseLost,
    VerdictInvalid,
    item_adjudicate,
    verdict_submit,
    verdict_undo,
)
from review.textdiff import text_diff


def _project(request: HttpRequest, slug: str, *, admin: bool = False) -> Project:
    """The project if the user may review it (404 otherwise: existence is not disclosed)."""
    project = get_object_or_404(Project, slug=slug)
    if not selectors.can_review(project=project, user=request.user):
        raise Http404("No such project.")
    if admin and not selectors.can_manage(project=project, user=request.user):
        raise PermissionDenied("Only project admins can do this.")
    return project


def _own_lease(request: HttpRequest, pk: int) -> Lease:
    lease = get_object_or_404(Lease.objects.select_related("project"), pk=pk)
    if lease.reviewer_id != request.user.pk:
        raise Http404("No such lease.")
    _project(request, lease.project.slug)
    return lease


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _item_context(
    request: HttpRequest,
    project: Project,
    lease: Lease | None,
    *,
    key: str | None = None,
    error: str = "",
    posted: dict | None = None,
    lost: LeaseLost | None = None,
    nothing_left: bool = False,
    notice: str = "",
) -> dict[str, object]:
    context: dict[str, object] = {
        "project": project,
        "lease": lease,
        "policy": selectors.review_policy_for(project=project),
        "undo": _undo_offer(request, project),
        "notice": notice,
        "undo_seconds": selectors.undo_seconds(),
        "heartbeat_seconds": selectors.heartbeat_seconds(),
        "reject_reasons": RejectReason.choices,
        "skip_reasons": SkipReason.choices,
        "error": error,
        "posted": posted or {},
        "lost": lost,
        "nothing_left": nothing_left,
        "is_admin": selectors.can_manage(project=project, user=request.user),
    }
    if lease is not None:
        item = lease.item
        context.update(
            item=item,
            caption=item.caption,
            image=item.image,
            flags=selectors.image_risk_flags(image=item.image),
            position=selectors.item_caption_position(item=item),
            idempotency_key=key or uuid.uuid4(),
        )
    return context


_UNDONE_AT = "review_undone_at"


def _undo_offer(request: HttpRequest, project: Project) -> Verdict | None:
    """The verdict the undo bar offers. After an undo, the verdict before the undone one is not
    offered: undoing is about the last thing the reviewer did, and that was the undo."""
    verdict = selectors.verdict_undoable(project=project, reviewer=request.user)
    undone_at = request.session.get(_UNDONE_AT)
    if verdict is not None and undone_at and verdict.created_at.isoformat() <= undone_at:
        return None
    return verdict


def _counts_context(request: HttpRequest, project: Project) -> dict[str, object]:
    return {
        "counts": selectors.queue_counts(project=project),
        "progress": selectors.reviewer_progress(project=project, reviewer=request.user),
    }


def _render_item(request: HttpRequest, project: Project, lease: Lease | None, **kwargs):
    status = kwargs.pop("status", 200)
    context = _item_context(request, project, lease, **kwargs)
    if _is_htmx(request):
        # htmx swaps only 2xx answers; the partial itself says what went wrong.
        return render(request, "review/_item.html", context)
    context.update(_counts_context(request, project))
    return render(request, "review/work.html", context, status=status)


def _to_work(project: Project) -> HttpResponse:
    return redirect(reverse("review:work", kwargs={"slug": project.slug}), permanent=False)


@login_required
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.review_projects_for(user=request.user), 25).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "project": project,
            "counts": selectors.queue_counts(project=project),
            "is_admin": selectors.can_manage(project=project, user=request.user),
        }
        for project in page
    ]
    return render(request, "review/queue_list.html", {"rows": rows, "page": page})


@login_required
@require_GET
def work(request: HttpRequest, slug: str) -> HttpResponse:
    """The review screen: the reviewer's current lease, or a button to start."""
    project = _project(request, slug)
    lease = selectors.lease_current(project=project, reviewer=request.user)
    return _render_item(request, project, lease)


@login_required
@require_POST
def claim_next(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    lease = queue.lease_claim_next(project=project, reviewer=request.user)
    if _is_htmx(request):
        response = _render_item(request, project, lease, nothing_left=lease is None)
        response["HX-Trigger"] = "item-claimed"  # the counts above refresh themselves
        return response
    if lease is None:
        messages.info(request, "Nothing is waiting for your review right now.")
    return _to_work(project)


@login_required
@require_GET
def counts(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    return render(
        request,
        "review/_counts.html",
        {
            "project": project,
            "is_admin": selectors.can_manage(project=project, user=request.user),
            **_counts_context(request, project),
        },
    )


@login_required
@require_POST
def verdict(request: HttpRequest, pk: int) -> HttpResponse:
    lease = _own_lease(request, pk)
    project = lease.project
    form = VerdictForm(request.POST)
    posted = {
        "decision": request.POST.get("decision", ""),
        "text": request.POST.get("text", ""),
        "reasons": request.POST.getlist("reasons"),
        "note": request.POST.get("note", ""),
    }
    if not form.is_valid():
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return _render_item(
            request,
            project,
            lease,
            error=error,
            posted=posted,
            status=400,
            key=request.POST.get("idempotency_key"),
        )
    data = form.cleaned_data
    try:
        submitted = verdict_submit(
            lease=lease,
            reviewer=request.user,
            decision=data["decision"],
            idempotency_key=data["idempotency_key"],
            text=data["text"],
            reasons=data["reasons"],
            note=data["note"],
            time_spent_ms=data["time_spent_ms"],
        )
    except VerdictInvalid as exc:
        return _render_item(
            request,
            project,
            lease,
            error=str(exc),
            posted=posted,
            status=400,
            key=str(data["idempotency_key"]),
        )
    except LeaseLost as exc:
        return _render_item(request, project, None, lost=exc, status=409)
    next_lease = queue.lease_claim_next(project=project, reviewer=request.user)
    if _is_htmx(request):
        response = _render_item(request, project, next_lease, nothing_left=next_lease is None)
        response["HX-Trigger"] = "verdict-saved"
        return response
    if not submitted.replayed:
        messages.success(request, f"Saved: {submitted.verdict.get_decision_display().lower()}.")
    return _to_work(project)


@login_required
@require_POST
def heartbeat(request: HttpRequest, pk: int) -> HttpResponse:
    lease = _own_lease(request, pk)
    alive = queue.lease_heartbeat(lease=lease, reviewer=request.user)
    return render(request, "review/_lease_status.html", {"alive": alive, "lease": lease})


@login_required
@require_POST
def undo(request: HttpRequest, pk: int) -> HttpResponse:
    verdict_obj = get_object_or_404(
        Verdict.objects.select_related("project"), pk=pk, reviewer=request.user
    )
    project = _project(request, verdict_obj.project.slug)
    try:
        lease = verdict_undo(verdict=verdict_obj, reviewer=request.user)
    except queue.QueueError as exc:
        if _is_htmx(request):
            current = selectors.lease_current(project=project, reviewer=request.user)
            return _render_item(request, project, current, error=str(exc))
        messages.error(request, str(exc))
        return _to_work(project)
    request.session[_UNDONE_AT] = verdict_obj.created_at.isoformat()
    what = _verdict_words(verdict_obj)
    notice = f"Undone: your {what} of item #{verdict_obj.item_id}. It is yours again."
    if _is_htmx(request):
        response = _render_item(request, project, lease, notice=notice)
        response["HX-Trigger"] = "verdict-saved"
        return response
    messages.info(request, notice)
    return _to_work(project)


def _verdict_words(verdict_obj: Verdict) -> str:
    return {
        Verdict.Decision.ACCEPT: "accept",
        Verdict.Decision.EDIT: "edit",
        Verdict.Decision.REJECT: "rejection",
        Verdict.Decision.SKIP: "skip",
    }.get(verdict_obj.decision, "verdict")


@login_required
@require_GET
def history(request: HttpRequest, slug: str) -> HttpResponse:
    """The reviewer's own verdicts, newest first; the last one can be undone while it may."""
    project = _project(request, slug)
    page = Paginator(
        selectors.reviewer_history(project=project, reviewer=request.user), 50
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "review/history.html",
        {
            "project": project,
            "page": page,
            "undo": _undo_offer(request, project),
            "undo_seconds": selectors.undo_seconds(),
            "progress": selectors.reviewer_progress(project=project, reviewer=request.user),
        },
    )


@login_required
@require_POST
def lease_release(request: HttpRequest, pk: int) -> HttpResponse:
    """A reviewer stops working on their item, or an admin frees someone's."""
    lease = get_object_or_404(Lease.objects.select_related("project"), pk=pk)
    project = _project(request, lease.project.slug)
    is_admin = selectors.can_manage(project=project, user=request.user)
    if lease.reviewer_id != request.user.pk and not is_admin:
        raise PermissionDenied("Only admins can release someone else's lease.")
    if queue.lease_release(lease=lease, by=request.user):
        messages.info(request, "The item went back to the queue.")
    else:
        messages.error(request, "That lease had already ended.")
    if lease.reviewer_id != request.user.pk:
        return redirect("review:leases", slug=project.slug)
    return redirect("review:queue-list")


@login_required
@require_POST
def lease_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    lease = get_object_or_404(Lease.objects.select_related("project"), pk=pk)
    project = _project(request, lease.project.slug, admin=True)
    form = ReassignForm(request.POST, reviewers=selectors.project_reviewers(project=project))
    if not form.is_valid():
        messages.error(request, "Pick a member of the project.")
    else:
        try:
            new = queue.lease_reassign(
                lease=lease, to_reviewer=form.cleaned_data["reviewer"], by=request.user
            )
        except queue.QueueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Item {new.item_id} now belongs to {new.reviewer}.")
    return redirect("review:leases", slug=project.slug)


@login_required
@require_GET
def leases(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    reviewers = selectors.project_reviewers(project=project)
    rows = [
        (lease, ReassignForm(reviewers=reviewers))
        for lease in selectors.leases_active(project=project)
    ]
    return render(
        request, "review/leases.html", {"project": project, "rows": rows, "now": timezone.now()}
    )


@login_required
@require_GET
def adjudication_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    page = Paginator(selectors.adjudication_page_items(project=project), 30).get_page(
        request.GET.get("page")
    )
    return render(request, "review/adjudication_list.html", {"project": project, "page": page})


def _adjudication_context(item: ReviewItem, verdicts: list[Verdict]) -> dict[str, object]:
    """Each review with a diff against the model's caption, and the two edits against each
    other when reviewers edited differently."""
    model_text = item.caption.text
    rows = [
        {
            "verdict": v,
            "number": n,
            "diff": text_diff(model_text, v.final_text)
            if v.decision == Verdict.Decision.EDIT
            else None,
        }
        for n, v in enumerate(verdicts, start=1)
    ]
    edits = [v for v in verdicts if v.decision == Verdict.Decision.EDIT]
    between = None
    if len(edits) >= 2 and edits[0].final_text != edits[1].final_text:
        between = {
            "a": edits[0],
            "b": edits[1],
            "diff": text_diff(edits[0].final_text, edits[1].final_text),
        }
    return {"rows": rows, "between": between}


@login_required
@require_http_methods(["GET", "POST"])
def adjudicate(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(ReviewItem.objects.select_related("project"), pk=pk)
    project = _project(request, item.project.slug, admin=True)
    item = selectors.item_with_context(item_id=item.pk)
    verdicts = list(selectors.item_verdicts(item=item).order_by("created_at", "id"))
    # "Use this text" without JavaScript: ?use=<verdict id> (or "model") starts from that text.
    use = request.GET.get("use", "")
    chosen = next((v for v in verdicts if str(v.pk) == use and v.final_text), None)
    first_text = next((v.final_text for v in verdicts if v.final_text), item.caption.text)
    if use == "model":
        first_text = item.caption.text
    elif chosen is not None:
        first_text = chosen.final_text
    form = AdjudicationForm(
        request.POST or None, initial={"decision": "approve", "text": first_text}
    )
    if request.method == "POST" and form.is_valid():
        try:
            item_adjudicate(
                item=item,
                admin=request.user,
                decision=form.cleaned_data["decision"],
                text=form.cleaned_data["text"],
                note=form.cleaned_data["note"],
            )
        except (VerdictInvalid, queue.QueueError) as exc:
            form.add_error(None, str(exc))
        else:
            verb = "approved" if form.cleaned_data["decision"] == "approve" else "rejected"
            following = selectors.adjudication_next(project=project, after=item)
            if following is None:
                messages.success(request, f"Item #{item.pk} {verb}. No disputes left.")
                return redirect("review:adjudication", slug=project.slug)
            messages.success(request, f"Item #{item.pk} {verb}. Next dispute:")
            return redirect("review:adjudicate", pk=following.pk)
    return render(
        request,
        "review/adjudicate.html",
        {
            "project": project,
            "item": item,
            "form": form,
            "flags": selectors.image_risk_flags(image=item.image),
            "position": selectors.item_caption_position(item=item),
            "left": selectors.adjudication_queue(project=project).count(),
            **_adjudication_context(item, verdicts),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    current = selectors.review_policy_for(project=project)
    form = ReviewPolicyForm(
        request.POST or None,
        instance=current,
        default_thresholds=risk.risk_thresholds_default(),
    )
    if request.method == "POST" and form.is_valid():
        item_services.review_policy_save(project=project, **form.cleaned_data)
        messages.success(
            request, "Policy saved. Open items and risk flags follow it within a minute."
        )
        return redirect("review:policy", slug=project.slug)
    return render(request, "review/policy.html", {"project": project, "form": form})


@login_required
@require_POST
def risk_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """A project admin says whether an image really is a chart / screenshot / medical image."""
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    _project(request, image.project.slug, admin=True)
    form = RiskCorrectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a category and flagged or not flagged (note: 500 chars).")
        return redirect("labeling:image-detail", pk=image.pk)
    data = form.cleaned_data
    risk.risk_flag_correct(
        image=image,
        category=data["category"],
        flagged=data["flagged"],
        by=request.user,
        note=data["note"],
    )
    label = RiskCategory(data["category"]).label
    state = "flagged" if data["flagged"] else "not flagged"
    messages.success(request, f"{label}: marked {state}. The review queue follows at once.")
    return redirect("labeling:image-detail", pk=image.pk)


@login_required
@require_POST
def risk_correct_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    """A project admin corrects one risk category for the images ticked in the grid."""
    project = _project(request, slug, admin=True)
    posted = [v for v in request.POST.getlist("images") if v.isdigit()]
    image_ids = list(
        Image.objects.filter(project=project, pk__in=posted[:1000]).values_list("pk", flat=True)
    )
    form = RiskBulkCorrectionForm(request.POST, image_ids=image_ids)
    back = reverse("labeling:project-detail", kwargs={"slug": project.slug})
    if not form.is_valid():
        messages.error(request, "Tick at least one image of this project, then pick a category.")
        return redirect(back)
    data = form.cleaned_data
    count = risk.risk_flags_correct_bulk(
        images=Image.objects.filter(pk__in=data["images"]),
        category=data["category"],
        flagged=data["flagged"],
        by=request.user,
        note=data["note"],
    )
    label = RiskCategory(data["category"]).label
    state = "flagged" if data["flagged"] else "not flagged"
    messages.success(request, f"{label}: {count} image{'s' if count != 1 else ''} marked {state}.")
    # Back to the same filtered page of the grid: only a query string is taken from the form.
    query = data["query"].lstrip("?")
    return redirect(f"{back}?{query}" if query and "//" not in query else back)
