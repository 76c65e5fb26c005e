"""The API docs render in a real Chromium from the app's own files: no request leaves the site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_the_api_docs_render_without_leaving_the_site(live_server):
    """Swagger UI only: drf-spectacular's Redoc page asks Google Fonts and cdn.redoc.ly."""
    path, operation = "/api/docs/", ".opblock"
    from playwright.sync_api import sync_playwright

    own_host = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda r: (
                    elsewhere.append(r.url)
                    if urlsplit(r.url).netloc not in (own_host, "")
                    and not r.url.startswith("data:")
                    else None
                ),
            )
            page.goto(live_server.url + path)
            page.wait_for_selector(operation, timeout=30_000)
            shown = page.locator(operation).count()
        finally:
            browser.close()
    assert shown >= 20, f"{path} shows {shown} operations"
    assert elsewhere == [], f"{path} asked other sites for {elsewhere}"
