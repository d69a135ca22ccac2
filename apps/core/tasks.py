"""Core Celery tasks."""

import time

from celery import shared_task

from .redis import get_redis, key

BEAT_HEARTBEAT_TTL = 600


@shared_task(ignore_result=True)
def beat_heartbeat_task() -> None:
    """Scheduled by beat only: a fresh timestamp proves beat is ticking (and a worker consumes),
    which the go-live preflight checks (apps.deals.preflight)."""
    get_redis().set(key("beat", "heartbeat"), f"{time.time():.3f}", ex=BEAT_HEARTBEAT_TTL)
