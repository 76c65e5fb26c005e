"""Uploads are refused from their declared size, before the body is read.

The report: a 200 MB file was received in full (about 2 s and 220 MB of web memory) and only
then rejected.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

MB = 1024 * 1024


def _post_headers_only(live_server, path: str, length: int, cookie: str = "") -> tuple[int, str]:
    """Announce a body of `length` bytes, send none of it, and read the answer."""
    host = urlsplit(live_server.url)
    with socket.create_connection((host.hostname, host.port), timeout=10) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host.hostname}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {length}\r\n"
            f"{cookie}Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        # Read the answer by its own length: the test server waits for the announced body
        # before it closes the connection (gunicorn closes it at once).
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_part, body = answer.split(b"\r\n\r\n", 1)
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        while len(body) < length:
            body += sock.recv(65536)
    status = int(head_part.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


@pytest.mark.django_db(transaction=True)
def test_a_200_mb_upload_is_answered_413_before_its_body_is_sent(
    live_server, project, django_user_model
):
    from labeling.models import Membership

    owner = django_user_model.objects.create_user(username="ines", password="ines-pass-9876")
    Membership.objects.create(project=project, user=owner, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(owner)
    cookie = f"Cookie: sessionid={client.cookies['sessionid'].value}\r\n"
    batch = client.post(reverse("labeling:batch-open", args=[project.slug]), {"expected": "1"})
    files_url = reverse("labeling:batch-files", args=[batch.json()["id"]])

    started = time.monotonic()
    status, answer = _post_headers_only(live_server, files_url, 200 * MB, cookie)
    assert status == 413
    assert "209,715,200 bytes; the limit here is 53,477,376 bytes" in answer
    assert time.monotonic() - started < 2  # nothing waited for the 200 MB that never came

    # A zip archive may be bigger, up to its own limit.
    zip_url = reverse("labeling:import-zip", args=[project.slug])
    status, _ = _post_headers_only(live_server, zip_url, 3 * 1024 * MB, cookie)
    assert status == 413


def test_the_api_answers_413_in_json(client, settings):
    response = client.post(
        "/api/projects/any/images/",
        data=b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(settings.ZIP_UPLOAD_MAX_BYTES + 1),
    )
    assert response.status_code == 413
    assert "the limit here is 2,147,483,648 bytes" in response.json()["detail"]


def test_a_nonsense_content_length_is_a_400(client):
    response = client.post(
        reverse("login"), data=b"", content_type="text/plain", CONTENT_LENGTH="12abc"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_an_image_under_the_limit_still_uploads(client, admin, project, make_image_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin)
    batch = client.post(reverse("labeling:batch-open", args=[project.slug]), {"expected": "1"})
    response = client.post(
        reverse("labeling:batch-files", args=[batch.json()["id"]]),
        {"files": SimpleUploadedFile("cat.png", make_image_bytes("PNG"), "image/png")},
    )
    assert response.status_code == 200
    assert project.images.count() == 1


def test_a_chunked_body_is_refused_with_411(client):
    response = client.post(
        "/login/", data=b"x" * 10, content_type="text/plain", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411


@pytest.mark.slow
def test_gunicorn_refuses_a_chunked_upload_before_reading_its_body(
    transactional_db, settings, _media_root, tmp_path
):
    """gunicorn has no body-size limit of its own and passes chunked bodies through without a
    Content-Length, which the 413 check cannot see: the app answers 411 before reading any of
    it, while the client is still sending."""
    from benchmarks import load

    db = settings.DATABASES["default"]
    env = load.stack_env(
        database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        redis_url=settings.REDIS_URL,
        key_prefix="test:chunked:",
        media_root=str(_media_root),
    )
    port = load.free_port()
    web = load.web_start(env, port, workers=1, threads=2, log=tmp_path / "web.log")
    try:
        load.wait_healthy(f"http://127.0.0.1:{port}", web)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /import/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=x\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            chunk = b"x" * 65536
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # 64 KB of a "huge" upload
            answer = b""
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        assert answer.startswith(b"HTTP/1.1 411"), answer[:200]
    finally:
        load.stop(web)
