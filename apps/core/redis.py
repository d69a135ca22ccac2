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


class RedisMayEvict(RuntimeError):
    """The server behind REDIS_URL may evict keys: the deal gate keeps accepted purchases and
    counters there, and an evicted key loses them."""


def check_no_eviction() -> None:
    """Raises RedisMayEvict unless the server's maxmemory-policy is noeviction (the cache may
    share the server: with noeviction a full server refuses cache writes, which fail open, and
    never drops a gate key). Where CONFIG is disabled (some managed services) set the policy
    there and REDIS_EVICTION_CHECK=false."""
    if not settings.REDIS_EVICTION_CHECK:
        return
    try:
        policy = get_redis().config_get("maxmemory-policy").get("maxmemory-policy", "unknown")
    except redis.ResponseError:
        policy = "unknown (CONFIG is disabled)"
    if policy != "noeviction":
        raise RedisMayEvict(
            f"maxmemory-policy is {policy}; the deal gate's Redis needs "
            "maxmemory-policy noeviction (an evicted key loses accepted purchases)"
        )


def key(*parts: object) -> str:
    """Builds a namespaced key: `<prefix>:<part>:<part>`. Every Redis key goes through here."""
    return ":".join((settings.REDIS_KEY_PREFIX, *map(str, parts)))
