"""Blind pairwise review pages: the queue (any project member) and the results (whoever may see
the project's metrics). Thin: check the role, call one service or selector, pick the response."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Project
from review import selectors
from review.forms import PairwiseCreateForm, PairwiseJudgeForm
from review.metrics import pairwise_results
from review.metrics_views import metrics_project, postgres_only
from review.models import PairwiseLease
from review.services import pairwise
from routing.models import Caption, CaptionRun


def _member_project(request: HttpRequest, slug: str) -> Project:
    project = get_object_or_404(Project, slug=slug)
    if not selectors.can_review(project=project, user=request.user):
        raise Http404("No such project.")
    return project


def _own_lease(request: HttpRequest, pk: int) -> PairwiseLease:
    lease = get_object_or_404(PairwiseLease.objects.select_related("project"), pk=pk)
    if lease.reviewer_id != request.user.pk:
        raise Http404("No such lease.")
    _member_project(request, lease.project.slug)
    return lease


@login_required
@require_GET
def work(request: HttpRequest, slug: str) -> HttpResponse:
    project = _member_project(request, slug)
    now = timezone.now()
    lease = (
        PairwiseLease.objects.filter(
            project=project,
            reviewer=request.user,
            state=PairwiseLease.State.ACTIVE,
            expires_at__gt=now,
        )
        .select_related("task__image")
        .first()
    )
    context: dict[str, object] = {
        "project": project,
        "lease": lease,
        "is_admin": selectors.can_manage(project=project, user=request.user),
        "metrics": selectors.can_see_metrics(project=project, user=request.user),
    }
    if lease is not None:
        captions = Caption.objects.in_bulk([lease.task.caption_a_id, lease.task.caption_b_id])
        a, b = captions[lease.task.caption_a_id], captions[lease.task.caption_b_id]
        left, right = (a, b) if lease.left_is_a else (b, a)
        context.update(image=lease.task.image, left=left, right=right, idempotency_key=uuid.uuid4())
    return render(request, "review/pairwise.html", context)


@login_required
@require_POST
def claim_next(request: HttpRequest, slug: str) -> HttpResponse:
    project = _member_project(request, slug)
    if pairwise.pairwise_claim_next(project=project, reviewer=request.user) is None:
        messages.info(request, "No pair is waiting for a judgement right now.")
    return redirect("review:pairwise", slug=project.slug)


@login_required
@require_POST
def judge(request: HttpRequest, pk: int) -> HttpResponse:
    lease = _own_lease(request, pk)
    form = PairwiseJudgeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick left, right, tie or both bad.")
        return redirect("review:pairwise", slug=lease.project.slug)
    try:
        pairwise.pairwise_judge(
            lease=lease,
            reviewer=request.user,
            side=form.cleaned_data["side"],
            idempotency_key=form.cleaned_data["idempotency_key"],
            time_spent_ms=form.cleaned_data["time_spent_ms"],
        )
    except pairwise.PairwiseError as exc:
        messages.error(request, str(exc))
        return redirect("review:pairwise", slug=lease.project.slug)
    pairwise.pairwise_claim_next(project=lease.project, reviewer=request.user)
    return redirect("review:pairwise", slug=lease.project.slug)


@login_required
@require_POST
def pass_pair(request: HttpRequest, pk: int) -> HttpResponse:
    lease = _own_lease(request, pk)
    pairwise.pairwise_pass(lease=lease, reviewer=request.user)
    pairwise.pairwise_claim_next(project=lease.project, reviewer=request.user)
    return redirect("review:pairwise", slug=lease.project.slug)


@login_required
@postgres_only
@require_GET
def results(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    runs = CaptionRun.objects.filter(project=project).order_by("-id")
    run = None
    if request.GET.get("run"):
        run = runs.filter(pk=request.GET["run"]).first() if request.GET["run"].isdigit() else None
        if run is None:
            raise Http404("No such run in this project.")
    found = pairwise_results(project=project, run_id=run.pk if run else None)
    is_admin = selectors.can_manage(project=project, user=request.user)
    return render(
        request,
        "review/pairwise_results.html",
        {
            "project": project,
            "run": run,
            "runs": runs,
            "results": found,
            "rows": list(zip(found.names, found.matrix, strict=True)),
            "is_admin": is_admin,
            "create_form": PairwiseCreateForm(runs=runs) if is_admin else None,
        },
    )


@login_required
@postgres_only
@require_POST
def create(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    if not selectors.can_manage(project=project, user=request.user):
        raise PermissionDenied("Only project admins can make pairs.")
    form = PairwiseCreateForm(
        request.POST, runs=CaptionRun.objects.filter(project=project).order_by("-id")
    )
    if not form.is_valid():
        messages.error(request, "Pick a run of this project, or none.")
        return redirect("review:pairwise-results", slug=project.slug)
    run = form.cleaned_data["run"]
    made = pairwise.pairwise_tasks_create(project=project, run_id=run.pk if run else None)
    messages.success(request, f"{made} new pair{'s' if made != 1 else ''} ready for blind review.")
    return redirect("review:pairwise-results", slug=project.slug)
