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


def member_add(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ProjectError(f"No user named {username!r}.")
    if role not in Membership.Role.values:
        raise ProjectError(f"Unknown role {role!r}.")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def member_remove(*, project: Project, user_id: int) -> None:
    Membership.objects.filter(project=project, user_id=user_id).delete()
