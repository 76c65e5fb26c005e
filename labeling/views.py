"""Pages of the labeling app: projects, images, imports. Thin: check access, call a service."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling import selectors
from labeling.forms import (
    ExportForm,
    GuidelinesForm,
    ImageFilterForm,
    InvitationAcceptForm,
    InviteForm,
    MemberForm,
    PredictionsForm,
    ProjectForm,
    RoleForm,
    UploadForm,
    UrlListForm,
    UserCreateForm,
    ZipForm,
)
from labeling.models import (
    Export,
    Image,
    ImportBatch,
    ImportItem,
    Invitation,
    Membership,
    Project,
    RiskCategory,
)
from labeling.services import batches as batch_services
from labeling.services import derivatives, team
from labeling.services import export as export_services
from labeling.services.ingest import batch_create
from labeling.services.projects import (
    ProjectError,
    member_add,
    member_is_last_admin,
    member_remove,
    member_set_role,
    project_create,
    project_guidelines_save,
)

PAGE_SIZE = 60


def _project(request: HttpRequest, slug: str, *, admin: bool = False) -> tuple[Project, str]:
    """The project and the user's role in it; 404 for outsiders (existence is not disclosed)."""
    project = get_object_or_404(Project, slug=slug)
    role = selectors.project_role(project=project, user=request.user)
    if role is None:
        raise Http404("No such project.")
    if admin and role != Membership.Role.ADMIN:
        raise PermissionDenied("Only project admins can do this.")
    return project, role


def _batch(request: HttpRequest, pk: int, *, admin: bool = False) -> ImportBatch:
    batch = get_object_or_404(ImportBatch.objects.select_related("project"), pk=pk)
    _project(request, batch.project.slug, admin=admin)
    return batch


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.project_list_for(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "labeling/project_list.html",
        {"page": page, "can_create": selectors.user_is_admin(request.user)},
    )


@login_required
def project_create_view(request: HttpRequest) -> HttpResponse:
    if not selectors.user_is_admin(request.user):
        raise PermissionDenied("Only admins create projects.")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(created_by=request.user, **form.cleaned_data)
        except ProjectError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Project {project.name} created.")
            return redirect("labeling:project-detail", slug=project.slug)
    return render(request, "labeling/project_form.html", {"form": form})


@login_required
@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _project(request, slug)
    form = ImageFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    images = selectors.image_list(
        project=project,
        status=filters.get("status") or "",
        batch_id=filters.get("batch"),
        near_duplicates=bool(filters.get("near")),
    )
    risk = filters.get("risk") or ""
    if risk or filters.get("threshold"):
        from review.selectors import images_by_risk

        images = images_by_risk(
            images,
            project=project,
            category="" if risk == "any" else risk,
            near_threshold=bool(filters.get("threshold")),
        )
    counts = selectors.image_status_counts(project=project)
    paginator = Paginator(images, PAGE_SIZE)
    if not (risk or filters.get("threshold") or filters.get("batch") or filters.get("near")):
        # The per-status counts the page shows anyway are the list's count: a second count of
        # a big project's images would cost as much again.
        status = filters.get("status") or ""
        paginator.count = counts[status] if status else sum(counts.values())
    page = paginator.get_page(request.GET.get("page"))
    _add_risk_badges(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "role": role,
        "is_admin": role == Membership.Role.ADMIN,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "image_counts": [(label, counts[value]) for value, label in Image.Status.choices],
        "risk_categories": RiskCategory.choices,
        "batches": project.batches.all()[:10],
    }
    if context["is_admin"]:
        # Keys, GPU workers and breakers are for admins to act on; annotators never see them.
        context.update(_route_status_context())
        context["risk_corrections"] = _risk_corrections_rows(project)
    return render(request, "labeling/project_detail.html", context)


def _add_risk_badges(images) -> None:
    """Each tile's flagged categories, an admin's correction winning (one query per page)."""
    from review.selectors import image_risk_categories

    images = list(images)
    flagged = image_risk_categories(image_ids=[image.pk for image in images])
    labels = dict(RiskCategory.choices)
    for image in images:
        image.risk_labels = [labels[c] for c in sorted(flagged.get(image.pk, ()))]


def _risk_corrections_rows(project: Project) -> list[dict[str, object]]:
    """How often admins overruled the risk analyser here, one row per category."""
    from review.models import RiskCategory
    from review.services.risk import risk_corrections_count

    counts = risk_corrections_count(project=project)
    return [
        {"label": label, **counts.get(category, {"added": 0, "removed": 0, "confirmed": 0})}
        for category, label in RiskCategory.choices
    ]


def _route_status_context() -> dict[str, object]:
    """Which model routes are usable, when the routing app provides it."""
    try:
        from routing.selectors import routes_usable
    except ImportError:
        return {}
    return {"route_status": routes_usable()}


def _confirm(request: HttpRequest, *, title: str, lines: list[str], fields, label: str, back: str):
    """The no-JavaScript confirmation step of a destructive action (templates/confirm.html)."""
    return render(
        request,
        "confirm.html",
        {
            "title": title,
            "lines": lines,
            "action": request.path,
            "fields": fields,
            "confirm_label": label,
            "back_url": back,
        },
    )


def _members_context(request: HttpRequest, project: Project, **forms) -> dict[str, object]:
    members = project.memberships.select_related("user").order_by("role", "user__username")
    context: dict[str, object] = {
        "project": project,
        "page": Paginator(members, 50).get_page(request.GET.get("page")),
        "invitations": selectors.invitations_open(project=project),
        "form": MemberForm(),
        "create_form": UserCreateForm(),
        "invite_form": InviteForm(),
        "roles": Membership.Role.choices,
        "admin_count": members.filter(role=Membership.Role.ADMIN).count(),
        "invitation_days": settings.INVITATION_DAYS,
    }
    context.update(forms)
    return context


def _invite_url(request: HttpRequest, issued: team.Issued) -> str:
    return request.build_absolute_uri(
        reverse("labeling:invitation-accept", kwargs={"token": issued.token})
    )


def _share_link(request: HttpRequest, issued: team.Issued, who: str) -> None:
    """Email the link when there is an address; show it once either way (it is stored hashed)."""
    url = _invite_url(request, issued)
    sent = team.invitation_send(issued=issued, url=url)
    request.session["invitation_link"] = {"url": url, "who": who, "sent": sent}


def _members_page(request: HttpRequest, project: Project, **forms) -> HttpResponse:
    context = _members_context(request, project, **forms)
    context["new_link"] = request.session.pop("invitation_link", None)
    return render(request, "labeling/project_members.html", context)


def _member_add(request: HttpRequest, project: Project) -> HttpResponse | None:
    form = MemberForm(request.POST)
    if not form.is_valid():
        return _members_page(request, project, form=form)
    member_add(project=project, **form.cleaned_data)
    messages.success(request, f"{form.cleaned_data['username']} is on the project.")
    return None


def _member_role(request: HttpRequest, project: Project) -> HttpResponse | None:
    form = RoleForm(request.POST)
    if form.is_valid():
        member = get_object_or_404(
            Membership.objects.select_related("user"),
            project=project,
            user_id=form.cleaned_data["user"],
        )
        member_set_role(project=project, user=member.user, role=form.cleaned_data["role"])
        messages.success(request, f"{member.user.get_username()}: role saved.")
    return None


def _member_create(request: HttpRequest, project: Project) -> HttpResponse | None:
    form = UserCreateForm(request.POST)
    if not form.is_valid():
        return _members_page(request, project, create_form=form)
    membership, issued = team.user_create(
        project=project, created_by=request.user, **form.cleaned_data
    )
    who = membership.user.get_username()
    messages.success(request, f"Account {who} created and added to the project.")
    if issued is not None:
        _share_link(request, issued, who)
    return None


def _member_invite(request: HttpRequest, project: Project) -> HttpResponse | None:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _members_page(request, project, invite_form=form)
    issued = team.invitation_create(project=project, created_by=request.user, **form.cleaned_data)
    _share_link(request, issued, issued.invitation.email)
    return None


def _posted_id(request: HttpRequest, name: str) -> int:
    """A row id from the form; anything else ("abc", 3000000000) is a 400, not a 500."""
    value = request.POST.get(name, "")
    if not value.isascii() or not value.isdigit() or int(value) > 2**63 - 1:
        raise BadRequest(f"{name} must be an id.")
    return int(value)


def _member_remove(request: HttpRequest, project: Project) -> HttpResponse | None:
    member = get_object_or_404(
        Membership.objects.select_related("user"),
        project=project,
        user_id=_posted_id(request, "user"),
    )
    name = member.user.get_username()
    if member_is_last_admin(project=project, user_id=member.user_id):
        # Refused at once, rather than asked "are you sure?" and refused after.
        raise ProjectError(
            f"{name} is the last admin of {project.name}; "
            "make someone else an admin before removing them."
        )
    if request.POST.get("confirm") != "1":
        return _confirm(
            request,
            title=f"Remove {name} from {project.name}?",
            lines=[
                f"{name} will no longer see this project or its review queue.",
                "Verdicts they gave stay. You can add them again later.",
            ],
            fields=[("action", "remove"), ("user", member.user_id)],
            label=f"Remove {name}",
            back=request.path,
        )
    member_remove(project=project, user_id=member.user_id)
    messages.success(request, f"{name} was removed from the project.")
    return None


def _invitation_revoke(request: HttpRequest, project: Project) -> HttpResponse | None:
    invitation = get_object_or_404(
        Invitation.objects.select_related("user"),
        project=project,
        pk=_posted_id(request, "invitation"),
    )
    who = invitation.email or (invitation.user.get_username() if invitation.user else "")
    if request.POST.get("confirm") != "1":
        return _confirm(
            request,
            title=f"Revoke the invitation for {who}?",
            lines=["The link stops working at once. You can invite them again later."],
            fields=[("action", "revoke"), ("invitation", invitation.pk)],
            label="Revoke the invitation",
            back=request.path,
        )
    team.invitation_revoke(invitation=invitation)
    messages.success(request, f"The invitation for {who} was revoked.")
    return None


_MEMBER_ACTIONS = {
    "add": _member_add,
    "role": _member_role,
    "create": _member_create,
    "invite": _member_invite,
    "remove": _member_remove,
    "revoke": _invitation_revoke,
}


@login_required
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    """The team page: members and their roles, open invitations, and forms to bring people in.
    Each form posts an ``action``; removing and revoking ask for confirmation first."""
    project, _ = _project(request, slug, admin=True)
    if request.method != "POST":
        return _members_page(request, project)
    # A form without an action is the plain "add by username" one (as before actions existed).
    action = request.POST.get("action") or ("add" if "username" in request.POST else "")
    handler = _MEMBER_ACTIONS.get(action)
    if handler is None:
        messages.error(request, "Unknown action.")
    else:
        try:
            response = handler(request, project)
        except (ProjectError, ValueError) as exc:
            messages.error(request, str(exc))
        else:
            if response is not None:
                return response
    return redirect("labeling:project-members", slug=slug)


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Where an invitation link lands: choose a password (and a username), or join as yourself."""
    invitation = team.invitation_find(token=token)
    if invitation is None:
        return render(request, "labeling/invitation_accept.html", {"invalid": True}, status=404)
    signed_in = request.user.is_authenticated
    if invitation.user is not None and signed_in and request.user.pk != invitation.user_id:
        return render(
            request,
            "labeling/invitation_accept.html",
            {"invitation": invitation, "wrong_user": True},
            status=403,
        )
    joins_as_self = signed_in and invitation.user is None
    form = None
    if not joins_as_self:
        form = InvitationAcceptForm(request.POST or None, needs_username=invitation.user is None)
    if request.method == "POST" and (joins_as_self or form.is_valid()):
        data = form.cleaned_data if form is not None else {}
        try:
            user = team.invitation_accept(
                token=token,
                password=data.get("password1", ""),
                username=data.get("username", ""),
                user=request.user if joins_as_self else None,
            )
        except ProjectError as exc:
            if form is None:
                messages.error(request, str(exc))
            else:
                form.add_error(None, str(exc))
        else:
            if not joins_as_self:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.project.name}.")
            return redirect("labeling:project-detail", slug=invitation.project.slug)
    return render(
        request,
        "labeling/invitation_accept.html",
        {"invitation": invitation, "form": form, "joins_as_self": joins_as_self},
    )


@login_required
def project_guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's reviewer guidelines: everyone on it reads them, admins edit them."""
    project, role = _project(request, slug)
    is_admin = role == Membership.Role.ADMIN
    form = GuidelinesForm(request.POST or None, initial={"guidelines": project.guidelines})
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only project admins edit the guidelines.")
        if form.is_valid():
            project_guidelines_save(project=project, text=form.cleaned_data["guidelines"])
            messages.success(request, "Guidelines saved.")
            return redirect("labeling:project-guidelines", slug=slug)
    return render(
        request,
        "labeling/guidelines.html",
        {"project": project, "form": form if is_admin else None, "is_admin": is_admin},
    )


@login_required
@require_GET
def import_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    return render(
        request,
        "labeling/import.html",
        {
            "project": project,
            "upload_form": UploadForm(),
            "zip_form": ZipForm(),
            "url_form": UrlListForm(),
            "predictions_form": PredictionsForm(),
            "batches": project.batches.all()[:20],
        },
    )


@login_required
@require_POST
def import_upload(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose at least one file to upload.")
        return redirect("labeling:import", slug=slug)
    batch = batch_services.batch_upload_files(
        project=project, user=request.user, files=form.cleaned_data["files"]
    )
    return redirect("labeling:batch-detail", pk=batch.pk)


@login_required
@require_POST
def import_zip(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = ZipForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a zip archive to upload.")
        return redirect("labeling:import", slug=slug)
    batch = batch_services.batch_create_from_zip(
        project=project, user=request.user, archive=form.cleaned_data["archive"]
    )
    return redirect("labeling:batch-detail", pk=batch.pk)


@login_required
@require_POST
def import_urls(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = UrlListForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Paste at least one URL.")
        return redirect("labeling:import", slug=slug)
    batch = batch_services.batch_create_from_urls(
        project=project, user=request.user, text=form.cleaned_data["urls"]
    )
    return redirect("labeling:batch-detail", pk=batch.pk)


@login_required
@require_POST
def import_predictions(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = PredictionsForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a predictions file (JSON, JSONL or zip) to upload.")
        return redirect("labeling:import", slug=slug)
    batch = batch_services.batch_create_from_predictions(
        project=project, user=request.user, upload=form.cleaned_data["file"]
    )
    return redirect("labeling:batch-detail", pk=batch.pk)


@login_required
@require_POST
def batch_open(request: HttpRequest, slug: str) -> JsonResponse:
    """The page's script opens a batch, then posts files to it one by one (per-file progress)."""
    project, _ = _project(request, slug, admin=True)
    raw = request.POST.get("expected", "") or "0"
    # The announced count only drives the progress bar; the column holds up to 2**31 - 1.
    if not raw.isascii() or not raw.isdigit() or int(raw) > 10_000_000:
        raise BadRequest("expected must be a number of files (at most 10,000,000).")
    expected = int(raw) or None
    batch = batch_create(
        project=project, kind=ImportBatch.Kind.UPLOAD, user=request.user, expected=expected
    )
    return JsonResponse(
        {
            "id": batch.pk,
            "files_url": reverse("labeling:batch-files", kwargs={"pk": batch.pk}),
            "close_url": reverse("labeling:batch-close", kwargs={"pk": batch.pk}),
            "batch_url": reverse("labeling:batch-detail", kwargs={"pk": batch.pk}),
        },
        status=201,
    )


@login_required
@require_POST
def batch_files(request: HttpRequest, pk: int) -> JsonResponse:
    batch = _batch(request, pk, admin=True)
    if batch.kind != ImportBatch.Kind.UPLOAD or batch.status in (
        ImportBatch.Status.DONE,
        ImportBatch.Status.FAILED,
    ):
        return JsonResponse({"error": "This batch no longer accepts files."}, status=409)
    outcomes = batch_services.batch_add_uploads(batch=batch, files=request.FILES.getlist("files"))
    return JsonResponse({"results": [o.as_json() for o in outcomes]})


@login_required
@require_POST
def batch_close(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk, admin=True)
    batch_services.batch_close(batch=batch)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"status": batch.status})
    return redirect("labeling:batch-detail", pk=batch.pk)


def _batch_context(request: HttpRequest, batch: ImportBatch) -> dict[str, object]:
    status = request.GET.get("status", "")
    if status not in ImportItem.Status.values:
        status = ""
    page = Paginator(selectors.batch_items(batch=batch, status=status), 100).get_page(
        request.GET.get("page")
    )
    return {"batch": batch, "project": batch.project, "items_page": page, "status_filter": status}


@login_required
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    return render(request, "labeling/batch_detail.html", _batch_context(request, batch))


@login_required
@require_GET
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    return render(request, "labeling/_batch_progress.html", _batch_context(request, batch))


@login_required
@require_GET
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("project", "batch"), pk=pk)
    _, role = _project(request, image.project.slug)
    from review.selectors import image_caption_reviews, image_risk_overview, review_policy_for

    return render(
        request,
        "labeling/image_detail.html",
        {
            "image": image,
            "project": image.project,
            "near": selectors.image_near_duplicates(image=image),
            "risk_rows": image_risk_overview(image=image),
            "can_correct_risk": role == Membership.Role.ADMIN,
            "is_admin": role == Membership.Role.ADMIN,
            "caption_reviews": image_caption_reviews(image=image),
            "show_models": role == Membership.Role.ADMIN
            or review_policy_for(project=image.project).show_model_name,
            "preview_failure": (
                ""
                if image.thumb_large and image.display
                else derivatives.image_derivatives_failure(image=image)
            ),
        },
    )


logger = logging.getLogger(__name__)


def _missing_file(image: Image, exc: OSError) -> Http404:
    """A stored file the database knows of is not in storage (MEDIA_ROOT moved, a volume not
    mounted): a 404 for the browser and a warning for the operator, never a 500."""
    logger.warning(
        "image %s: stored file missing (%s: %s); check MEDIA_ROOT / STORAGE_BACKEND",
        image.pk,
        getattr(exc, "filename", None) or "storage",
        exc.strerror or exc,
    )
    return Http404("The image file is missing from storage.")


def _serve(storage_file, content_type: str) -> FileResponse:
    response = FileResponse(storage_file.open("rb"), content_type=content_type)
    # Served bytes are never interpreted as anything but an image.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def image_thumb(request: HttpRequest, pk: int, size: str) -> FileResponse:
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    _project(request, image.project.slug)
    if size not in ("small", "large"):
        raise Http404("No such size.")
    try:
        if not (image.thumb_small and image.thumb_large):
            # The worker has not got to it yet: make it now (once, under the image's row lock)
            # rather than show a broken tile.
            derivatives.image_make_derivatives(image=image)
        thumb = image.thumb_small if size == "small" else image.thumb_large
        return _serve(thumb, derivatives.display_content_type(thumb.name))
    except derivatives.DerivativeFailed as exc:
        raise Http404(f"No preview: {exc.reason}") from exc
    except OSError as exc:
        raise _missing_file(image, exc) from exc


@login_required
@require_GET
def image_display(request: HttpRequest, pk: int) -> FileResponse:
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    _project(request, image.project.slug)
    try:
        if image.display:
            return _serve(image.display, derivatives.display_content_type(image.display.name))
        # Made by a worker, once; until then the large thumbnail stands in (not cached, so the
        # browser asks again next time).
        derivatives.image_display_request(image=image)
        derivatives.image_make_derivatives(image=image)
        response = _serve(
            image.thumb_large, derivatives.display_content_type(image.thumb_large.name)
        )
        response["Cache-Control"] = "no-store"
        return response
    except derivatives.DerivativeFailed as exc:
        raise Http404(f"No preview: {exc.reason}") from exc
    except OSError as exc:
        raise _missing_file(image, exc) from exc


# --- Exports --------------------------------------------------------------------------------------


def _export(request: HttpRequest, pk: int) -> Export:
    """Exports are for the project's admins; anyone else gets a 404 (another project) or 403."""
    export = get_object_or_404(Export.objects.select_related("project"), pk=pk)
    _project(request, export.project.slug, admin=True)
    return export


def _spec_from_form(form: ExportForm, base_url: str) -> export_services.ExportSpec:
    data = form.cleaned_data
    return export_services.ExportSpec(
        format=data["format"],
        scope=data["include"],
        images=data["images"],
        variant=data["variant"],
        provenance=data["provenance"],
        parquet=data["parquet"],
        base_url=base_url,
        run_id=data["run"],
        route=data["route"].strip(),
        model=data["model"].strip(),
        decided_from=data["decided_from"],
        decided_to=data["decided_to"],
        risk=data["risk"],
        decision=data["decision"],
        batch_id=data["batch"],
    )


@login_required
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        base_url = request.build_absolute_uri("/").rstrip("/")
        try:
            spec = _spec_from_form(form, base_url)
        except export_services.ExportInvalid as exc:
            form.add_error(None, str(exc))
        else:
            export = export_services.export_create(project=project, user=request.user, spec=spec)
            return redirect("labeling:export-detail", pk=export.pk)
    page = Paginator(project.exports.select_related("created_by").order_by("-id"), 20).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "labeling/export_list.html",
        {"project": project, "form": form, "page": page, "ls_config": _ls_config()},
    )


def _ls_config() -> str:
    from labeling.services.export.formats import LABEL_STUDIO_CONFIG

    return LABEL_STUDIO_CONFIG


@login_required
@require_GET
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    export = _export(request, pk)
    return render(
        request,
        "labeling/export_detail.html",
        {
            "export": export,
            "project": export.project,
            "options": [(k, v) for k, v in export.options.items() if v not in (None, "", False)],
            "ls_config": _ls_config(),
        },
    )


@login_required
@require_GET
def export_progress(request: HttpRequest, pk: int) -> HttpResponse:
    export = _export(request, pk)
    return render(request, "labeling/_export_progress.html", {"export": export})


@login_required
@require_POST
def export_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    export = _export(request, pk)
    if export_services.export_cancel(export=export):
        messages.success(request, f"{export} cancelled.")
    else:
        messages.info(request, f"{export} had already ended.")
    return redirect("labeling:export-detail", pk=export.pk)


@login_required
@require_GET
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    export = _export(request, pk)
    if export.status != Export.Status.DONE or not export.file:
        raise Http404("This export has no file.")
    response = FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=export.file_name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
