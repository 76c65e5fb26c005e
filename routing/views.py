"""Pages of the routing app: routes, chains and rules, captioning runs, call logs.

Thin: check access, call a service or selector, render. Project admins (and site admins) manage
chains and runs; annotators get 403, outsiders 404 (a project's existence is not disclosed).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import Project
from labeling.selectors import project_role, user_is_admin
from routing import selectors
from routing.forms import BudgetForm, ChainForm, ChainRuleForm, RouteForm, RouteTestForm, RunForm
from routing.models import Caption, CaptionRun, Chain, ChainRule, Route, RouteTest
from routing.services import breaker, route_tests
from routing.services.chains import (
    ChainError,
    chain_delete,
    chain_rule_add,
    chain_rule_delete,
    chain_save,
)
from routing.services.routes import RouteInUse, route_delete, route_set_enabled
from routing.services.runs import (
    ImageSelection,
    RunError,
    caption_retry,
    caption_stop,
    images_select,
    run_cancel,
    run_cancel_preview,
    run_launch,
    run_pause,
    run_plan,
    run_resume,
    run_retry_failed,
    run_set_budget,
)


def _admin_project(request: HttpRequest, slug: str) -> Project:
    project = get_object_or_404(Project, slug=slug)
    role = project_role(project=project, user=request.user)
    if role is None:
        raise Http404("No such project.")
    if not selectors.can_manage_project(user=request.user, project=project):
        raise PermissionDenied("Only project admins manage chains and captioning runs.")
    return project


def _routes_admin(request: HttpRequest) -> None:
    if not selectors.can_manage_routes(user=request.user):
        raise PermissionDenied("Routes are shared by every project: only site admins change them.")


def _run(request: HttpRequest, pk: int) -> CaptionRun:
    run = get_object_or_404(CaptionRun.objects.select_related("project", "chain"), pk=pk)
    _admin_project(request, run.project.slug)
    return run


# --- routes ---------------------------------------------------------------------------------


@login_required
@require_GET
def route_list(request: HttpRequest) -> HttpResponse:
    if not selectors.can_view_routes(user=request.user):
        raise PermissionDenied("Only admins see the model routes.")
    return render(
        request,
        "routing/route_list.html",
        {
            "route_status": selectors.routes_usable(),
            "can_manage": selectors.can_manage_routes(user=request.user),
        },
    )


@login_required
def route_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _routes_admin(request)
    route = get_object_or_404(Route, pk=pk) if pk else None
    data = request.POST or None
    if data is not None and route is not None:
        data = RouteForm.keep_omitted(data, route)
    form = RouteForm(data, instance=route, allow_base_url=user_is_admin(request.user))
    if request.method == "POST" and form.is_valid():
        route = form.save()
        messages.success(request, f"Route {route.name} saved.")
        return redirect("routing:route-list")
    return render(request, "routing/route_form.html", {"form": form, "route": route})


@login_required
@require_POST
def route_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    _routes_admin(request)
    route = get_object_or_404(Route, pk=pk)
    route_set_enabled(route=route, enabled=not route.enabled)
    state = "enabled" if route.enabled else "disabled: chains skip it, runs cannot choose it"
    messages.success(request, f"Route {route.name} {state}.")
    return redirect("routing:route-list")


@login_required
@require_POST
def route_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    _routes_admin(request)
    route = get_object_or_404(Route, pk=pk)
    if not request.POST.get("confirm"):
        return render(
            request,
            "confirm.html",
            {
                "title": f"Delete route {route.name}?",
                "lines": [
                    "Only a route that never captioned anything and is in no chain can be "
                    "deleted; otherwise disable it.",
                ],
                "action": reverse("routing:route-delete", args=[route.pk]),
                "fields": [],
                "confirm_label": "Delete the route",
                "back_url": reverse("routing:route-list"),
            },
        )
    try:
        route_delete(route=route)
    except RouteInUse as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Route {route.name} deleted.")
    return redirect("routing:route-list")


@login_required
@require_POST
def route_breaker_reset(request: HttpRequest, pk: int) -> HttpResponse:
    _routes_admin(request)
    route = get_object_or_404(Route, pk=pk)
    breaker.breaker_reset(route_id=route.pk)
    messages.success(request, f"Circuit breaker of {route.name} closed.")
    return redirect("routing:route-list")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def route_test_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Test a route: one call on a sample or uploaded image, run by a worker of the route's queue;
    the page then polls the answer (``route_test_result``)."""
    _routes_admin(request)
    route = get_object_or_404(Route, pk=pk)
    samples = route_tests.samples_available()
    form = RouteTestForm(
        request.POST or None,
        request.FILES or None,
        samples=samples,
        default=route_tests.DEFAULT_SAMPLE,
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("image")
        image = (
            route_tests.RouteTestImage(name=upload.name or "upload", data=upload.read())
            if upload
            else route_tests.RouteTestImage(name=form.cleaned_data["sample"])
        )
        try:
            route_tests.route_test_start(route=route, user=request.user, image=image)
        except route_tests.RouteTestError as exc:
            messages.error(request, str(exc))
        return redirect("routing:route-test", pk=route.pk)
    route_tests.route_tests_expire(route_id=route.pk)
    tests = list(RouteTest.objects.filter(route=route).select_related("created_by")[:10])
    return render(
        request,
        "routing/route_test.html",
        {
            "route": route,
            "form": form,
            "latest": tests[0] if tests else None,
            "earlier": tests[1:],
            "queue": route_tests.route_test_queue(route),
        },
    )


@login_required
@require_GET
def route_test_result(request: HttpRequest, pk: int) -> HttpResponse:
    """One test's answer; htmx polls it while the test is live."""
    _routes_admin(request)
    test = get_object_or_404(RouteTest.objects.select_related("route", "created_by"), pk=pk)
    if test.is_live:
        route_tests.route_tests_expire(route_id=test.route_id)
        test.refresh_from_db()
    return render(
        request,
        "routing/_route_test_result.html",
        {"test": test, "queue": route_tests.route_test_queue(test.route)},
    )


# --- chains and rules -----------------------------------------------------------------------


@login_required
@require_GET
def chain_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = _admin_project(request, slug)
    return render(
        request,
        "routing/chain_list.html",
        {
            "project": project,
            "chains": selectors.chains_for_project(project=project),
            "rules": selectors.rules_for_project(project=project),
            "rule_form": ChainRuleForm(project=project),
        },
    )


@login_required
def chain_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    project = _admin_project(request, slug)
    chain = get_object_or_404(Chain, pk=pk, project=project) if pk else None
    form = ChainForm(request.POST or None, chain=chain)
    if request.method == "POST" and form.is_valid():
        try:
            chain = chain_save(
                project=project,
                chain=chain,
                name=form.cleaned_data["name"],
                routes=form.routes(),
                deadline_s=form.cleaned_data["deadline_s"],
                is_default=form.cleaned_data["is_default"],
            )
        except ChainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Chain {chain.name} saved.")
            return redirect("routing:chain-list", slug=project.slug)
    return render(
        request, "routing/chain_form.html", {"project": project, "form": form, "chain": chain}
    )


@login_required
@require_POST
def chain_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = _admin_project(request, slug)
    chain = get_object_or_404(Chain, pk=pk, project=project)
    chain_delete(chain=chain)
    messages.success(request, f"Chain {chain.name} deleted.")
    return redirect("routing:chain-list", slug=project.slug)


@login_required
@require_POST
def rule_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = _admin_project(request, slug)
    form = ChainRuleForm(request.POST, project=project)
    if form.is_valid():
        try:
            chain_rule_add(
                project=project,
                chain=form.cleaned_data["chain"],
                category=form.cleaned_data["category"],
                min_score=form.cleaned_data["min_score"],
            )
        except ChainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Rule added.")
    else:
        messages.error(request, "The rule was not added: " + form.errors.as_text())
    return redirect("routing:chain-list", slug=project.slug)


@login_required
@require_POST
def rule_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project = _admin_project(request, slug)
    chain_rule_delete(rule=get_object_or_404(ChainRule, pk=pk, project=project))
    messages.success(request, "Rule deleted.")
    return redirect("routing:chain-list", slug=project.slug)


# --- runs -----------------------------------------------------------------------------------


@login_required
@require_GET
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = _admin_project(request, slug)
    page = Paginator(selectors.runs_for_project(project=project), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "routing/run_list.html", {"project": project, "page": page})


def _selection(data: dict[str, Any]) -> ImageSelection:
    return ImageSelection(
        mode=data["selection"],
        status=data.get("status") or "",
        risk=data.get("risk") or "",
        size=data.get("sample_size"),
        seed=data.get("seed"),
    )


@login_required
def run_create(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the form. POST "estimate": what the run would ask and cost. POST "launch": start it."""
    project = _admin_project(request, slug)
    form = RunForm(request.POST or None, project=project)
    context: dict[str, Any] = {"project": project, "form": form}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        is_chain = data["kind"] == CaptionRun.Kind.CHAIN
        options = {
            "kind": data["kind"],
            "chain": data["chain"] if is_chain else None,
            "routes": list(data["routes"]) if not is_chain else [],
            "apply_rules": data["apply_rules"],
            "task": project.task_type,
            "prompt": data["prompt"],
            "params": data["params"],
            "json_schema": data["json_schema"],
        }
        try:
            if request.POST.get("action") == "launch":
                run = run_launch(
                    project=project,
                    user=request.user,
                    selection=_selection(data),
                    budget_usd=data["budget_usd"],
                    use_cache=data["use_cache"],
                    **options,
                )
                messages.success(request, f"Run #{run.pk} started: {run.caption_count} captions.")
                return redirect("routing:run-detail", pk=run.pk)
            image_ids = images_select(project=project, selection=_selection(data))
            context["plan"] = run_plan(project=project, image_ids=image_ids, **options)
        except RunError as exc:
            form.add_error(None, str(exc))
    return render(request, "routing/run_form.html", context)


def _run_live_context(run: CaptionRun) -> dict[str, Any]:
    progress, breakdown = selectors.run_live_figures(run=run)
    return {"run": run, "progress": progress, "breakdown": breakdown}


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    context = _run_live_context(run)
    context.update({"project": run.project, "routes": list(run.routes.all())})
    return render(request, "routing/run_detail.html", context)


@login_required
@require_GET
def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the run page, which htmx polls while the run is live."""
    run = _run(request, pk)
    return render(request, "routing/_run_progress.html", _run_live_context(run))


def _run_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    run = _run(request, pk)
    try:
        if action == "pause":
            if run_pause(run=run):
                messages.success(request, "Paused: calls in flight finish, nothing new starts.")
            else:
                messages.error(request, "Only a running run can be paused.")
        elif action == "resume":
            count = run_resume(run=run)
            messages.success(request, f"Resumed: {count} captions queued again.")
        elif action == "cancel":
            if not request.POST.get("confirm"):
                return _run_cancel_confirm(request, run)
            count = run_cancel(run=run)
            messages.success(request, f"Cancelled: {count} pending captions will not be made.")
        elif action == "retry-failed":
            count = run_retry_failed(run=run)
            messages.success(request, f"{count} failed captions queued again.")
        elif action == "budget":
            form = BudgetForm(request.POST)
            if form.is_valid():
                run_set_budget(run=run, budget_usd=form.cleaned_data["budget_usd"])
                messages.success(request, "Budget cap changed.")
            else:
                messages.error(request, "The budget was not changed: " + form.errors.as_text())
    except RunError as exc:
        messages.error(request, str(exc))
    return redirect("routing:run-detail", pk=run.pk)


def _run_cancel_confirm(request: HttpRequest, run: CaptionRun) -> HttpResponse:
    preview = run_cancel_preview(run=run)
    lines = [
        f"{preview['pending']} waiting caption(s) will be cancelled and never made.",
        f"{preview['running']} caption(s) in flight finish their current call (it is already "
        "paid for) and stop before any retry or fallback.",
        "Captions already made stay, with their reviews. This cannot be undone; a new run can "
        "caption the remaining images later.",
    ]
    return render(
        request,
        "confirm.html",
        {
            "title": f"Cancel run #{run.pk}?",
            "lines": lines,
            "action": reverse("routing:run-action", args=[run.pk, "cancel"]),
            "fields": [],
            "confirm_label": "Cancel the run",
            "back_url": reverse("routing:run-detail", args=[run.pk]),
        },
    )


@login_required
@require_POST
def run_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in {"pause", "resume", "cancel", "retry-failed", "budget"}:
        raise Http404("No such action.")
    return _run_action(request, pk, action)


@login_required
@require_GET
def run_captions(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    status = request.GET.get("status", "")
    if status not in Caption.Status.values:
        status = ""
    page = Paginator(selectors.run_captions(run=run, status=status), 100).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "routing/run_captions.html",
        {
            "run": run,
            "project": run.project,
            "page": page,
            "status": status,
            "statuses": Caption.Status.choices,
            "query": urlencode({"status": status}) if status else "",
        },
    )


def _caption(request: HttpRequest, pk: int) -> Caption:
    caption = get_object_or_404(
        Caption.objects.select_related("image__project", "route", "chain", "run", "target_route"),
        pk=pk,
    )
    _admin_project(request, caption.image.project.slug)
    return caption


@login_required
@require_GET
def caption_detail(request: HttpRequest, pk: int) -> HttpResponse:
    caption = _caption(request, pk)
    return render(
        request,
        "routing/caption_detail.html",
        {
            "caption": caption,
            "project": caption.image.project,
            "calls": selectors.caption_calls(caption=caption),
        },
    )


@login_required
@require_POST
def caption_stop_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Fail a caption stuck pending or running (after a confirmation step)."""
    caption = _caption(request, pk)
    if not request.POST.get("confirm"):
        return render(
            request,
            "confirm.html",
            {
                "title": f"Stop caption #{caption.pk}?",
                "lines": [
                    "It is marked failed now. A call still in flight is closed and counted at "
                    "its estimated cost (the provider may bill it); a worker still holding the "
                    "caption stops writing to it.",
                    "You can retry it afterwards.",
                ],
                "action": reverse("routing:caption-stop", args=[caption.pk]),
                "fields": [],
                "confirm_label": "Stop the caption",
                "back_url": reverse("routing:caption-detail", args=[caption.pk]),
            },
        )
    try:
        caption_stop(caption=caption, by=request.user)
    except RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Caption #{caption.pk} stopped; retry it when you want.")
    return redirect("routing:caption-detail", pk=caption.pk)


@login_required
@require_POST
def caption_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    caption = _caption(request, pk)
    try:
        caption_retry(caption=caption)
    except RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Caption #{caption.pk} queued again.")
    if caption.run_id:
        return redirect("routing:run-detail", pk=caption.run_id)
    return redirect("routing:caption-detail", pk=caption.pk)
