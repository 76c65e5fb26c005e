"""Provider clients: one module per vendor behind the interface in ``base``.

Imports nothing from Django or our apps. ``local`` imports torch/transformers lazily, inside
functions, so the web process never loads them.
"""

from __future__ import annotations

from routing.providers.base import (
    PROVIDER_KINDS,
    AuthError,
    BadRequest,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    OutOfCredits,
    PermanentError,
    PredictionAborted,
    PredictionLost,
    Provider,
    ProviderCapabilities,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    TransientError,
    WeightsUnavailable,
    get_provider,
    provider_class,
)

__all__ = [
    "PROVIDER_KINDS",
    "AuthError",
    "BadRequest",
    "CaptionRequest",
    "CaptionResult",
    "MalformedOutput",
    "OutOfCredits",
    "PermanentError",
    "PredictionAborted",
    "PredictionLost",
    "Provider",
    "ProviderCapabilities",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "ServerError",
    "TransientError",
    "WeightsUnavailable",
    "get_provider",
    "provider_class",
]
