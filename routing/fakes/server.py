"""The scriptable fake-vendor HTTP server that the vendor fakes build on.

A fake answers each "main" request (a caption call) with the next ``Reply`` from its script, or
its default reply when the script is empty, and records every request it receives (method, path,
headers, parsed JSON or multipart body). Real HTTP on 127.0.0.1, one thread per connection, so a
benchmark can keep many calls in flight.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from PIL import Image, UnidentifiedImageError

DEFAULT_TEXT = "a photo of a cat sitting on a wooden table"
REFUSAL_TEXT = "I'm sorry, but I can't help with describing this image."

KINDS = (
    "success",  # a normal answer with ``text``
    "rate_limited",  # HTTP 429 with Retry-After
    "error",  # HTTP ``status`` (500, 402, 401, 400, 404, 422, ...)
    "hang",  # accept the request, never answer (until ``hang_s`` or the server stops)
    "malformed_json",  # HTTP 200 with a body that is not JSON
    "provider_fail",  # vendor failure inside HTTP 200 (Eden AI v2 status, Replicate "failed", ...)
    "stuck",  # Replicate: the prediction never reaches a terminal status
    "empty",  # success with an empty output
    "refusal",  # success whose text is a refusal
    "aborted",  # Replicate: the prediction ends "aborted" (its deadline passed before it started)
    "create_hang",  # Replicate: the prediction is created and runs, but the create never answers
    "stream_error",  # Eden AI v3 / Ollama: a stream that ends in an error after partial text
)
#: What ``poll_error`` may say: an HTTP status (``"500"``, ``"429"``...) or ``"reset"``.
POLL_ERRORS = ("reset",)


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted behaviour. Build with the class methods; strings like ``"429"`` also work."""

    kind: str = "success"
    text: str | None = None
    latency_ms: int | None = None  # None: the server's default latency
    status: int | None = None
    retry_after: str | None = None
    message: str | None = None
    cost: str | None = "0.00042"  # vendor-reported cost (Eden AI); None omits the field
    polls: int = 0  # Replicate: GETs that still say "processing" before the terminal state
    predict_time: float = 1.25  # Replicate metrics.predict_time (seconds)
    hang_s: float = 120.0
    v2_status: str = "success"  # Eden AI v2 spelling ("success" or the spec's "sucess")
    fallback_succeeds: bool = False  # Eden AI v2 provider_fail: the fallback provider answers
    stream: bool = False  # Eden AI v3: answer as server-sent events
    served_model: str | None = None
    # Replicate: the first ``poll_errors`` GETs of the prediction fail with this ("500", "429",
    # "reset" for a connection reset) while the prediction keeps running.
    poll_error: str | None = None
    poll_errors: int = 1
    finish_reason: str = "stop"  # Eden AI v3 finish_reason / Ollama done_reason ("length")
    drip_ms: int = 0  # send the body one byte every drip_ms milliseconds

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown reply kind {self.kind!r}; expected one of {KINDS}")
        if self.poll_error is not None and not (
            self.poll_error.isdigit() or self.poll_error in POLL_ERRORS
        ):
            raise ValueError(f"poll_error must be an HTTP status or one of {POLL_ERRORS}")

    @classmethod
    def success(cls, text: str = DEFAULT_TEXT, **kwargs: Any) -> Self:
        return cls(kind="success", text=text, **kwargs)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "2", **kwargs: Any) -> Self:
        return cls(kind="rate_limited", status=429, retry_after=retry_after, **kwargs)

    @classmethod
    def error(cls, status: int, message: str | None = None, **kwargs: Any) -> Self:
        return cls(kind="error", status=status, message=message, **kwargs)

    @classmethod
    def hang(cls, seconds: float = 120.0, **kwargs: Any) -> Self:
        return cls(kind="hang", hang_s=seconds, **kwargs)

    @classmethod
    def malformed_json(cls, **kwargs: Any) -> Self:
        return cls(kind="malformed_json", **kwargs)

    @classmethod
    def provider_fail(
        cls, message: str = "Provider is currently unavailable", **kwargs: Any
    ) -> Self:
        return cls(kind="provider_fail", message=message, **kwargs)

    @classmethod
    def stuck(cls, **kwargs: Any) -> Self:
        return cls(kind="stuck", **kwargs)

    @classmethod
    def empty(cls, **kwargs: Any) -> Self:
        return cls(kind="empty", text="", **kwargs)

    @classmethod
    def refusal(cls, text: str = REFUSAL_TEXT, **kwargs: Any) -> Self:
        return cls(kind="refusal", text=text, **kwargs)

    @classmethod
    def aborted(cls, **kwargs: Any) -> Self:
        return cls(kind="aborted", **kwargs)

    @classmethod
    def create_hang(cls, seconds: float = 120.0, **kwargs: Any) -> Self:
        kwargs.setdefault("latency_ms", 60_000)
        return cls(kind="create_hang", hang_s=seconds, **kwargs)

    @classmethod
    def poll_failure(cls, error: str = "500", *, times: int = 1, **kwargs: Any) -> Self:
        """A prediction still running (``polls`` >= 1) whose first GETs fail with ``error``."""
        kwargs.setdefault("polls", times + 1)
        return cls(kind="success", poll_error=error, poll_errors=times, **kwargs)

    @classmethod
    def stream_error(
        cls, text: str = "a photo of a cat", message: str = "Upstream provider error", **kwargs: Any
    ) -> Self:
        return cls(kind="stream_error", text=text, message=message, stream=True, **kwargs)

    @classmethod
    def parse(cls, spec: str | Reply) -> Reply:
        """``"success"``, ``"429"``, ``"500"``, ``"402"``, ``"401"``, ``"hang"``, ``"malformed"``,
        ``"fail"``, ``"stuck"``, ``"empty"``, ``"refusal"``, ``"aborted"``, ``"create_hang"``,
        ``"poll_500"`` / ``"poll_429"`` / ``"poll_reset"``, ``"stream_error"``, ``"length"``,
        ``"drip"``; a Reply passes through."""
        if isinstance(spec, Reply):
            return spec
        key = spec.strip().lower()
        if key.isdigit():
            status = int(key)
            return cls.rate_limited() if status == 429 else cls.error(status)
        if key.startswith("poll_"):
            return cls.poll_failure(key.removeprefix("poll_"))
        aliases = {
            "ok": "success",
            "malformed": "malformed_json",
            "fail": "provider_fail",
            "rate_limited": "rate_limited",
        }
        key = aliases.get(key, key)
        makers: dict[str, Callable[[], Reply]] = {
            "success": cls.success,
            "rate_limited": cls.rate_limited,
            "hang": cls.hang,
            "malformed_json": cls.malformed_json,
            "provider_fail": cls.provider_fail,
            "stuck": cls.stuck,
            "empty": cls.empty,
            "refusal": cls.refusal,
            "aborted": cls.aborted,
            "create_hang": cls.create_hang,
            "stream_error": cls.stream_error,
            "length": lambda: cls.success(finish_reason="length"),
            "drip": lambda: cls.success(drip_ms=100),
        }
        if key not in makers:
            raise ValueError(f"unknown reply {spec!r}")
        return makers[key]()

    def output_text(self) -> str:
        if self.kind == "empty":
            return ""
        if self.kind == "refusal":
            return self.text or REFUSAL_TEXT
        return DEFAULT_TEXT if self.text is None else self.text


def image_format(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """``(Pillow format, (width, height))`` of image bytes, or None when Pillow cannot read them:
    the fakes look at the bytes, as the vendors do, not at the label we send."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format or ""), image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def data_url_bytes(url: str) -> bytes | None:
    """The bytes of a ``data:<mime>;base64,`` URL, else None."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    json: Any = None
    form: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name, type, data
    received_at: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang_s: float | None = None  # never answer; close after this long
    reset: bool = False  # close the connection with a TCP reset instead of answering
    drip_s: float = 0.0  # send the body one byte at a time, this long apart

    @classmethod
    def json(cls, status: int, payload: Any, **kwargs: Any) -> Response:
        return cls(status=status, body=json.dumps(payload).encode(), **kwargs)


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) resets connections when a benchmark opens 64 at once.
    request_queue_size = 1024
    daemon_threads = True


class FakeServer:
    """Base class: subclasses implement ``handle(request) -> Response``."""

    vendor = "fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: int = 0,
        api_key: str | None = None,
        default: str | Reply = "success",
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.api_key = api_key  # when set, requests without "Bearer <api_key>" get 401
        self.verbose = verbose
        self._default = Reply.parse(default)
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        handler = _make_handler(self)
        httpd = _Server((self.host, self.port), handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def request_stop(self) -> None:
        """Ask a server running in ``serve_forever`` to stop (safe from a signal handler)."""
        self._stopping.set()

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- scripting ------------------------------------------------------------------------------

    def script(self, replies: Iterable[str | Reply], *, default: str | Reply | None = None) -> None:
        """Replace the queue of replies; optionally change the default used once it runs out."""
        parsed = [Reply.parse(r) for r in replies]
        with self._lock:
            self._queue = deque(parsed)
            if default is not None:
                self._default = Reply.parse(default)

    def set_default(self, reply: str | Reply) -> None:
        with self._lock:
            self._default = Reply.parse(reply)

    def next_reply(self) -> Reply:
        with self._lock:
            reply = self._queue.popleft() if self._queue else self._default
        if reply.latency_ms is None:
            reply = replace(reply, latency_ms=self.latency_ms)
        return reply

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def wait(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops. True if it is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    # --- handling -------------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def authorized(self, request: RecordedRequest) -> bool:
        if self.api_key is None:
            return True
        return request.header("authorization") == f"Bearer {self.api_key}"

    def handle(self, request: RecordedRequest) -> Response:
        raise NotImplementedError

    def unauthorized(self, request: RecordedRequest) -> Response:
        return Response.json(
            401, {"error": {"type": "authentication_error", "message": "Invalid token"}}
        )

    def not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, {"detail": f"Not Found: {request.method} {request.path}"})


def _parse_body(content_type: str, body: bytes) -> tuple[Any, dict[str, str], dict[str, Any]]:
    if not body:
        return None, {}, {}
    if content_type.startswith("application/json"):
        try:
            return json.loads(body), {}, {}
        except ValueError:
            return None, {}, {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        form: dict[str, str] = {}
        files: dict[str, tuple[str, str, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = (filename, part.get_content_type(), data)
            else:
                form[name] = data.decode("utf-8", errors="replace")
        return None, form, files
    return None, {}, {}


def _make_handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every answer.
        disable_nagle_algorithm = True
        server_version = f"captiondesk-fake-{fake.vendor}/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            if fake.verbose:
                super().log_message(format, *args)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            parsed, form, files = _parse_body(content_type, body)
            record = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                json=parsed,
                form=form,
                files=files,
                received_at=time.time(),
            )
            fake._record(record)
            with fake._lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                if not fake.authorized(record):
                    response = fake.unauthorized(record)
                else:
                    response = fake.handle(record)
                if response.reset:
                    # SO_LINGER 0: close() sends RST, as a crashed proxy or load balancer does.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if response.hang_s is not None:
                    fake.wait(response.hang_s)
                    self.close_connection = True
                    return
                if fake.wait(response.delay_s):
                    self.close_connection = True
                    return
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if response.drip_s > 0:
                    self._drip(response)
                else:
                    self.wfile.write(response.body)
            finally:
                with fake._lock:
                    fake.in_flight -= 1

        def _drip(self, response: Response) -> None:
            try:
                for index in range(len(response.body)):
                    self.wfile.write(response.body[index : index + 1])
                    self.wfile.flush()
                    if fake.wait(response.drip_s):
                        break
            except OSError:  # the client gave up: what a dripping server sees
                pass
            self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve()

    return Handler
