"""Middleware that only browser pages need, kept off the JSON API's hot path."""

import functools
import ipaddress

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string

from .errors import ErrorCode

# What the admin and Silk need. The API authenticates with Bearer tokens and keeps no session,
# so sessions, CSRF cookies and messages there would be pure overhead (~40% of a trivial view).
BROWSER_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
BROWSER_PATH_PREFIXES = ("/admin", "/silk", "/api/docs")


class BrowserOnlyMiddleware:
    """Runs BROWSER_MIDDLEWARE for browser paths only.

    The wrapped chain runs each middleware's request/response hooks; their `process_view` hooks
    are not run, which only matters for CSRF: every admin view is wrapped in `csrf_protect` by
    `AdminSite.admin_view`, so the admin stays CSRF-protected.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        handler = get_response
        for path in reversed(BROWSER_MIDDLEWARE):
            handler = import_string(path)(handler)
        self.browser_response = handler

    def __call__(self, request):
        if request.path_info.startswith(BROWSER_PATH_PREFIXES):
            # The console shows every time in one zone, the operator's (CONSOLE_TIME_ZONE):
            # the admin's own lists and forms too, not only the live page and dashboard.
            with timezone.override(settings.CONSOLE_TIME_ZONE):
                return self.browser_response(request)
        return self.get_response(request)


# Headers only the proxy that terminates TLS may set (what scheme and address the client used).
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_FORWARDED",
)


@functools.cache
def _trusted_networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def is_trusted_proxy(address: str) -> bool:
    """True when `address` (a REMOTE_ADDR) is one of settings.TRUSTED_PROXIES."""
    return _trusted(address, tuple(settings.TRUSTED_PROXIES))


@functools.lru_cache(maxsize=4096)
def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(proxies))


class TrustedProxyMiddleware:
    """Drops the X-Forwarded-* headers of any peer that is not a trusted proxy.

    Anyone can send `X-Forwarded-Proto: https` or `X-Forwarded-For: 1.2.3.4`; only the proxy in
    settings.TRUSTED_PROXIES (the one that terminates TLS) knows the truth. Stripping them here,
    first, means SECURE_PROXY_SSL_HEADER and any code reading the client's address see them only
    when they came from that proxy.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if any(h in meta for h in FORWARDED_HEADERS) and not is_trusted_proxy(
            meta.get("REMOTE_ADDR", "")
        ):
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)


class RequestGuardMiddleware:
    """Refuses, before anything else reads it, a request no view could answer safely:

    - a body over DATA_UPLOAD_MAX_MEMORY_SIZE, judged from Content-Length alone (a huge header
      with no body included): 413 PAYLOAD_TOO_LARGE. Without this, the first code that reads
      `request.body` (Silk, DRF, a form) raised RequestDataTooBig, which DRF turned into a 500.
    - a NUL byte in the path (`%00`) or in a non-multipart body: 400 BAD_REQUEST. PostgreSQL
      text cannot hold NUL, so anything that stores the raw request (Silk, with SILK_ENABLED)
      failed with a 500; no API input legitimately contains one (JSON escapes it as \\u0000,
      which serializers refuse with a 422).

    Sits before Silk and every other middleware that touches the body (flashdeals/settings).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads such a body as empty, so does everything after us
        if limit is not None and length > limit:
            return _error(
                413,
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"The request body is larger than this API accepts ({limit} bytes).",
                {"limit_bytes": limit},
            )
        if "\x00" in request.path:
            return _error(400, ErrorCode.BAD_REQUEST, "The path contains a NUL byte.")
        if length and not request.content_type.startswith("multipart/") and b"\x00" in request.body:
            return _error(400, ErrorCode.BAD_REQUEST, "The request body contains a NUL byte.")
        return self.get_response(request)


def _error(status: int, code: ErrorCode, message: str, details=None) -> JsonResponse:
    # Imported here, not at the top: settings (base.py, with Silk on) import this module, and the
    # exception handler imports DRF, whose api_settings would then be read before REST_FRAMEWORK
    # exists (every API silently on DRF's default parsers and authentication).
    from .exception_handler import error_body

    return JsonResponse(error_body(code, message, details), status=status)
