"""The finish around the pages: friendly error pages, a favicon."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string

pytestmark = pytest.mark.django_db


def test_a_missing_page_explains_itself_and_leads_back(client, annotator):
    client.force_login(annotator)
    response = client.get("/projects/no-such-project/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "This page is not here" in page
    assert 'href="/projects/"' in page and 'href="/review/"' in page


def test_an_admin_only_page_says_who_may_use_it(client, project, annotator):
    client.force_login(annotator)
    response = client.get(f"/projects/{project.slug}/members/")
    assert response.status_code == 403
    assert "for the project's admins" in response.content.decode()


def test_the_server_error_page_needs_no_request_or_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        html = render_to_string("500.html")
    assert "Something went wrong on our side" in html


def test_every_page_links_a_favicon_and_favicon_ico_exists(client, annotator):
    client.force_login(annotator)
    page = client.get("/projects/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.ico"
    static = Path(settings.BASE_DIR) / "static"
    assert (static / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert (static / "favicon.svg").read_text().startswith("<svg")
