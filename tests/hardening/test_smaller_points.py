"""The report's smaller points: a Content-Security-Policy on HTML pages with no inline script,
a removed member's leases released at once, and production settings secure by default."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from captiondesk.middleware import CONTENT_SECURITY_POLICY
from review.models import Lease
from review.services.queue import lease_claim_next
from tests.hardening.test_bad_input import _get_kwargs, _html_patterns
from tests.review.test_browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


@pytest.mark.django_db
def test_every_html_page_has_the_policy_and_no_inline_script(world, admin, annotator):
    pages = 0
    for user in (admin, annotator):
        client = Client()
        client.force_login(user)
        for name, pattern in _html_patterns():
            kwargs = _get_kwargs(pattern, world)
            if kwargs is None:
                continue
            url = reverse(name, kwargs=kwargs)
            response = client.get(url)
            if not response.get("Content-Type", "").startswith("text/html"):
                continue
            pages += 1
            html = response.content.decode()
            assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
            assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html).group())
            assert not INLINE_HANDLER.search(html), (url, INLINE_HANDLER.search(html).group())
    assert pages > 60
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY.split("script-src")[1].split(";")[0]


@contextmanager
def strict_page():
    """A Chromium page that obeys the Content-Security-Policy (the other browser tests bypass
    it for Playwright's own eval)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_run_under_the_policy_without_a_violation(live_server, admin):
    violations: list[str] = []
    with strict_page() as page:
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{live_server.url}/login/?next=/account/api-tokens/")
        page.fill("#id_username", "ada-admin")
        page.fill("#id_password", "admin-pass-123")
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('API tokens')")
        page.fill("input[name=name]", "nightly export")
        page.click("form.card button[type=submit]")
        page.wait_for_selector("#new-token")
        # The handler that moved out of the markup still selects the secret for copying.
        page.focus("#new-token input")
        selected = page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.value.slice(e.selectionStart, e.selectionEnd); }"
        )
        assert selected == page.input_value("#new-token input")
        for path in ("/projects/", "/review/", "/routing/routes/"):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("load")
        # An inline script injected into a page is refused by the browser.
        page.goto(f"{live_server.url}/projects/")
        ran = page.evaluate(
            """() => new Promise(done => {
                 document.addEventListener('securitypolicyviolation', () => done('refused'));
                 const s = document.createElement('script');
                 s.textContent = 'window.__injected = true';
                 document.body.appendChild(s);
                 setTimeout(() => done(window.__injected ? 'ran' : 'refused'), 500);
               })"""
        )
    assert ran == "refused"
    assert [v for v in violations if "__injected" not in v and "inline" not in v] == []


@pytest.mark.django_db
def test_removing_a_member_releases_their_lease_at_once(world, admin, annotator, django_user_model):
    from labeling.models import Membership

    lease = world.lease
    assert lease.reviewer == annotator and lease.state == Lease.State.ACTIVE
    client = Client()
    client.force_login(admin)
    response = client.post(
        reverse("labeling:project-members", args=[world.project.slug]),
        {"action": "remove", "user": annotator.pk, "confirm": "1"},
    )
    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.state == Lease.State.RELEASED
    # The item is someone else's to review now, not in 300 s.
    colleague = django_user_model.objects.create_user(username="cleo", password="cleo-pass-4321")
    Membership.objects.create(project=world.project, user=colleague, role=Membership.Role.ANNOTATOR)
    taken = lease_claim_next(project=world.project, reviewer=colleague)
    assert taken is not None and taken.item_id == lease.item_id


def _settings_in_process(**env: str) -> dict[str, str]:
    """Settings as a fresh process reads them from the environment (no .env file)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'captiondesk.settings';"
        "django.setup(); from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_clean_env(env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return dict(zip(["session", "csrf", "redirect", "hsts"], out, strict=True))


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "DATABASE_URL")}
    return {**keep, "CAPTIONDESK_ENV_FILE": "/nonexistent", **extra}


def test_a_deployment_under_a_real_host_name_is_secure_by_default(tmp_path):
    key = secrets.token_urlsafe(50)
    public = _settings_in_process(SECRET_KEY=key, ALLOWED_HOSTS="captions.example.org")
    assert public == {"session": "True", "csrf": "True", "redirect": "True", "hsts": "31536000"}

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--tag",
            "security",
            "--fail-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=_clean_env({"SECRET_KEY": key, "ALLOWED_HOSTS": "captions.example.org", "DEBUG": "0"}),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_make_run_on_localhost_keeps_plain_http_working(tmp_path):
    local = _settings_in_process(
        SECRET_KEY=secrets.token_urlsafe(50), CAPTIONDESK_VAR_DIR=str(tmp_path)
    )
    assert local == {"session": "False", "csrf": "False", "redirect": "False", "hsts": "0"}
    # An operator can still say otherwise.
    forced = _settings_in_process(SECRET_KEY=secrets.token_urlsafe(50), SECURE_COOKIES="1")
    assert forced["session"] == "True"
