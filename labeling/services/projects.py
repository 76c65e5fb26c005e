"""Projects and who works on them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from labeling.models import Membership, Project


class ProjectError(Exception):
    pass


@transaction.atomic
def project_create(
    *, name: str, slug: str = "", created_by=None, caption_prompt: str = ""
) -> Project:
    slug = slugify(slug or name)[:100]
    if not slug:
        raise ProjectError("A project needs a name with at least one letter or digit.")
    if Project.objects.filter(slug=slug).exists():
        raise ProjectError(f"A project with the slug {slug!r} already exists.")
    project = Project(name=name.strip()[:200], slug=slug, created_by=created_by)
    if caption_prompt:
        project.caption_prompt = caption_prompt
    project.save()
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.ADMIN)
    return project


def _lock_team(project: Project) -> None:
    # Two admins demoting each other at the same moment must not leave the project without one.
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _admins_left_without(project: Project, user_id: int) -> int:
    return (
        Membership.objects.filter(project=project, role=Membership.Role.ADMIN)
        .exclude(user_id=user_id)
        .count()
    )


def check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise ProjectError(f"Unknown role {role!r}.")


@transaction.atomic
def member_set_role(*, project: Project, user, role: str) -> Membership:
    """Add ``user`` to the project with ``role``, or change the role they have.

    A project keeps at least one admin member: the last one cannot become an annotator (site
    admins see every project, but they are not its team)."""
    check_role(role)
    _lock_team(project)
    current = Membership.objects.filter(project=project, user=user).first()
    if (
        current is not None
        and current.role == Membership.Role.ADMIN
        and role != Membership.Role.ADMIN
        and _admins_left_without(project, user.pk) == 0
    ):
        raise ProjectError(
            f"{user.get_username()} is the last admin of {project.name}; "
            "make someone else an admin first."
        )
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def member_add(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ProjectError(
            f"No user named {username.strip()!r}. Create the account or invite them instead."
        )
    return member_set_role(project=project, user=user, role=role)


def member_is_last_admin(*, project: Project, user_id: int) -> bool:
    """Whether this member is the only admin, so that pages can say so before asking."""
    return (
        Membership.objects.filter(
            project=project, user_id=user_id, role=Membership.Role.ADMIN
        ).exists()
        and _admins_left_without(project, user_id) == 0
    )


@transaction.atomic
def member_remove(*, project: Project, user_id: int) -> bool:
    """Take someone off the project; False if they were not on it. Refuses the last admin."""
    _lock_team(project)
    membership = (
        Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()
    )
    if membership is None:
        return False
    if membership.role == Membership.Role.ADMIN and _admins_left_without(project, user_id) == 0:
        raise ProjectError(
            f"{membership.user.get_username()} is the last admin of {project.name}; "
            "make someone else an admin before removing them."
        )
    membership.delete()
    # Their leases end with their membership, not 300 s later.
    from review.services.queue import leases_release_for_member

    leases_release_for_member(project_id=project.pk, user_id=user_id)
    return True


def project_guidelines_save(*, project: Project, text: str) -> Project:
    project.guidelines = text.strip()
    project.save(update_fields=["guidelines"])
    return project
