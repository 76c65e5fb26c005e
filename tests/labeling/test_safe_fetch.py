"""URL imports against a real local HTTP server: SSRF refused, limits enforced, good URLs import."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from labeling.models import ImportBatch
from labeling.safe_fetch import FetchError, fetch
from labeling.services.batches import batch_create_from_urls, batch_process_payload


class ImageServer:
    def __init__(self, image: bytes):
        self.image = image
        self.hosts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hosts.append(self.headers.get("Host", ""))
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/img.jpg":
                    self._send(200, outer.image, "image/jpeg")
                elif parts.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query["to"][0])
                    self.end_headers()
                elif parts.path == "/loop":
                    self.send_response(301)
                    self.send_header("Location", "/loop")
                    self.end_headers()
                elif parts.path == "/big":
                    self._send(200, b"\xff" * 200_000, "image/jpeg")
                elif parts.path == "/chunked-big":
                    self.send_response(200)
                    self.end_headers()  # no Content-Length: the limit must hold while reading
                    for _ in range(50):
                        self.wfile.write(b"\xff" * 10_000)
                elif parts.path == "/slow":
                    time.sleep(3)
                    self._send(200, outer.image, "image/jpeg")
                elif parts.path == "/text.png":
                    self._send(200, b"<html>not an image</html>", "image/png")
                else:
                    self._send(404, b"missing", "text/plain")

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(make_image_bytes):
    srv = ImageServer(make_image_bytes("JPEG", seed=41))
    yield srv
    srv.close()


LOCAL_ONLY = override_settings(URL_FETCH_ALLOW_NETWORKS=["127.0.0.1/32"])


def test_loopback_is_refused_by_default(server):
    with pytest.raises(FetchError, match="loopback"):
        fetch(f"{server.base}/img.jpg")
    assert server.hosts == []  # not even one connection


@pytest.mark.parametrize(
    "url,reason",
    [
        ("http://localhost/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4 loopback"),
        ("http://[::ffff:169.254.169.254]/", "IPv4 link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "IPv4 link-local"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.7/", "private"),
        ("http://172.16.3.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://100.100.100.200/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "non-public"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.org/", "only http and https"),
        ("http://user:secret@example.org/", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
def test_crafted_addresses_are_refused(url, reason):
    with pytest.raises(FetchError, match=reason):
        fetch(url)


def test_a_name_resolving_to_any_private_address_is_refused():
    def resolver(host, port):
        return ["93.184.215.14", "10.1.2.3"]

    with pytest.raises(FetchError, match="private"):
        fetch("http://mixed.example.test/x.jpg", resolver=resolver)


@LOCAL_ONLY
def test_connects_to_the_checked_address_with_the_original_host_header(server):
    """DNS rebinding cannot swap the target: the address we checked is the one we connect to."""
    calls = []

    def resolver(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    data = fetch(f"http://images.example.test:{server.port}/img.jpg", resolver=resolver)
    assert data == server.image
    assert calls == ["images.example.test"]  # resolved once, not again by the HTTP library
    assert server.hosts == [f"images.example.test:{server.port}"]


@LOCAL_ONLY
@pytest.mark.parametrize(
    "target,reason",
    [
        ("http://127.0.0.2/img.jpg", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "IPv4 private"),
        ("http://192.168.0.10/", "private"),
    ],
)
def test_redirects_to_internal_addresses_are_refused(server, target, reason):
    with pytest.raises(FetchError, match=reason):
        fetch(f"{server.base}/redirect?to={target}")


@LOCAL_ONLY
def test_redirect_limits_size_limits_and_timeouts(server):
    assert fetch(f"{server.base}/redirect?to=/img.jpg") == server.image
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(f"{server.base}/loop")
    with pytest.raises(FetchError, match="too large"):
        fetch(f"{server.base}/big", max_bytes=100_000)
    with pytest.raises(FetchError, match="too large"):
        fetch(f"{server.base}/chunked-big", max_bytes=100_000)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"{server.base}/slow", timeout_s=0.5)
    assert time.monotonic() - started < 2.5
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(f"{server.base}/missing.jpg")


@pytest.mark.django_db
@LOCAL_ONLY
def test_url_list_batch_imports_good_urls_and_explains_the_rest(server, project, admin):
    text = "\n".join(
        [
            "# holiday pictures",
            f"{server.base}/img.jpg",
            f"{server.base}/missing.jpg",
            f"{server.base}/text.png",
            "http://169.254.169.254/latest/meta-data/",
            f"{server.base}/redirect?to=http://10.0.0.1/x.jpg",
            "",
        ]
    )
    batch = batch_create_from_urls(project=project, user=admin, text=text)
    batch_process_payload(batch=batch)
    batch.refresh_from_db()
    reasons = dict(batch.items.values_list("source", "reason"))
    statuses = dict(batch.items.values_list("source", "status"))
    assert batch.status == ImportBatch.Status.DONE
    assert (batch.expected, batch.imported, batch.rejected) == (5, 1, 4)
    assert statuses[f"{server.base}/img.jpg"] == "imported"
    assert "HTTP 404" in reasons[f"{server.base}/missing.jpg"]
    assert "SVG/HTML" in reasons[f"{server.base}/text.png"]
    assert "link-local" in reasons["http://169.254.169.254/latest/meta-data/"]
    assert "private" in reasons[f"{server.base}/redirect?to=http://10.0.0.1/x.jpg"]
    assert not batch.payload
