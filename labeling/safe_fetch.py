"""Fetch an image URL without letting the URL reach inside our network (SSRF).

Every hop (redirects included) is resolved once, every resolved address is checked, and the
connection goes to the checked address itself, with the original host name only in the Host
header and TLS SNI, so a DNS answer that changes between check and connect (rebinding) cannot
swap the target.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

USER_AGENT = "captiondesk-image-import/1.0"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """The URL was not fetched; the message says why, safe to show to the user."""


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def address_refusal(
    address: IPAddress, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
) -> str | None:
    """Why `address` must not be contacted, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        if address.ipv4_mapped:
            embedded = address.ipv4_mapped
        elif address.sixtofour:
            embedded = address.sixtofour
        elif address in _NAT64 or address in _NAT64_LOCAL:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.teredo:
            return "Teredo tunnel address"
        if address.is_site_local:
            # fec0::/10, deprecated (RFC 3879) but still routed inside some networks; Python
            # counts it as global.
            return "site-local address"
        if embedded is not None:
            inner = address_refusal(embedded, allowed)
            return f"IPv6 address embedding an IPv4 {inner}" if inner else None
    if any(address in net for net in allowed):
        return None
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address (where cloud metadata services live)"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "carrier-grade NAT address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved:
        return "non-public address (reserved range)"
    if address.is_private:
        return "private network address"
    if not address.is_global:
        return "non-public address"
    return None


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.URL_FETCH_ALLOW_NETWORKS]


def resolve_checked(host: str, port: int, resolver: Resolver | None = None) -> str:
    """The one address to connect to, after every address the name resolves to passed the check."""
    allowed = _allowed_networks()
    try:
        addresses = (resolver or _system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    if not addresses:
        raise FetchError(f"cannot resolve host {host!r}")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        refusal = address_refusal(address, allowed)
        if refusal:
            raise FetchError(f"refused: {host} resolves to a {refusal} ({address})")
    return addresses[0]


class _Deadline:
    """One wall-clock deadline over a whole exchange (every hop, headers and body). A read
    timeout restarts with every byte, so a server trickling one byte a second never trips it;
    at the deadline this shuts the exchange's sockets down, which ends any blocked read."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(base: type[HTTPConnection], deadline: _Deadline) -> type[HTTPConnection]:
    """A connection class of `base` whose socket the deadline can shut down."""

    class Watched(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


def fetch(
    url: str,
    *,
    timeout_s: float | None = None,
    max_bytes: int | None = None,
    max_redirects: int | None = None,
    resolver: Resolver | None = None,
) -> bytes:
    timeout_s = timeout_s if timeout_s is not None else settings.URL_FETCH_TIMEOUT_S
    max_bytes = max_bytes if max_bytes is not None else settings.URL_FETCH_MAX_BYTES
    max_redirects = max_redirects if max_redirects is not None else settings.URL_FETCH_MAX_REDIRECTS
    deadline = _Deadline(timeout_s)
    try:
        return _fetch(
            url, deadline, max_bytes=max_bytes, max_redirects=max_redirects, resolver=resolver
        )
    except FetchError:
        if deadline.expired:
            raise FetchError(f"timed out (the whole download took over {timeout_s:g} s)") from None
        raise
    finally:
        deadline.cancel()


def _fetch(
    url: str, deadline: _Deadline, *, max_bytes: int, max_redirects: int, resolver: Resolver | None
) -> bytes:
    current = url
    for _hop in range(max_redirects + 1):
        response, pool = _open(current, deadline=deadline, resolver=resolver)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"HTTP {response.status} without a Location header")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchError(f"HTTP {response.status} from server")
            data = _read_limited(response, max_bytes=max_bytes)
            if deadline.expired:
                # A body without a length ends "cleanly" when its socket is shut down.
                raise FetchError("timed out while downloading")
            return data
        finally:
            response.release_conn()
            pool.close()
    raise FetchError(f"too many redirects (more than {max_redirects})")


def _open(
    url: str, *, deadline: _Deadline, resolver: Resolver | None
) -> tuple[urllib3.BaseHTTPResponse, urllib3.HTTPConnectionPool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs are allowed (got {parts.scheme or 'none'!r})")
    if parts.username or parts.password:
        raise FetchError("URLs with credentials are not allowed")
    host = parts.hostname
    if not host:
        raise FetchError("URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError("URL has an invalid port") from exc
    address = resolve_checked(host, port, resolver)
    remaining = deadline.remaining()
    if remaining <= 0:
        raise FetchError("timed out")
    timeout = urllib3.Timeout(connect=min(remaining, 10.0), read=remaining)
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        pool.ConnectionCls = _watched(HTTPSConnection, deadline)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
        pool.ConnectionCls = _watched(HTTPConnection, deadline)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        response = pool.urlopen(
            "GET",
            path,
            headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "image/*"},
            redirect=False,
            preload_content=False,
            decode_content=True,
        )
    except urllib3.exceptions.TimeoutError as exc:
        pool.close()
        raise FetchError("timed out") from exc
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        raise FetchError(f"connection failed: {exc.__class__.__name__}") from exc
    return response, pool


def _read_limited(response: urllib3.BaseHTTPResponse, *, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"file too large: {int(declared):,} bytes (limit {max_bytes:,})")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.stream(64 * 1024):
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"file too large: more than {max_bytes:,} bytes")
            chunks.append(chunk)
    except urllib3.exceptions.TimeoutError as exc:
        raise FetchError("timed out while downloading") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"download failed: {exc.__class__.__name__}") from exc
    return b"".join(chunks)
