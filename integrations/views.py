"""Pages of the integrations app: API tokens (per user) and project webhooks (project admins).

Thin: check access, call a service, render.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from integrations import selectors
from integrations.forms import TokenForm, WebhookForm
from integrations.models import ApiToken, Webhook
from integrations.services.tokens import TokenError, api_token_create, api_token_revoke
from integrations.services.webhooks import (
    WebhookError,
    webhook_create,
    webhook_delete,
    webhook_set_active,
    webhook_test_send,
)
from labeling import search
from labeling.models import Membership, Project
from labeling.search import MAX_QUERY_CHARS, search_is_full_text
from labeling.selectors import project_role, user_is_admin


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """Your API tokens; a new token's secret is shown on this response only, never again."""
    is_admin = user_is_admin(request.user)
    form = TokenForm(request.POST or None, can_choose_user=is_admin)
    created = None
    if request.method == "POST" and form.is_valid():
        owner = form.cleaned_data.get("username") or request.user
        try:
            created = api_token_create(
                user=owner, name=form.cleaned_data["name"], created_by=request.user
            )
        except TokenError as exc:
            form.add_error(None, str(exc))
        else:
            form = TokenForm(can_choose_user=is_admin)
    page = Paginator(selectors.api_tokens_visible_to(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    response = render(
        request,
        "integrations/token_list.html",
        {"form": form, "page": page, "created": created, "is_admin": is_admin},
    )
    # The secret must not linger in a cache or in the browser's back-forward history.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk and not user_is_admin(request.user):
        raise Http404("No such token.")
    if api_token_revoke(token=token, by=request.user):
        messages.success(request, f"Token {token.name} revoked: it no longer works.")
    else:
        messages.error(request, "That token was already revoked.")
    return redirect("integrations:token-list")


SEARCH_PAGE_SIZE = 60


@login_required
@require_http_methods(["GET"])
def image_search(request: HttpRequest, slug: str) -> HttpResponse:
    """The project page's search box: images ranked by how well their captions match (newest
    first when the query is too broad to rank; the page says which)."""
    project = get_object_or_404(Project, slug=slug)
    if project_role(project=project, user=request.user) is None:
        raise Http404("No such project.")
    query = request.GET.get("q", "").strip()[:MAX_QUERY_CHARS]
    cursor = None
    if request.GET.get("cursor"):
        try:
            cursor = search.Cursor.decode(request.GET["cursor"])
        except search.BadCursor:
            cursor = None  # a mangled link: start again from the first page
    page = search.image_search_page(
        project=project, query=query, size=SEARCH_PAGE_SIZE, cursor=cursor
    )
    next_query = (
        urlencode({"q": query, "cursor": page.next_cursor.encode()}) if page.next_cursor else ""
    )
    return render(
        request,
        "integrations/image_search.html",
        {
            "project": project,
            "q": query,
            "page": page,
            "ranked": page.order == search.RANK,
            "later_page": cursor is not None,
            "broad_matches": search.BROAD_MATCHES,
            "first_query": urlencode({"q": query}),
            "next_query": next_query,
            "full_text": search_is_full_text(),
        },
    )


# --- webhooks -------------------------------------------------------------------------------


def _admin_project(request: HttpRequest, slug: str) -> Project:
    """Project admins only; members without the role get 403, anyone else 404."""
    project = get_object_or_404(Project, slug=slug)
    role = project_role(project=project, user=request.user)
    if role is None:
        raise Http404("No such project.")
    if role != Membership.Role.ADMIN:
        raise PermissionDenied("Only project admins manage webhooks.")
    return project


def _webhook(request: HttpRequest, pk: int) -> Webhook:
    webhook = get_object_or_404(Webhook.objects.select_related("project"), pk=pk)
    _admin_project(request, webhook.project.slug)
    return webhook


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = _admin_project(request, slug)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhook_create(
                project=project,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                created_by=request.user,
            )
        except WebhookError as exc:
            form.add_error("url", str(exc))
        else:
            messages.success(request, "Webhook added. Copy its secret to verify signatures.")
            return redirect("integrations:webhook-detail", pk=webhook.pk)
    return render(
        request,
        "integrations/webhook_list.html",
        {
            "project": project,
            "form": form,
            "webhooks": selectors.webhooks_for_project(project=project),
        },
    )


@login_required
@require_http_methods(["GET"])
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _webhook(request, pk)
    page = Paginator(selectors.webhook_deliveries(webhook=webhook), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "integrations/webhook_detail.html",
        {"webhook": webhook, "project": webhook.project, "page": page, "query": ""},
    )


@login_required
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _webhook(request, pk)
    webhook_test_send(webhook=webhook, by=request.user)
    messages.success(request, "Test delivery queued; its outcome appears in the log below.")
    return redirect("integrations:webhook-detail", pk=webhook.pk)


@login_required
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _webhook(request, pk)
    webhook_set_active(webhook=webhook, active=not webhook.active)
    messages.success(request, "Webhook switched on." if webhook.active else "Webhook switched off.")
    return redirect("integrations:webhook-detail", pk=webhook.pk)


@login_required
@require_POST
def webhook_remove(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _webhook(request, pk)
    slug = webhook.project.slug
    webhook_delete(webhook=webhook)
    messages.success(request, "Webhook deleted.")
    return redirect("integrations:webhook-list", slug=slug)
