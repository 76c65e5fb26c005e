"""Pages of the integrations app: API tokens (per user) and project webhooks (project admins).

Thin: check access, call a service, render.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from integrations import selectors
from integrations.forms import TokenForm
from integrations.models import ApiToken
from integrations.services.tokens import TokenError, api_token_create, api_token_revoke
from labeling.models import Project
from labeling.search import MAX_QUERY_CHARS, search_is_full_text
from labeling.search import image_search as image_search_selector
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


@login_required
@require_http_methods(["GET"])
def image_search(request: HttpRequest, slug: str) -> HttpResponse:
    """The project page's search box: images ranked by how well their captions match."""
    project = get_object_or_404(Project, slug=slug)
    if project_role(project=project, user=request.user) is None:
        raise Http404("No such project.")
    query = request.GET.get("q", "").strip()[:MAX_QUERY_CHARS]
    page = Paginator(image_search_selector(project=project, query=query), 60).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "integrations/image_search.html",
        {
            "project": project,
            "q": query,
            "page": page,
            "query": urlencode({"q": query}),
            "full_text": search_is_full_text(),
        },
    )
