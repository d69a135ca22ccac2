"""Production: refuses to start without its secrets; secure cookies and HSTS behind a TLS proxy."""

import os

_missing = [
    n for n in ("SECRET_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL") if not os.environ.get(n)
]
if _missing:
    raise RuntimeError(
        f"production settings need these environment variables: {', '.join(_missing)}"
    )

from .base import *  # noqa: E402,F403

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)  # noqa: F405
