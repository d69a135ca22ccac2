"""pytest: real PostgreSQL and Redis, isolated Redis databases, fast password hashing."""

import os

from flashdeals.envfile import load

# From .env only the servers to test against: every other setting is the tests' own, whatever a
# developer's .env switches for `make run` (README, "Configuration").
load(only=("DATABASE_URL", "REDIS_URL", "TEST_REDIS_DB"))
os.environ["SILK_ENABLED"] = "false"

from .base import *  # noqa: E402,F403
from .base import REDIS_URL, env, redis_url_with_db  # noqa: E402

# Tests own three Redis databases of whatever server REDIS_URL names, TEST_REDIS_DB and the two
# after it (13, 14, 15: the last three of a default server's 16): the gate's keys (flushed before
# every test), the Celery broker (never flushed under a live worker) and the cache (cleared before
# every test), each apart as in production.
TEST_REDIS_DB = env.int("TEST_REDIS_DB", default=13)
REDIS_URL = redis_url_with_db(REDIS_URL, TEST_REDIS_DB)
CELERY_BROKER_URL = redis_url_with_db(REDIS_URL, TEST_REDIS_DB + 1)
REDBEAT_REDIS_URL = CELERY_BROKER_URL  # beat's schedule and lock go with the broker
CACHES["default"]["LOCATION"] = redis_url_with_db(REDIS_URL, TEST_REDIS_DB + 2)  # noqa: F405
CACHES["default"]["OPTIONS"]["IGNORE_EXCEPTIONS"] = False  # noqa: F405
REDIS_KEY_PREFIX = "fdtest"
REDBEAT_KEY_PREFIX = f"{REDIS_KEY_PREFIX}:redbeat:"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# The writer commits each batch at once; a test about lingering sets it itself.
ORDER_STREAM_LINGER_MS = 0
# No rate limit unless a test asks for one: the suites drive many shoppers from 127.0.0.1, as
# any load generator does. Rate-limit tests set RATE_LIMIT_EXEMPT_ADDRESSES = [] themselves.
RATE_LIMIT_EXEMPT_ADDRESSES = ["0.0.0.0/0", "::/0"]
# The negative control of apps/core/tests/test_one_scheduler.py: beats it starts with this
# variable set run redbeat without its lock (redbeat's own switch), so each sends on its own.
# Only the test settings read it; a beat under local or production settings always locks.
if env.bool("TEST_BEAT_UNSAFE_NO_LOCK", default=False):
    REDBEAT_LOCK_KEY = None
# No span leaves a test process, whatever the developer's environment exports; the tracing tests
# install an in-memory exporter themselves (apps/core/tests/test_tracing.py).
OTEL_EXPORTER_OTLP_ENDPOINT = ""
