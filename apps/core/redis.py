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
    """The server behind REDIS_URL could lose what the deal gate keeps there (accepted
    purchases, counters): it may evict keys, or it keeps no AOF for WAITAOF to confirm."""


def check_gate_server() -> None:
    """Raises GateServerUnsafe unless the server never evicts (maxmemory-policy noeviction) and,
    with GATE_DURABLE_ACK, keeps an AOF (appendonly yes; without one every purchase would be
    refused as not durable). The cache may share the server: with noeviction a full server
    refuses cache writes, which fail open, and never drops a gate key. Where CONFIG is disabled
    (some managed services) set these there and REDIS_EVICTION_CHECK=false."""
    if not settings.REDIS_EVICTION_CHECK:
        return
    try:
        config = get_redis().config_get("maxmemory-policy", "appendonly")
    except redis.ResponseError:
        config = {}
    policy = config.get("maxmemory-policy", "unknown (CONFIG is disabled)")
    if policy != "noeviction":
        raise GateServerUnsafe(
            f"maxmemory-policy is {policy}; the deal gate's Redis needs "
            "maxmemory-policy noeviction (an evicted key loses accepted purchases)"
        )
    if settings.GATE_DURABLE_ACK and config.get("appendonly") != "yes":
        raise GateServerUnsafe(
            "appendonly is no; the deal gate's Redis needs appendonly yes (and appendfsync "
            "always): purchases are answered only once WAITAOF confirms them on disk"
        )


def key(*parts: object) -> str:
    """Builds a namespaced key: `<prefix>:<part>:<part>`. Every Redis key goes through here."""
    return ":".join((settings.REDIS_KEY_PREFIX, *map(str, parts)))
