"""The application's Redis client (deal gate, streams, rate limits). The cache uses django-redis."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    """One pooled client per process; redis-py resets the pool after a fork (gunicorn, Celery)."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=1,
        health_check_interval=30,
        decode_responses=True,
    )


class GateServerUnsafe(RuntimeError):
    """The gate's server (GATE_REDIS_URL, else REDIS_URL) could lose what the gate keeps there
    (accepted purchases, counters): it may evict keys, or it keeps no AOF for WAITAOF."""


def key(*parts: object) -> str:
    """Builds a namespaced key: `<prefix>:<part>:<part>`. Every Redis key goes through here."""
    return ":".join((settings.REDIS_KEY_PREFIX, *map(str, parts)))
