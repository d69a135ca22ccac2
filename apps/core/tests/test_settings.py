"""Settings derived from others: the cache's Redis database (docs/reliability.md, "What a
reliability review found", case 1: the gate's server never evicts and is kept apart from the
cache)."""

import os
import subprocess
import sys

from django.conf import settings

from flashdeals.settings.base import redis_db, redis_url_with_db


def _base_settings(**env: str) -> list[str]:
    """flashdeals.settings.base, imported in a fresh interpreter with `env` on top of ours:
    the cache location and the broker URL it derives."""
    code = (
        "from flashdeals.settings import base; "
        "print(base.CACHES['default']['LOCATION']); print(base.CELERY_BROKER_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, cwd=settings.BASE_DIR,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_the_cache_defaults_to_the_next_database_of_the_gates_server():
    """Before: the cache shared the gate's database (CACHES LOCATION defaulted to REDIS_URL)."""
    # CACHE_URL="" stands for unset (a .env file could set it otherwise)
    derived = _base_settings(REDIS_URL="redis://gate.internal:6380/4", CACHE_URL="")

    assert derived == ["redis://gate.internal:6380/5", "redis://gate.internal:6380/4"]


def test_a_cache_url_wins_over_the_default():
    derived = _base_settings(
        REDIS_URL="redis://gate.internal:6380/4", CACHE_URL="redis://cache.internal:6379/0"
    )

    assert derived[0] == "redis://cache.internal:6379/0"


def test_redis_urls_name_their_database_wherever_it_is_written():
    assert redis_db("redis://h:6379") == 0
    assert redis_db("rediss://:pw@h:6379/7") == 7
    assert redis_db("redis://h:6379/2?db=3") == 3  # redis-py: the query wins over the path
    assert redis_db("unix:///run/redis.sock?db=2") == 2
    assert redis_url_with_db("redis://h:6379", 1) == "redis://h:6379/1"
    assert redis_url_with_db("rediss://:pw@h:6379/7?ssl_cert_reqs=none", 8) == (
        "rediss://:pw@h:6379/8?ssl_cert_reqs=none"
    )
    assert redis_url_with_db("redis://h:6379/2?db=3", 4) == "redis://h:6379/4"
    assert redis_url_with_db("unix:///run/redis.sock?db=2", 3) == "unix:///run/redis.sock?db=3"


def test_tests_keep_the_gate_the_broker_and_the_cache_in_databases_of_their_own():
    databases = [
        redis_db(settings.REDIS_URL),
        redis_db(settings.CELERY_BROKER_URL),
        redis_db(settings.CACHES["default"]["LOCATION"]),
    ]

    assert databases == [
        settings.TEST_REDIS_DB,
        settings.TEST_REDIS_DB + 1,
        settings.TEST_REDIS_DB + 2,
    ]
