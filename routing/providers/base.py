"""The one interface every provider client speaks.

Nothing here (or anywhere in ``routing.providers``) imports Django or our apps: a client takes image
bytes (or a URL) plus parameters and returns frozen dataclasses. Raw vendor JSON never leaves the
package; only a truncated, secret-free ``raw_excerpt`` does, for the call log.

Config dicts (``Provider.from_config`` / ``get_provider``) are plain mappings. Keys every client
understands:

- ``model``: vendor model id (``openai/gpt-4o``, ``llava:13b``, ``Salesforce/blip2-opt-2.7b`` ...)
- ``base_url``: vendor base URL; defaults to the real vendor URL
- ``api_key``: secret for ``Authorization: Bearer``; never echoed in errors or excerpts
- ``connect_timeout_s``: TCP connect timeout (the read timeout is the request's ``timeout_s``)

Price keys (all optional, USD): ``input_usd_per_mtok`` / ``output_usd_per_mtok`` (Eden AI v3,
used when the response carries no cost), ``usd_per_second`` (Replicate hardware price),
``gpu_hour_usd`` (local workers and Ollama). Each client documents its extra keys.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Self

Task = Literal["caption", "question", "json"]
CostSource = Literal["provider", "computed", "configured", "none"]
MalformedReason = Literal["empty", "refusal", "schema", "unparseable"]

TASKS: tuple[Task, ...] = ("caption", "question", "json")
COST_SOURCES: tuple[CostSource, ...] = ("provider", "computed", "configured", "none")
PROVIDER_KINDS: tuple[str, ...] = ("edenai", "edenai_v2", "replicate", "ollama", "local")

RAW_EXCERPT_CHARS = 2000
DEFAULT_CONNECT_TIMEOUT_S = 5.0


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionRequest:
    """What to ask a model about one image.

    ``task``: ``caption`` (``prompt`` is an optional instruction), ``question`` (``prompt`` is the
    question) or ``json`` (``prompt`` is the instruction and ``json_schema`` the schema the answer
    must satisfy). ``params`` holds decoding parameters; clients map the ones their vendor knows:
    ``max_new_tokens``, ``min_new_tokens``, ``temperature``, ``top_p``, ``use_nucleus_sampling``,
    ``num_beams``, ``repetition_penalty``, ``seed``, ``context`` (Replicate BLIP-2 only).

    Two hooks for vendors that run a request as a job with an id (Replicate predictions), so that
    a call lost with its worker is resumed instead of paid for twice; clients without jobs ignore
    them, and neither takes part in equality or ``repr``:

    - ``on_submitted(request_id)`` is called as soon as the vendor has answered the create call
      with the job's id, before any polling. Store it durably. If it raises an ``Exception``, the
      job is cancelled (best effort) and the exception propagates; a ``BaseException`` (the worker
      going away) propagates without cancelling, so that the job can be resumed.
    - ``resume_request_id``: the id stored by an earlier attempt. The client creates nothing: it
      looks that job up and polls it to its end within ``timeout_s`` (cancelling it at the
      deadline), or returns its result or error (with its cost) if it has ended already. A job the
      vendor no longer has raises ``PredictionLost`` (retryable: a new attempt starts afresh).
    """

    image: bytes | None = None
    image_url: str | None = None
    mime_type: str = "image/jpeg"
    task: Task = "caption"
    prompt: str = ""
    json_schema: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 60.0
    on_submitted: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    resume_request_id: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.image is None and not self.image_url:
            raise ValueError("CaptionRequest needs image bytes or an image_url")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.task == "question" and not self.prompt.strip():
            raise ValueError("a question task needs the question in prompt")
        if self.task == "json" and self.json_schema is None:
            raise ValueError("a json task needs json_schema")
        if not self.timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        if self.json_schema is not None:
            object.__setattr__(self, "json_schema", _frozen_mapping(self.json_schema))

    def __repr__(self) -> str:  # keep image bytes out of logs and tracebacks
        size = len(self.image) if self.image is not None else 0
        url = (self.image_url or "")[:80]
        return (
            f"CaptionRequest(task={self.task!r}, image={size} bytes, image_url={url!r}, "
            f"prompt={self.prompt[:60]!r}, params={dict(self.params)!r}, "
            f"timeout_s={self.timeout_s})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionResult:
    """A successful answer. ``text`` is cleaned; for ``json`` tasks it is the validated JSON text.

    ``served_model``: the model that actually answered (a vendor-side fallback may differ from the
    configured one). ``cost_source``: ``provider`` (reported by the vendor), ``computed`` (tokens or
    seconds times a configured price), ``configured`` (GPU seconds times a configured $/GPU-hour) or
    ``none`` (unknown, ``cost_usd`` is None). ``usage``: tokens/seconds when known, e.g.
    ``prompt_tokens``, ``completion_tokens``, ``predict_time_s``, ``gpu_seconds``.
    ``truncated``: the answer was cut off at the token limit (or the time limit) rather than ended
    by the model: Eden AI ``finish_reason: "length"``, Ollama ``done_reason: "length"``, a local
    generation whose last token is not end-of-sequence. Replicate's BLIP-2 does not say.
    """

    text: str
    served_model: str
    request_id: str | None
    latency_ms: int
    cost_usd: Decimal | None
    cost_source: CostSource
    raw_excerpt: str = ""
    usage: Mapping[str, float] = field(default_factory=dict)
    data: Any = None  # parsed JSON for ``json`` tasks (dicts/lists/str/numbers only)
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.cost_source not in COST_SOURCES:
            raise ValueError(f"unknown cost_source {self.cost_source!r}")
        if (self.cost_usd is None) != (self.cost_source == "none"):
            raise ValueError("cost_usd must be None exactly when cost_source is 'none'")
        object.__setattr__(self, "usage", _frozen_mapping(self.usage))


# --- what a vendor accepts ---------------------------------------------------------------------

IMAGE_MIME_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderCapabilities:
    """What one configured client can send to its vendor without a refusal, so that the caller can
    prepare a request for it (``routing.providers.prepare.prepare_request``) instead of learning
    the limits from a 4xx that turns a fallback into a permanent failure.

    - ``image_mime_types``: image formats the vendor decodes, as MIME types.
    - ``max_image_bytes``: the largest image sent as bytes (None: no documented limit). It applies
      to images we send inline (bytes or a ``data:`` URL), not to web URLs the vendor fetches.
    - ``max_image_side_px``: the longest side the vendor accepts, where it documents one.
    - ``params``: the generic decoding parameters (``CaptionRequest.params`` names such as
      ``max_new_tokens``, ``temperature``) that the client maps for this vendor; others are not
      sent, so the caller should drop them.
    - ``param_ranges``: inclusive ``(min, max)`` per generic name, in the vendor's units
      (``math.inf`` for no upper bound); values outside are refused by the vendor.
    """

    image_mime_types: frozenset[str]
    max_image_bytes: int | None = None
    max_image_side_px: int | None = None
    params: frozenset[str] = frozenset()
    param_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_mime_types", frozenset(self.image_mime_types))
        object.__setattr__(self, "params", frozenset(self.params))
        object.__setattr__(self, "param_ranges", MappingProxyType(dict(self.param_ranges)))
        if not self.image_mime_types:
            raise ValueError("a provider must accept at least one image type")
        unknown = set(self.param_ranges) - self.params
        if unknown:
            raise ValueError(f"ranges for parameters the provider does not take: {sorted(unknown)}")
        for name, (low, high) in self.param_ranges.items():
            if not low <= high:
                raise ValueError(f"{name}: empty range ({low}, {high})")

    def intersect(self, other: ProviderCapabilities) -> ProviderCapabilities:
        """What both accept: for a vendor that may hand a request on to another model."""
        ranges: dict[str, tuple[float, float]] = {}
        params = self.params & other.params
        for name in params:
            mine = self.param_ranges.get(name)
            theirs = other.param_ranges.get(name)
            if mine and theirs:
                ranges[name] = (max(mine[0], theirs[0]), min(mine[1], theirs[1]))
            elif mine or theirs:
                ranges[name] = mine or theirs  # type: ignore[assignment]
        return ProviderCapabilities(
            image_mime_types=self.image_mime_types & other.image_mime_types,
            max_image_bytes=_smaller(self.max_image_bytes, other.max_image_bytes),
            max_image_side_px=_smaller(self.max_image_side_px, other.max_image_side_px),
            params=params,
            param_ranges=ranges,
        )


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# --- errors -----------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every typed provider failure. ``error_class`` is the stable name for the call log.

    ``retryable`` says whether trying the same route again may help (the caller's policy decides).
    ``cost_usd`` is set when the vendor charged for a failed call.
    """

    error_class: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        raw_excerpt: str = "",
        cost_usd: Decimal | None = None,
        latency_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.raw_excerpt = raw_excerpt
        self.cost_usd = cost_usd
        self.latency_ms = latency_ms

    def __str__(self) -> str:
        return self.message


class TransientError(ProviderError):
    """Connection trouble or a 5xx: the same route may work on a later try."""

    error_class = "transient"
    retryable = True


class ProviderTimeout(TransientError):
    """No answer within the request's timeout (connect, read, or the overall polling deadline)."""

    error_class = "timeout"


class ProviderConnectionError(TransientError):
    """The vendor could not be reached (refused, reset, DNS)."""

    error_class = "connection_error"


class ServerError(TransientError):
    """HTTP 5xx, or a vendor-side failure reported inside an HTTP 200 (Eden AI v2 ``fail``)."""

    error_class = "server_error"


class RateLimited(TransientError):
    """HTTP 429. ``retry_after_s`` comes from Retry-After (seconds or an HTTP date) when sent."""

    error_class = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class PredictionAborted(TransientError):
    """The vendor ended the job at its deadline before it started running (Replicate
    ``aborted``). Nothing ran and nothing is charged (``cost_usd`` is 0)."""

    error_class = "aborted"


class PredictionLost(TransientError):
    """A job we tried to resume is gone (unknown id) or its output was removed; a new attempt
    starts a new job. ``cost_usd`` is set when the lost job was billed."""

    error_class = "prediction_lost"


class PermanentError(ProviderError):
    """Trying again will not help until someone changes the configuration or the request."""

    error_class = "permanent"


class AuthError(PermanentError):
    """HTTP 401/403: missing or wrong key."""

    error_class = "auth_error"


class BadRequest(PermanentError):
    """HTTP 400/404/415/422: the vendor rejected the request (unknown model, bad input...)."""

    error_class = "bad_request"


class OutOfCredits(PermanentError):
    """HTTP 402: the account has no credit (or no billing set up)."""

    error_class = "out_of_credits"


class WeightsUnavailable(PermanentError):
    """Local model weights are not in the Hugging Face cache and we are offline."""

    error_class = "weights_unavailable"


class MalformedOutput(ProviderError):
    """The call worked but the answer is unusable: empty, a refusal, JSON failing its schema, or a
    response body we cannot parse. ``reason`` tells which."""

    error_class = "malformed"

    def __init__(self, message: str, *, reason: MalformedReason, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason: MalformedReason = reason


# --- provider interface -----------------------------------------------------------------------


class Provider(abc.ABC):
    """A configured client for one route. Instances are cheap; reuse one per worker for pooling."""

    kind: ClassVar[str]
    #: True when ``caption_batch`` runs one batched forward pass (local models).
    supports_batching: ClassVar[bool] = False

    def __init__(self, *, name: str) -> None:
        self.name = name

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build from a plain config dict (see the module docstring and each client)."""

    @abc.abstractmethod
    def caption(self, request: CaptionRequest) -> CaptionResult:
        """Answer one request, or raise a ``ProviderError`` subclass. Never raises anything else
        for vendor trouble."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> ProviderCapabilities:
        """What this client (with its configured model) can send without a vendor refusal."""

    def caption_batch(
        self, requests: Sequence[CaptionRequest]
    ) -> list[CaptionResult | ProviderError]:
        """One result or typed error per request, in order. Remote clients call one by one."""
        results: list[CaptionResult | ProviderError] = []
        for request in requests:
            try:
                results.append(self.caption(request))
            except ProviderError as exc:
                results.append(exc)
        return results

    def close(self) -> None:  # noqa: B027 - a no-op hook by default, not abstract
        """Release pooled connections or memory. Safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def get_provider(kind: str, config: Mapping[str, Any]) -> Provider:
    """The registry: ``kind`` is one of ``PROVIDER_KINDS`` (``Route.Provider`` values)."""
    cls = provider_class(kind)
    return cls.from_config(config)


def provider_class(kind: str) -> type[Provider]:
    # Imported lazily so that importing base never pulls in requests-heavy or torch-heavy modules.
    if kind == "edenai":
        from routing.providers.edenai import EdenAIProvider

        return EdenAIProvider
    if kind == "edenai_v2":
        from routing.providers.edenai import EdenAIV2Provider

        return EdenAIV2Provider
    if kind == "replicate":
        from routing.providers.replicate import ReplicateProvider

        return ReplicateProvider
    if kind == "ollama":
        from routing.providers.ollama import OllamaProvider

        return OllamaProvider
    if kind == "local":
        from routing.providers.local import LocalProvider

        return LocalProvider
    raise ValueError(f"unknown provider kind {kind!r}; expected one of {PROVIDER_KINDS}")


def monotonic_ms_since(start: float) -> int:
    """Milliseconds elapsed since ``start`` (a ``time.monotonic()`` value)."""
    return max(0, round((time.monotonic() - start) * 1000))
