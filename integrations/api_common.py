"""What every API module shares: cursor pagination, project-scoped permission checks, and query
parameters checked against an allow-list.

Permission rule (the same as the pages): a project's objects exist only for its members and site
admins; anyone else gets 404, never a 403 that would confirm the object exists. Members without
the role an action needs get 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from labeling.models import Membership, Project
from labeling.selectors import project_role

# Parameters every list understands besides its own filters.
PAGING_PARAMS = frozenset({"cursor", "page_size", "format"})


class IdCursorPagination(CursorPagination):
    """Newest first by id: a unique, indexed, never-changing key, so pages stay stable while rows
    are inserted (an offset would shift and repeat or skip rows)."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class OldestFirstCursorPagination(IdCursorPagination):
    ordering = "id"


def project_or_404(request: Request, slug: str, *, admin: bool = False) -> tuple[Project, str]:
    project = Project.objects.filter(slug=slug).first()
    role = project_role(project=project, user=request.user) if project else None
    if project is None or role is None:
        raise exceptions.NotFound("No such project.")
    if admin and role != Membership.Role.ADMIN:
        raise exceptions.PermissionDenied("Only project admins can do this.")
    return project, role


def object_or_404(
    request: Request,
    queryset: QuerySet,
    *,
    pk: int,
    project_of=lambda obj: obj.project,
    admin: bool = False,
) -> Any:
    """The object if its project is visible to the user (404 otherwise), 403 without the role."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise exceptions.NotFound("Not found.")
    project = project_of(obj)
    try:
        project_or_404(request, project.slug, admin=admin)
    except exceptions.NotFound as exc:
        raise exceptions.NotFound("Not found.") from exc
    return obj


def filters_from(request: Request, serializer_class: type[serializers.Serializer]) -> dict:
    """The list's filters, validated. Unknown parameters are refused rather than ignored, so a
    client never believes it filtered when it did not (and no raw lookup reaches the ORM)."""
    allowed = set(serializer_class().fields) | PAGING_PARAMS
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        hint = "Unknown parameter; allowed: " + ", ".join(sorted(allowed))
        raise exceptions.ValidationError({name: [hint] for name in unknown})
    ser = serializer_class(data=request.query_params)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


class NoFilters(serializers.Serializer):
    pass


def model_errors(errors: dict[str, Any]) -> exceptions.ValidationError:
    """A Django form's errors as a DRF 400 (the API reuses the pages' forms for their rules)."""
    return exceptions.ValidationError(
        {("non_field_errors" if k == "__all__" else k): list(v) for k, v in errors.items()}
    )


def pk_of(obj: Model | None) -> int | None:
    return obj.pk if obj is not None else None
