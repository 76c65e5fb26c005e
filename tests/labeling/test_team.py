"""Bringing people onto a project without /admin/: add, create, invite, change roles, remove."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from labeling.models import Invitation, Membership
from labeling.services import team
from labeling.services.projects import ProjectError, member_remove, member_set_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user(
        username="pam", password="project-admin-123", email="pam@example.com"
    )
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


def _members_url(project) -> str:
    return f"/projects/{project.slug}/members/"


def _link(response_or_text) -> str:
    text = getattr(response_or_text, "content", response_or_text)
    if isinstance(text, bytes):
        text = text.decode()
    match = re.search(r"https?://[^\s\"<]+/invitations/[^\s\"<]+/", text)
    assert match, "no invitation link found"
    return match.group(0)


def test_the_last_admin_can_be_neither_removed_nor_demoted(project, project_admin, annotator):
    with pytest.raises(ProjectError, match="last admin"):
        member_remove(project=project, user_id=project_admin.pk)
    with pytest.raises(ProjectError, match="last admin"):
        member_set_role(project=project, user=project_admin, role="annotator")
    assert Membership.objects.get(project=project, user=project_admin).role == "admin"

    # With a second admin, either may go.
    member_set_role(project=project, user=annotator, role="admin")
    assert member_remove(project=project, user_id=project_admin.pk) is True
    assert list(project.memberships.values_list("user__username", "role")) == [("ann", "admin")]


def test_the_team_page_refuses_to_remove_the_last_admin_and_asks_before_removing(
    client, project, project_admin, annotator
):
    client.force_login(project_admin)
    page = client.get(_members_url(project)).content.decode()
    assert "Last admin" in page
    # The role picker for new people starts at annotator.
    assert re.search(r'<option value="annotator" selected>', page)

    # Removing someone asks first, and nothing happens until confirmed.
    ask = client.post(_members_url(project), {"action": "remove", "user": annotator.pk})
    assert ask.status_code == 200
    assert "Remove ann from Street photos?" in ask.content.decode()
    assert Membership.objects.filter(project=project, user=annotator).exists()
    done = client.post(
        _members_url(project), {"action": "remove", "user": annotator.pk, "confirm": "1"}
    )
    assert done.status_code == 302
    assert not Membership.objects.filter(project=project, user=annotator).exists()

    refused = client.post(
        _members_url(project),
        {"action": "remove", "user": project_admin.pk, "confirm": "1"},
        follow=True,
    )
    assert "pam is the last admin of Street photos" in refused.content.decode()
    assert Membership.objects.filter(project=project, user=project_admin, role="admin").exists()


def test_an_admin_creates_an_account_without_a_password_and_its_owner_sets_one(
    client, project, project_admin, django_user_model
):
    client.force_login(project_admin)
    response = client.post(
        _members_url(project),
        {
            "action": "create",
            "create-username": "bea",
            "create-email": "bea@example.com",
            "create-role": "annotator",
            "create-password": "",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Account bea created" in page
    bea = django_user_model.objects.get(username="bea")
    assert not bea.has_usable_password()
    assert Membership.objects.get(project=project, user=bea).role == "annotator"
    # The link is shown once and emailed through Django's email backend.
    link = _link(response)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bea@example.com"]
    assert link in mail.outbox[0].body
    assert link not in client.get(_members_url(project)).content.decode()

    client.logout()
    form = client.get(link).content.decode()
    assert "Your username is <strong>bea</strong>" in form
    client.post(link, {"password1": "a-long-secret-9", "password2": "a-long-secret-9"})
    bea.refresh_from_db()
    assert bea.check_password("a-long-secret-9")
    # Used once: the link is dead now.
    assert client.get(link).status_code == 404


def test_an_invited_person_chooses_a_username_and_lands_on_the_project(
    client, project, project_admin, django_user_model
):
    client.force_login(project_admin)
    response = client.post(
        _members_url(project),
        {"action": "invite", "invite-email": "cy@example.com", "invite-role": "annotator"},
        follow=True,
    )
    link = _link(response)
    assert "cy@example.com" in mail.outbox[0].to
    client.logout()
    mismatch = client.post(
        link, {"username": "cy", "password1": "a-long-secret-9", "password2": "other-secret-9"}
    )
    assert "The two passwords differ." in mismatch.content.decode()
    taken = client.post(
        link, {"username": "pam", "password1": "a-long-secret-9", "password2": "a-long-secret-9"}
    )
    assert "is taken" in taken.content.decode()
    joined = client.post(
        link, {"username": "cy", "password1": "a-long-secret-9", "password2": "a-long-secret-9"}
    )
    assert joined["Location"] == f"/projects/{project.slug}/"
    cy = django_user_model.objects.get(username="cy")
    assert cy.email == "cy@example.com"
    assert Membership.objects.get(project=project, user=cy).role == "annotator"
    # Signed in straight away.
    assert client.get(f"/projects/{project.slug}/").status_code == 200


def test_expired_and_revoked_links_do_not_work(client, project, project_admin):
    issued = team.invitation_create(
        project=project, email="dee@example.com", role="annotator", created_by=project_admin
    )
    url = f"/invitations/{issued.token}/"
    assert client.get(url).status_code == 200

    client.force_login(project_admin)
    ask = client.post(
        _members_url(project), {"action": "revoke", "invitation": issued.invitation.pk}
    )
    assert "Revoke the invitation for dee@example.com?" in ask.content.decode()
    client.post(
        _members_url(project),
        {"action": "revoke", "invitation": issued.invitation.pk, "confirm": "1"},
    )
    client.logout()
    assert client.get(url).status_code == 404

    old = team.invitation_create(
        project=project,
        email="eve@example.com",
        role="annotator",
        created_by=project_admin,
        now=timezone.now() - timedelta(days=8),
    )
    assert client.get(f"/invitations/{old.token}/").status_code == 404
    # Only a hash of the secret is stored.
    assert not Invitation.objects.filter(token_hash=old.token).exists()


def test_a_signed_in_user_joins_with_their_own_account(client, project, project_admin, outsider):
    issued = team.invitation_create(
        project=project, email="otto@example.com", role="annotator", created_by=project_admin
    )
    client.force_login(outsider)
    assert (
        "You will join as <strong>otto</strong>"
        in client.get(f"/invitations/{issued.token}/").content.decode()
    )
    client.post(f"/invitations/{issued.token}/")
    assert Membership.objects.get(project=project, user=outsider).role == "annotator"


def test_only_project_admins_manage_the_team(client, project, annotator, outsider, project_admin):
    for user, status in ((annotator, 403), (outsider, 404)):
        client.force_login(user)
        assert client.get(_members_url(project)).status_code == status
        assert (
            client.post(
                _members_url(project), {"action": "invite", "invite-email": "x@example.com"}
            ).status_code
            == status
        )
    assert not Invitation.objects.exists()


def test_guidelines_are_markdown_rendered_safely(client, project, project_admin, annotator):
    client.force_login(project_admin)
    client.post(
        f"/projects/{project.slug}/guidelines/",
        {
            "guidelines": "## Charts\n\n* Name the **axes**\n\n<script>alert(1)</script>"
            "\n\n[bad](javascript:alert(1))"
        },
    )
    client.force_login(annotator)
    page = client.get(f"/projects/{project.slug}/guidelines/").content.decode()
    assert "<h2>Charts</h2>" in page and "<strong>axes</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert 'href="javascript' not in page
    # Annotators read, they do not edit.
    assert "Save guidelines" not in page
    assert (
        client.post(f"/projects/{project.slug}/guidelines/", {"guidelines": "x"}).status_code == 403
    )


def test_the_api_refuses_to_remove_the_last_admin_too(client, project, project_admin, annotator):
    client.force_login(project_admin)
    refused = client.delete(f"/api/projects/{project.slug}/members/{project_admin.pk}/")
    assert refused.status_code == 400
    assert "last admin" in refused.json()["detail"]
    assert client.delete(f"/api/projects/{project.slug}/members/{annotator.pk}/").status_code == 204
    assert list(project.memberships.values_list("user__username", flat=True)) == ["pam"]


def test_a_link_works_once_even_when_sent_twice(project, project_admin, django_user_model):
    issued = team.invitation_create(
        project=project, email="fay@example.com", role="admin", created_by=project_admin
    )
    team.invitation_accept(token=issued.token, username="fay", password="a-long-secret-9")
    with pytest.raises(ProjectError, match="not valid"):
        team.invitation_accept(token=issued.token, username="fay2", password="a-long-secret-9")
    assert not django_user_model.objects.filter(username="fay2").exists()
    assert Membership.objects.get(project=project, user__username="fay").role == "admin"


def test_an_email_that_cannot_be_sent_still_leaves_the_link_to_pass_on(
    client, project, project_admin, settings
):
    # A real SMTP backend pointed at a port nobody listens on: the connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    client.force_login(project_admin)
    response = client.post(
        _members_url(project),
        {"action": "invite", "invite-email": "gil@example.com", "invite-role": "annotator"},
        follow=True,
    )
    page = response.content.decode()
    assert "the email could not be sent" in page and "ConnectionRefusedError" in page
    assert client.get(_link(response)).status_code == 200
