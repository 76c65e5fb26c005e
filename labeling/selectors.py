"""Reads of the labeling app, scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from labeling.models import Image, ImportBatch, ImportItem, Invitation, Membership, Project


def user_is_admin(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.is_staff))


def project_role(*, project: Project, user) -> str | None:
    """'admin', 'annotator' or None. Site admins are admins of every project."""
    if not user.is_authenticated:
        return None
    if user_is_admin(user):
        return Membership.Role.ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def project_list_for(*, user) -> QuerySet[Project]:
    qs = Project.objects.all()
    if not user_is_admin(user):
        qs = qs.filter(memberships__user=user)
    return qs.annotate(image_count=Count("images", distinct=True)).order_by("name")


def image_list(
    *,
    project: Project,
    status: str = "",
    batch_id: int | None = None,
    near_duplicates: bool = False,
) -> QuerySet[Image]:
    qs = Image.objects.filter(project=project)
    if status:
        qs = qs.filter(status=status)
    if batch_id:
        qs = qs.filter(batch_id=batch_id)
    if near_duplicates:
        qs = qs.filter(near_duplicate_of__isnull=False)
    return qs.only(
        "id",
        "project_id",
        "original_name",
        "width",
        "height",
        "format",
        "status",
        "thumb_small",
        "near_duplicate_of_id",
        "near_duplicate_distance",
        "batch_id",
    ).order_by("-id")


def image_status_counts(*, project: Project) -> dict[str, int]:
    rows = Image.objects.filter(project=project).values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in Image.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def batch_items(*, batch: ImportBatch, status: str = "") -> QuerySet[ImportItem]:
    qs = batch.items.all()
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("image").order_by("id")


def image_near_duplicates(*, image: Image) -> QuerySet[Image]:
    return (
        Image.objects.filter(Q(near_duplicate_of=image) | Q(pk=image.near_duplicate_of_id or 0))
        .exclude(pk=image.pk)
        .order_by("id")[:20]
    )


def invitations_for_project(*, project: Project, state: str = "") -> QuerySet[Invitation]:
    """A project's invitations, in any state or one of open / accepted / revoked / expired
    (the API's list; it pages through them by id)."""
    now = timezone.now()
    qs = Invitation.objects.filter(project=project).select_related("user")
    if state == "accepted":
        qs = qs.filter(accepted_at__isnull=False)
    elif state == "revoked":
        qs = qs.filter(accepted_at__isnull=True, revoked_at__isnull=False)
    elif state in ("open", "expired"):
        qs = qs.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        qs = qs.filter(expires_at__gt=now) if state == "open" else qs.filter(expires_at__lte=now)
    return qs


def invitations_open(*, project: Project) -> QuerySet[Invitation]:
    """Invitations whose link still works, newest first (a project has a handful, not pages)."""
    return (
        Invitation.objects.filter(
            project=project,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("user", "created_by")
        .order_by("-created_at")[:100]
    )
