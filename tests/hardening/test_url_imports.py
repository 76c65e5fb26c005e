"""URL imports: one wall-clock deadline over the whole exchange, and no site-local addresses.

The report: ``fetch(..., timeout_s=5)`` against a server sending one byte a second ran 49 s,
both when the trickle was in the headers and in the body, because a read timeout restarts with
every byte and the deadline was checked only between 64 KB chunks.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from labeling.safe_fetch import FetchError, address_refusal, fetch

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 60\r\n\r\n"


class TricklingServer:
    """A raw TCP server on 127.0.0.1 that answers every request one byte a second: the headers
    (path /headers) or, after prompt headers, the body (/body, /body-unsized)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = conn.recv(4096)
            path = request.split(b" ", 2)[1]
            if path == b"/headers":
                prompt, trickle = b"", HEADERS + b"\x89" * 60
            elif path == b"/body":
                prompt, trickle = HEADERS, b"\x89" * 60
            else:
                prompt, trickle = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"\x89" * 60
            try:
                conn.sendall(prompt)
                for byte in trickle:
                    if self.stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            except OSError:
                return  # the client gave up: what the deadline is for

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def trickler(settings) -> Iterator[TricklingServer]:
    settings.URL_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]
    server = TricklingServer()
    yield server
    server.close()


@pytest.mark.parametrize("path", ["/headers", "/body", "/body-unsized"])
def test_a_server_trickling_one_byte_a_second_is_cut_off_at_the_deadline(trickler, path):
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"http://127.0.0.1:{trickler.port}{path}", timeout_s=2)
    elapsed = time.monotonic() - started
    # The whole exchange, not one read: 2 s and a little, never the 60 s the trickle takes.
    assert 1.9 < elapsed < 3.0, elapsed


@pytest.mark.parametrize("address", ["fec0::1", "fec0:1234::5", "feff:ffff::1"])
def test_site_local_ipv6_addresses_are_refused(address, settings):
    settings.URL_FETCH_ALLOW_NETWORKS = []
    assert address_refusal(ipaddress.ip_address(address)) == "site-local address"
    with pytest.raises(FetchError, match="refused: images.example resolves to a site-local"):
        fetch("http://images.example/cat.jpg", resolver=lambda host, port: [address])


def test_a_public_ipv6_address_is_not_mistaken_for_site_local():
    assert address_refusal(ipaddress.ip_address("2a00:1450:4001:80b::200e")) is None
