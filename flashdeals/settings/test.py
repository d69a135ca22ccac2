"""pytest: real PostgreSQL and Redis, isolated Redis databases, fast password hashing."""

import os

os.environ["SILK_ENABLED"] = "false"

from .base import *  # noqa: E402,F403
from .base import REDIS_URL, env  # noqa: E402


def _redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


# Tests own two Redis databases of whatever server REDIS_URL names: app keys and cache in one
# (flushed before every test), the Celery broker in the other (never flushed under a live worker).
TEST_REDIS_DB = env.int("TEST_REDIS_DB", default=13)
REDIS_URL = _redis_db(REDIS_URL, TEST_REDIS_DB)
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CACHES["default"]["OPTIONS"]["IGNORE_EXCEPTIONS"] = False  # noqa: F405
CELERY_BROKER_URL = _redis_db(REDIS_URL, TEST_REDIS_DB + 1)
REDIS_KEY_PREFIX = "fdtest"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# The writer commits each batch at once; a test about lingering sets it itself.
ORDER_STREAM_LINGER_MS = 0
