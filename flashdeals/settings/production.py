"""Production: refuses to start with a missing, published or weak secret; Silk off; secure
cookies, HSTS and the SSL redirect; the proxy's headers trusted only from TRUSTED_PROXIES.

Every choice here is explained in docs/security.md. `manage.py check --deploy` under these
settings reports nothing (flashdeals/tests/test_production_settings.py runs it).
"""

import os

from django.core.exceptions import ImproperlyConfigured

from flashdeals.envfile import load

load()  # .env, where the environment does not set a variable (the Docker image has none)
# Silk stores request and response bodies (tokens, passwords) and costs a query per request:
# never in production, whatever the environment or .env say.
os.environ["SILK_ENABLED"] = "false"

from .base import *  # noqa: E402,F403
from .base import SIMPLE_JWT, env  # noqa: E402
from .secret_checks import check_signing_keys  # noqa: E402

_missing = [n for n in ("DATABASE_URL", "REDIS_URL") if not env.str(n, default="")]
if _missing:
    raise ImproperlyConfigured(
        f"production settings need these environment variables: {', '.join(_missing)}"
    )
# Read from the environment, not from base.py: base falls back to a dev key, and JWT_SECRET to
# SECRET_KEY; production accepts neither fallback.
SECRET_KEY = env.str("SECRET_KEY", default="")
check_signing_keys(secret_key=SECRET_KEY, jwt_secret=env.str("JWT_SECRET", default=""))
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_SECRET")

DEBUG = False
# seed_demo creates no account from a published password (apps/lab/management/commands/seed_demo.py)
DEMO_PUBLISHED_PASSWORDS_ALLOWED = False
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="")
DEMO_SHOPPER_PASSWORD = env.str("DEMO_SHOPPER_PASSWORD", default="")
SILK_ENABLED = False
# No `testserver` (Django's test client host) and no wildcard default: name the real hosts.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
if "testserver" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must not contain the test client's `testserver`")

# --- TLS and the proxy in front (deploy/nginx.conf) -----------------------------------------------
# TRUSTED_PROXIES: addresses (or CIDR networks) of the proxy that terminates TLS. Only requests
# whose REMOTE_ADDR is one of them may say, with X-Forwarded-Proto, that the client used HTTPS
# (apps.core.middleware.TrustedProxyMiddleware strips the header from anyone else, and
# deploy/gunicorn.conf.py gives gunicorn the same list). Empty: no proxy is trusted and the
# header is ignored, so a client talking to gunicorn directly cannot claim HTTPS.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None  # noqa: F405
)
# Plain HTTP is redirected to HTTPS; the health probes are exempt (load balancers and Docker
# health checks speak plain HTTP to the app). docker-compose (plain HTTP on localhost, no TLS
# proxy) turns the redirect off with SECURE_SSL_REDIRECT=false.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/ready$", r"^(auth|products|orders)/health$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS: one year, subdomains included. A first deploy can start lower (SECURE_HSTS_SECONDS=300)
# and raise it once HTTPS works everywhere: browsers remember the header for its whole lifetime.
# 0 turns HSTS off (and makes check --deploy report W004, on purpose).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preload is a commitment to browser vendors that is hard to undo: opt in explicitly.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [
    *SILENCED_SYSTEM_CHECKS,  # noqa: F405 (the admin middleware checks, see base.py)
    # W002/W003: XFrameOptionsMiddleware and CsrfViewMiddleware are not in MIDDLEWARE because
    # apps.core.middleware.BrowserOnlyMiddleware runs them (with sessions and auth) for the
    # browser paths only (/admin, /silk, /api/docs); every admin view is wrapped in csrf_protect.
    # The JSON API authenticates with a Bearer header, never a cookie, so CSRF cannot reach it,
    # and its JSON answers are not framable pages (apps/core/tests/test_security_headers.py).
    "security.W002",
    "security.W003",
    # W021 asks for HSTS preload; preloading is an opt-in (SECURE_HSTS_PRELOAD) because leaving
    # the preload list takes months.
    "security.W021",
]
