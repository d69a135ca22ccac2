"""Middleware that only browser pages need, kept off the JSON API's hot path."""

import functools
import ipaddress

from django.conf import settings
from django.utils.module_loading import import_string

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
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


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
