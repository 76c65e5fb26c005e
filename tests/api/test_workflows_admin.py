"""The admin pages from a script: routes (create, edit, enable, disable, delete), the team
(accounts and roles, with the last-admin rule), review leases and bulk corrections, a reviewer's
own verdicts and queue counts, closing an import batch. Each write goes through the same form and
service as its page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Membership
from routing.models import Route


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user(username="pam", password="pam-pass-123")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
    return user


# --- routes ---------------------------------------------------------------------------------


def test_a_site_admin_creates_edits_disables_and_deletes_a_route(
    admin, project_admin, client_for
):
    api = client_for(admin)
    created = api.post(
        reverse("api:route-list"),
        {
            "name": "llava-13b",
            "provider": "replicate",
            "model": "yorickvp/llava-13b",
            "usd_per_call": "0.0040",
            "timeout_s": 45,
            "max_attempts": 3,
            "expected_seconds": 4.0,
        },
        format="json",
    )
    assert created.status_code == 201, created.data
    pk = created.data["id"]
    assert created.data["enabled"] is True

    # PATCH keeps what it does not name, as the page's edit does.
    edited = api.patch(
        reverse("api:route-detail", args=[pk]), {"usd_per_call": "0.0050"}, format="json"
    )
    assert edited.status_code == 200, edited.data
    route = Route.objects.get(pk=pk)
    assert str(route.usd_per_call).startswith("0.005")
    assert route.timeout_s == 45 and route.model == "yorickvp/llava-13b" and route.enabled

    disabled = api.post(reverse("api:route-disable", args=[pk]))
    assert disabled.status_code == 200 and disabled.data["enabled"] is False
    assert Route.objects.get(pk=pk).enabled is False
    assert api.post(reverse("api:route-disable", args=[pk])).data["enabled"] is False
    enabled = api.post(reverse("api:route-enable", args=[pk]))
    assert enabled.status_code == 200 and Route.objects.get(pk=pk).enabled is True

    # A project's admin cannot change a shared route.
    other = client_for(project_admin)
    for response in (
        other.post(reverse("api:route-disable", args=[pk])),
        other.delete(reverse("api:route-detail", args=[pk])),
    ):
        assert response.status_code == 403
    assert Route.objects.get(pk=pk).enabled is True

    assert api.delete(reverse("api:route-detail", args=[pk])).status_code == 204
    assert not Route.objects.filter(pk=pk).exists()
    assert api.delete(reverse("api:route-detail", args=[pk])).status_code == 404
    assert api.post(reverse("api:route-enable", args=[pk])).status_code == 404


def test_a_used_route_is_not_deleted_and_the_409_says_why(admin, client_for):
    from tests.factories import CaptionFactory, RouteFactory

    route = RouteFactory(name="used-once")
    CaptionFactory(route=route)
    response = client_for(admin).delete(reverse("api:route-detail", args=[route.pk]))
    assert response.status_code == 409
    assert "disable" in response.data["detail"].lower()
    assert Route.objects.filter(pk=route.pk).exists()
