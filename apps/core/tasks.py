"""Core Celery tasks."""

import time

from celery import shared_task

from .redis import get_redis, key

BEAT_HEARTBEAT_TTL = 600
HEARTBEAT_KEY = ("beat", "heartbeat")


@shared_task(ignore_result=True)
def beat_heartbeat_task() -> None:
    """Scheduled by beat only: a fresh timestamp proves beat is ticking (and a worker consumes),
    which the go-live preflight checks (apps.deals.preflight)."""
    get_redis().set(key(*HEARTBEAT_KEY), f"{time.time():.3f}", ex=BEAT_HEARTBEAT_TTL)


def beat_heartbeat_age() -> float | None:
    """Seconds since the last heartbeat; None when there is none (beat or every worker is down,
    or it is older than BEAT_HEARTBEAT_TTL). Raises redis.RedisError when Redis is down."""
    last = get_redis().get(key(*HEARTBEAT_KEY))
    return None if last is None else time.time() - float(last)
