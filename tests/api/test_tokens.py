"""API tokens: made on the tokens page, shown once, stored hashed, revoked at once; no Basic."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.models import ApiToken
from integrations.services.tokens import api_token_create


def _create_on_page(client, name: str, **extra) -> str:
    response = client.post(reverse("integrations:token-list"), {"name": name, **extra})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    match = re.search(r'value="(cdk_[0-9a-f]+_[A-Za-z0-9_\-]+)"', response.content.decode())
    assert match, "the new token is shown after creating it"
    return match.group(1)


def test_a_token_made_on_the_page_works_once_copied_and_is_never_shown_again(client, annotator):
    client.force_login(annotator)
    secret = _create_on_page(client, "nightly export")

    token = ApiToken.objects.get(user=annotator)
    assert token.name == "nightly export"
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(
        str(v) for v in ApiToken.objects.filter(pk=token.pk).values().first().values()
    )
    assert secret not in stored and secret.split("_", 2)[2] not in stored

    page = client.get(reverse("integrations:token-list")).content.decode()
    assert "nightly export" in page and f"cdk_{token.prefix}_" in page
    assert secret not in page

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get(reverse("api:project-list"))
    assert response.status_code == 200
    assert [p["slug"] for p in response.data["results"]] == ["street-photos"]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_token_stops_working_at_once(client, annotator):
    created = api_token_create(user=annotator, name="laptop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {created.secret}")
    assert api.get(reverse("api:project-list")).status_code == 200

    client.force_login(annotator)
    response = client.post(
        reverse("integrations:token-revoke", args=[created.token.pk]), follow=True
    )
    assert "revoked" in response.content.decode()

    response = api.get(reverse("api:project-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_with_one_character_changed_is_refused(annotator):
    secret = api_token_create(user=annotator, name="ci").secret
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert api.get(reverse("api:project-list")).status_code == 401


def test_nobody_revokes_or_sees_someone_elses_token_but_a_site_admin(
    client, annotator, outsider, admin
):
    created = api_token_create(user=annotator, name="ann's script")
    client.force_login(outsider)
    assert (
        "ann&#x27;s script" not in client.get(reverse("integrations:token-list")).content.decode()
    )
    response = client.post(reverse("integrations:token-revoke", args=[created.token.pk]))
    assert response.status_code == 404
    created.token.refresh_from_db()
    assert created.token.is_active

    client.force_login(admin)
    assert "ann&#x27;s script" in client.get(reverse("integrations:token-list")).content.decode()
    client.post(reverse("integrations:token-revoke", args=[created.token.pk]))
    created.token.refresh_from_db()
    assert not created.token.is_active and created.token.revoked_by == admin


def test_a_site_admin_makes_a_token_for_a_service_account(client, admin, annotator):
    client.force_login(admin)
    secret = _create_on_page(client, "pipeline", username=annotator.username)
    token = ApiToken.objects.get(name="pipeline")
    assert token.user == annotator and token.created_by == admin
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    # The token acts as its user: an annotator, not an admin.
    assert api.get(reverse("api:project-list")).data["results"][0]["role"] == "annotator"


def test_an_annotator_cannot_make_tokens_for_others(client, annotator, outsider):
    client.force_login(annotator)
    client.post(
        reverse("integrations:token-list"), {"name": "sneaky", "username": outsider.username}
    )
    assert ApiToken.objects.get(name="sneaky").user == annotator


def test_http_basic_is_not_accepted(annotator):
    api = APIClient()
    basic = base64.b64encode(b"ann:annotator-pass-123").decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {basic}")
    assert api.get(reverse("api:project-list")).status_code == 401


def test_the_browser_session_works_and_its_writes_need_the_csrf_token(annotator, admin):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(annotator)
    assert browser.get(reverse("api:project-list")).status_code == 200
    browser.force_login(admin)
    response = browser.post(reverse("api:project-list"), {"name": "New"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in str(response.data["detail"])


def test_requests_are_throttled_per_token(annotator, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/minute", "anon": "3/minute"},
    }
    first, second = (APIClient(), APIClient())
    first.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=annotator, name='a').secret}"
    )
    second.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=annotator, name='b').secret}"
    )
    url = reverse("api:project-list")
    assert [first.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert second.get(url).status_code == 200
    assert "Retry-After" in first.get(url)


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer cdk_x", "Token nonsense"])
def test_malformed_authorization_headers_are_refused(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    assert api.get(reverse("api:project-list")).status_code == 401
