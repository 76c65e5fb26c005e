"""Preparing one attempt's request for its provider: the image bytes, the parameters (the route's
defaults under the caption's own), the cache key, and what the provider accepts.

Vendors refuse what they do not take (Eden AI v2 uploads only JPEG/PNG/TIFF, Replicate data URLs
stop near 256 KB, parameter ranges differ per vendor), and one run's parameters are merged into
every route of a chain. So each provider declares its capabilities and the request is fitted to
them here: the image re-encoded or scaled down, parameters clamped or dropped. What changed is
returned as short notes for the call log.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from routing.models import Caption, Route
from routing.providers import CaptionRequest, Provider
from routing.providers.prepare import prepare_request
from routing.services import cache

ImagePayload = tuple[bytes, str]


def image_payload_read(caption: Caption) -> ImagePayload:
    """The served copy when there is one (EXIF and GPS stripped), else the original file."""
    image = caption.image
    field = image.display if image.display else image.file
    with field.open("rb") as fh:
        data = fh.read()
    mime = mimetypes.guess_type(field.name or "")[0] or f"image/{image.format.lower()}"
    return data, mime


def request_params(caption: Caption, route: Route) -> dict[str, object]:
    return {**(route.params or {}), **(caption.params or {})}


def request_cache_key(caption: Caption, route: Route) -> str:
    return cache.cache_key(
        image_sha256=caption.image.sha256,
        route=route,
        task=caption.task,
        prompt=caption.prompt,
        params=request_params(caption, route),
        json_schema=caption.json_schema,
    )


@dataclass(frozen=True, slots=True)
class FittedRequest:
    request: CaptionRequest
    #: What was changed to fit the provider ("image re-encoded ...", "temperature clamped ...").
    notes: tuple[str, ...]


def request_build(
    *,
    caption: Caption,
    route: Route,
    client: Provider,
    payload: ImagePayload,
    timeout_s: float,
) -> FittedRequest:
    """The request for ``route``, fitted to what its provider accepts. Raises ``ValueError`` or
    ``OSError`` when no acceptable request can be made from this image."""
    data, mime = payload
    request = CaptionRequest(
        image=data,
        mime_type=mime,
        task=caption.task,  # type: ignore[arg-type]
        prompt=caption.prompt,
        json_schema=caption.json_schema,
        params=request_params(caption, route),
        timeout_s=max(timeout_s, 0.001),
    )
    fitted = prepare_request(request, client.capabilities)
    return FittedRequest(request=fitted.request, notes=tuple(fitted.notes))
