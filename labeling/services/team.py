"""Bringing people into a project: accounts created by an admin and invitation links.

Membership changes themselves (and the last-admin guard) are in ``labeling.services.projects``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Invitation, Membership, Project
from labeling.services.projects import ProjectError, check_role, member_set_role

# The name the pages use; the same exception as membership changes raise.
TeamError = ProjectError
logger = logging.getLogger(__name__)


# --- Accounts and invitations ------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A new invitation and its link's secret (stored nowhere; shown once, sent by email)."""

    invitation: Invitation
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(
    *, project: Project, role: str, created_by, email: str = "", user=None, now: datetime
) -> Issued:
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        project=project,
        email=email,
        user=user,
        role=role,
        token_hash=_hash(token),
        created_by=created_by,
        expires_at=now + timedelta(days=settings.INVITATION_DAYS),
    )
    return Issued(invitation=invitation, token=token)


def invitation_send(*, issued: Issued, url: str) -> str:
    """Email the link (Django's email backend; the console one by default). Returns "sent",
    "no address", or why sending failed: the invitation stands either way, and the admin is
    told to pass the link on themselves."""
    invitation = issued.invitation
    address = invitation.email or (invitation.user.email if invitation.user else "")
    if not address:
        return "no address"
    inviter = invitation.created_by.get_username() if invitation.created_by else "An admin"
    try:
        send_mail(
            subject=f"You are invited to review captions in {invitation.project.name}",
            message=(
                f"{inviter} invited you to the project {invitation.project.name} on "
                f"captiondesk as {invitation.get_role_display().lower()}.\n\n"
                f"Open this link to choose your password and start:\n{url}\n\n"
                f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC and only once.\n"
            ),
            from_email=None,
            recipient_list=[address],
        )
    except (OSError, smtplib.SMTPException) as exc:  # connection refused, auth, bad address
        logger.warning("invitation %s: email to %s failed: %s", invitation.pk, address, exc)
        return f"failed ({exc.__class__.__name__}: {exc})"
    return "sent"


def invitation_create(
    *, project: Project, email: str, role: str, created_by, now: datetime | None = None
) -> Issued:
    """Invite someone without an account: the link lets them choose a username and password."""
    check_role(role)
    email = get_user_model().objects.normalize_email(email.strip())
    if not email:
        raise TeamError("An invitation needs an email address.")
    return _issue(
        project=project, role=role, created_by=created_by, email=email, now=now or timezone.now()
    )


@transaction.atomic
def user_create(
    *,
    project: Project,
    username: str,
    email: str,
    role: str,
    password: str,
    created_by,
    now: datetime | None = None,
) -> tuple[Membership, Issued | None]:
    """Create an account and add it to the project. With no password, the account has none
    until its owner opens the set-password link returned here (also emailed when possible)."""
    check_role(role)
    model = get_user_model()
    username = username.strip()
    if not username:
        raise TeamError("A user needs a username.")
    user = model(username=username, email=model.objects.normalize_email(email.strip()))
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise TeamError(" ".join(exc.messages)) from exc
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise TeamError(f"The username {username!r} is taken.") from exc
    membership = member_set_role(project=project, user=user, role=role)
    issued = None
    if not password:
        issued = _issue(
            project=project, role=role, created_by=created_by, user=user, now=now or timezone.now()
        )
    return membership, issued


def invitation_find(*, token: str, now: datetime | None = None) -> Invitation | None:
    """The open invitation behind a link; None if unknown, used, revoked or expired."""
    now = now or timezone.now()
    return (
        Invitation.objects.select_related("project", "user")
        .filter(
            token_hash=_hash(token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .first()
    )


@transaction.atomic
def invitation_accept(
    *, token: str, password: str, username: str = "", user=None, now: datetime | None = None
):
    """Use an invitation: set the password of the account it was made for, or create an account
    with ``username`` (``user``: someone signed in joins as themselves). Returns the user."""
    now = now or timezone.now()
    found = invitation_find(token=token, now=now)
    if found is None:
        raise TeamError("This invitation link is not valid: it expired, was used or was revoked.")
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        # Used or revoked between the look-up and the lock (a double submit, an admin's revoke).
        raise TeamError("This invitation link is not valid any more: it was used or revoked.")
    model = get_user_model()
    if invitation.user is not None:
        user = invitation.user
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise TeamError(" ".join(exc.messages)) from exc
        user.set_password(password)
        user.save(update_fields=["password"])
    elif user is None:
        username = username.strip()
        if not username:
            raise TeamError("Choose a username.")
        user = model(username=username, email=invitation.email)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise TeamError(" ".join(exc.messages)) from exc
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            raise TeamError(f"The username {username!r} is taken; choose another.") from exc
    if not Membership.objects.filter(project=invitation.project, user=user).exists():
        Membership.objects.create(project=invitation.project, user=user, role=invitation.role)
    invitation.accepted_at, invitation.accepted_by = now, user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return user


def invitation_revoke(*, invitation: Invitation, now: datetime | None = None) -> bool:
    """Make an open link stop working; False if it had already been used or revoked."""
    return bool(
        Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now or timezone.now())
    )
