"""HTTP plumbing shared by the remote clients: a pooled ``requests.Session``, explicit
(connect, read) timeouts bounded by an overall deadline, and the mapping from HTTP trouble to the
typed errors in ``base``."""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError, ReadTimeoutError

from routing.providers.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    AuthError,
    BadRequest,
    MalformedOutput,
    OutOfCredits,
    PermanentError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
)
from routing.providers.output import excerpt, redact

POOL_SIZE = 128
BODY_CHUNK_BYTES = 64 * 1024
_RESET_IN_RE = re.compile(r"resets? in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_AVAILABLE_IN_RE = re.compile(r"available in ~?\s*(\d+(?:\.\d+)?)\s*second", re.IGNORECASE)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN check
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def data_url(image: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(image).decode('ascii')}"


def decode_data_url(url: str) -> tuple[bytes, str] | None:
    """``(bytes, mime)`` for a ``data:<mime>;base64,`` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=False), header[5:-7] or "application/octet-stream"
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Deadline:
    """An overall time budget for one caption call (request + polling)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.at = self.start + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed_ms(self) -> int:
        return max(0, round((time.monotonic() - self.start) * 1000))


class HttpClient:
    """One pooled session per provider instance; safe to share between threads of one worker."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        api_key: str | None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        auth_scheme: str = "Bearer",
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or None
        self.connect_timeout_s = connect_timeout_s
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "captiondesk/0.1"})
        if extra_headers:
            self.session.headers.update(extra_headers)
        if self.api_key:
            self.session.headers["Authorization"] = f"{auth_scheme} {self.api_key}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def secrets(self) -> tuple[str | None, ...]:
        return (self.api_key,)

    def excerpt(self, raw: str | bytes) -> str:
        return excerpt(raw, self.secrets())

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
    ) -> HttpResponse:
        """Send one request; map transport failures and (optionally) non-2xx to typed errors."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProviderTimeout(
                f"{self.vendor}: no time left for the request (timeout {deadline.seconds:g}s)",
                latency_ms=deadline.elapsed_ms(),
            )
        timeout = (min(self.connect_timeout_s, remaining), remaining)
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                data=data,
                files=files,
                headers=dict(headers or {}),
                timeout=timeout,
                allow_redirects=False,
                stream=True,  # the body is read under the deadline below
            )
        except requests.Timeout as exc:
            raise ProviderTimeout(
                f"{self.vendor}: no answer within {deadline.seconds:g}s",
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        except requests.ConnectionError as exc:
            # A read that stalls past the deadline can surface as a ConnectionError too.
            if deadline.expired():
                raise ProviderTimeout(
                    f"{self.vendor}: no answer within {deadline.seconds:g}s",
                    latency_ms=deadline.elapsed_ms(),
                ) from exc
            raise ProviderConnectionError(
                f"{self.vendor}: cannot connect to {self.base_url}: "
                f"{redact(str(exc), self.secrets())[:300]}",
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        except requests.RequestException as exc:
            raise ProviderConnectionError(
                f"{self.vendor}: request failed: {redact(str(exc), self.secrets())[:300]}",
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        body = self._read_body(response, deadline)
        result = HttpResponse(
            status=response.status_code,
            headers=response.headers,  # case-insensitive
            body=body,
            content_type=response.headers.get("Content-Type", "").split(";")[0].strip().lower(),
        )
        if raise_for_status and not 200 <= result.status < 300:
            raise self.error_for(result, deadline=deadline)
        return result

    def _read_body(self, response: requests.Response, deadline: Deadline) -> bytes:
        """The whole body, or ``ProviderTimeout`` at the deadline.

        ``requests`` applies its read timeout to each socket read, so a body trickling in one
        byte at a time would never trip it; here every read gets only the time left, and the
        deadline is checked between reads.
        """
        raw = response.raw
        chunks: list[bytes] = []
        try:
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise TimeoutError
                sock = getattr(raw.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = raw.read1(BODY_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ReadTimeoutError) as exc:
            response.close()  # a half-read connection must not go back to the pool
            raise ProviderTimeout(
                f"{self.vendor}: the response body was still arriving after {deadline.seconds:g}s",
                http_status=response.status_code,
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        except (HTTPError, OSError) as exc:
            response.close()
            raise ProviderConnectionError(
                f"{self.vendor}: the connection broke while reading the response: "
                f"{redact(str(exc), self.secrets())[:300]}",
                http_status=response.status_code,
                latency_ms=deadline.elapsed_ms(),
            ) from exc
        raw.release_conn()  # read to the end: the connection can serve the next call
        return b"".join(chunks)

    def json(self, response: HttpResponse, *, request_id: str | None = None) -> Any:
        """Parse a JSON body or raise ``MalformedOutput(reason="unparseable")``."""
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise MalformedOutput(
                f"{self.vendor}: response body is not valid JSON (HTTP {response.status})",
                reason="unparseable",
                http_status=response.status,
                request_id=request_id,
                raw_excerpt=self.excerpt(response.body),
            ) from exc

    def error_for(
        self, response: HttpResponse, *, deadline: Deadline, request_id: str | None = None
    ) -> ProviderError:
        """The typed error for a non-2xx response."""
        status = response.status
        detail = self.error_detail(response)
        message = f"{self.vendor}: HTTP {status}" + (f": {detail}" if detail else "")
        common: dict[str, Any] = {
            "http_status": status,
            "request_id": request_id or request_id_from_headers(response),
            "raw_excerpt": self.excerpt(response.body),
            "latency_ms": deadline.elapsed_ms(),
        }
        if status == 429:
            retry_after = parse_retry_after(response.header("Retry-After"))
            if retry_after is None:
                retry_after = retry_after_from_text(detail)
            return RateLimited(message, retry_after_s=retry_after, **common)
        if status == 402:
            return OutOfCredits(message, **common)
        if status in (401, 403):
            return AuthError(message, **common)
        if status == 408:
            return ProviderTimeout(message, **common)
        if status >= 500:
            return ServerError(message, **common)
        if 400 <= status < 500:
            return BadRequest(message, **common)
        return PermanentError(message, **common)  # 1xx/3xx: a redirect we do not follow

    def error_detail(self, response: HttpResponse) -> str:
        """A short human message from the usual error envelopes, redacted."""
        text = ""
        try:
            payload = json.loads(response.body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            text = _message_from_envelope(payload)
        elif response.body and response.content_type.startswith("text/"):
            text = response.text()
        return redact(" ".join(text.split()), self.secrets())[:300]


def _message_from_envelope(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, str):
            return message
        if message is not None:
            return json.dumps(message, sort_keys=True)
    detail = payload.get("detail")
    if isinstance(detail, str):
        title = payload.get("title")
        return f"{title}: {detail}" if isinstance(title, str) and title else detail
    if isinstance(detail, list) and detail:  # FastAPI validation errors
        first = detail[0]
        if isinstance(first, Mapping):
            loc = ".".join(str(p) for p in first.get("loc", []) if p != "body")
            return f"{loc}: {first.get('msg', '')}".strip(": ")
    details = payload.get("details")
    if isinstance(details, str):
        return details
    return ""


def retry_after_from_text(text: str) -> float | None:
    """Replicate puts the wait in the 429 body ("resets in ~30s") when no header is sent."""
    match = _RESET_IN_RE.search(text) or _AVAILABLE_IN_RE.search(text)
    return float(match.group(1)) if match else None


def request_id_from_headers(response: HttpResponse) -> str | None:
    for name in ("x-request-id", "request-id", "x-edenai-request-id", "x-amzn-requestid"):
        value = response.header(name)
        if value:
            return value[:200]
    return None
