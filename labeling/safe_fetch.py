"""Fetch an image URL without letting the URL reach inside our network (SSRF).

Every hop (redirects included) is resolved once, every resolved address is checked, and the
connection goes to the checked address itself, with the original host name only in the Host
header and TLS SNI, so a DNS answer that changes between check and connect (rebinding) cannot
swap the target.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings

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
    deadline = time.monotonic() + timeout_s
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
            return _read_limited(response, max_bytes=max_bytes, deadline=deadline)
        finally:
            response.release_conn()
            pool.close()
    raise FetchError(f"too many redirects (more than {max_redirects})")


def _open(
    url: str, *, deadline: float, resolver: Resolver | None
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
    remaining = deadline - time.monotonic()
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
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
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


def _read_limited(response: urllib3.BaseHTTPResponse, *, max_bytes: int, deadline: float) -> bytes:
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
            if time.monotonic() > deadline:
                raise FetchError("timed out while downloading")
            chunks.append(chunk)
    except urllib3.exceptions.TimeoutError as exc:
        raise FetchError("timed out while downloading") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"download failed: {exc.__class__.__name__}") from exc
    return b"".join(chunks)
