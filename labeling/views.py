"""Pages of the labeling app: projects, images, imports. Thin: check access, call a service."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling import selectors
from labeling.forms import (
    ExportForm,
    ImageFilterForm,
    MemberForm,
    ProjectForm,
    UploadForm,
    UrlListForm,
    ZipForm,
)
from labeling.models import Export, Image, ImportBatch, ImportItem, Membership, Project
from labeling.services import batches as batch_services
from labeling.services import derivatives
from labeling.services import export as export_services
from labeling.services.ingest import batch_create
from labeling.services.projects import ProjectError, member_add, member_remove, project_create

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
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "role": role,
        "is_admin": role == Membership.Role.ADMIN,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "counts": selectors.image_status_counts(project=project),
        "batches": project.batches.all()[:10],
    }
    context.update(_route_status_context())
    if context["is_admin"]:
        context["risk_corrections"] = _risk_corrections_rows(project)
    return render(request, "labeling/project_detail.html", context)


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


@login_required
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        if "remove" in request.POST:
            member_remove(project=project, user_id=int(request.POST["remove"]))
            messages.success(request, "Member removed.")
            return redirect("labeling:project-members", slug=slug)
        if form.is_valid():
            try:
                member_add(project=project, **form.cleaned_data)
            except ProjectError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Member saved.")
                return redirect("labeling:project-members", slug=slug)
    members = project.memberships.select_related("user").order_by("user__username")
    return render(
        request,
        "labeling/project_members.html",
        {"project": project, "form": form, "members": members},
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
def batch_open(request: HttpRequest, slug: str) -> JsonResponse:
    """The page's script opens a batch, then posts files to it one by one (per-file progress)."""
    project, _ = _project(request, slug, admin=True)
    try:
        expected = max(0, int(request.POST.get("expected", "0"))) or None
    except ValueError:
        expected = None
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
    from review.selectors import image_risk_overview

    return render(
        request,
        "labeling/image_detail.html",
        {
            "image": image,
            "project": image.project,
            "near": selectors.image_near_duplicates(image=image),
            "risk_rows": image_risk_overview(image=image),
            "can_correct_risk": role == Membership.Role.ADMIN,
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
            # The worker has not got to it yet: make it now rather than show a broken tile.
            derivatives.image_make_derivatives(image=image)
        return _serve(image.thumb_small if size == "small" else image.thumb_large, "image/webp")
    except OSError as exc:
        raise _missing_file(image, exc) from exc


@login_required
@require_GET
def image_display(request: HttpRequest, pk: int) -> FileResponse:
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    _project(request, image.project.slug)
    try:
        derivatives.image_display_file(image=image)
        return _serve(image.display, "image/webp")
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
