"""Project-wide middleware: request size limits before the body is read; the Content-Security-
Policy of HTML pages."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

# Pages and endpoints that take many files, a zip archive or a predictions file in one request
# (files past 2.5 MB stream to temporary files, not memory).
BULK_UPLOADS = frozenset(
    {
        "labeling:import-upload",
        "labeling:import-zip",
        "labeling:import-predictions",
        "api:image-list",
        "api:batch-list",
    }
)


class RequestSizeLimitMiddleware:
    """Answers 413 from the declared Content-Length, before a byte of the body is read: a
    200 MB upload was received in full (220 MB of web memory) and only then refused. Bulk
    uploads may be up to ZIP_UPLOAD_MAX_BYTES, every other request up to REQUEST_MAX_BYTES
    (one image at the ingestion limit, plus the form around it). A body without a declared
    length (Transfer-Encoding: chunked) is refused with 411."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            # A chunked body declares no size, so no limit could be checked before reading it,
            # and gunicorn itself has none. Browsers never send one; other clients can send a
            # Content-Length. 411 Length Required, before a byte of the body is read.
            return HttpResponse(
                "Send a Content-Length: chunked request bodies are not accepted.",
                status=411,
                content_type="text/plain",
            )
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isascii() or not declared.isdigit():
            return HttpResponse("Bad Content-Length.", status=400, content_type="text/plain")
        limit = self._limit(request)
        if int(declared) > limit:
            return self._too_large(request, int(declared), limit)
        return self.get_response(request)

    @staticmethod
    def _limit(request: HttpRequest) -> int:
        try:
            name = resolve(request.path_info).view_name
        except Resolver404:
            name = ""
        if name in BULK_UPLOADS:
            return settings.ZIP_UPLOAD_MAX_BYTES
        return settings.REQUEST_MAX_BYTES

    @staticmethod
    def _too_large(request: HttpRequest, size: int, limit: int) -> HttpResponse:
        message = f"This upload is {size:,} bytes; the limit here is {limit:,} bytes."
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": message}, status=413)
        context = {
            "message": message,
            "request_limit": settings.REQUEST_MAX_BYTES,
            "zip_limit": settings.ZIP_UPLOAD_MAX_BYTES,
        }
        return render(request, "413.html", context, status=413)


# Scripts only from our own static files: no inline <script>, no on* handlers, no eval. Styles
# allow inline because templates use style="" attributes (no script runs from CSS). Images may
# be data: URIs (the CSS's icons). Nothing frames the app.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# drf-spectacular's Swagger UI and Redoc pages start themselves with inline scripts.
CSP_EXEMPT_PATHS = ("/api/docs/", "/api/redoc/")


class ContentSecurityPolicyMiddleware:
    """Sets CONTENT_SECURITY_POLICY on HTML responses that carry no policy of their own (served
    images set a stricter one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            "Content-Security-Policy" not in response
            and response.get("Content-Type", "").startswith("text/html")
            and not request.path_info.startswith(CSP_EXEMPT_PATHS)
        ):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
