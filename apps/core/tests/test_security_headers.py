"""Forwarded headers count only from the trusted proxy; browser pages keep clickjacking and CSRF
protection although those middlewares run only on browser paths (docs/security.md,
"Hardened production settings")."""

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from apps.core.middleware import TrustedProxyMiddleware

FORWARDED = {
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_FOR": "203.0.113.9",
    "HTTP_X_FORWARDED_HOST": "evil.example",
}


def _seen_meta(remote_addr: str) -> dict:
    seen = {}

    def view(request):
        seen.update(request.META)
        return HttpResponse()

    request = RequestFactory().get("/health", REMOTE_ADDR=remote_addr, **FORWARDED)
    TrustedProxyMiddleware(view)(request)
    return seen


@pytest.mark.parametrize("proxies", [[], ["10.0.0.5"], ["192.168.0.0/16"]])
def test_forwarded_headers_from_anyone_else_are_dropped(settings, proxies):
    settings.TRUSTED_PROXIES = proxies

    meta = _seen_meta("198.51.100.7")

    assert not set(FORWARDED) & set(meta)


@pytest.mark.parametrize(("proxies", "peer"), [(["10.0.0.5"], "10.0.0.5"), (["::1/128"], "::1")])
def test_forwarded_headers_from_the_trusted_proxy_are_kept(settings, proxies, peer):
    settings.TRUSTED_PROXIES = proxies

    meta = _seen_meta(peer)

    assert {k: meta[k] for k in FORWARDED} == FORWARDED


@pytest.mark.django_db
def test_admin_pages_are_not_framable_and_csrf_protected():
    client = Client(enforce_csrf_checks=True)

    page = client.get("/admin/login/")
    post = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert post.status_code == 403  # no CSRF token
