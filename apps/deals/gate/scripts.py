"""The gate's Lua scripts (redis_scripts/*.lua, each documented in its header) and the clock.

Each script is registered once per process with redis-py's `register_script`: EVALSHA, with a
transparent reload when the server answers NOSCRIPT (a restarted or failed-over Redis).
"""

from datetime import datetime
from functools import cache
from pathlib import Path

from redis.commands.core import Script

from apps.core.redis import get_redis

SCRIPT_DIR = Path(__file__).parent / "redis_scripts"
SCRIPT_NAMES = ("reserve", "release", "load", "sync", "replay")


@cache
def script(name: str) -> Script:
    return get_redis().register_script((SCRIPT_DIR / f"{name}.lua").read_text())


def scripts_forget() -> None:
    """Drops the registered scripts, for a process whose Redis client was replaced."""
    script.cache_clear()


def scripts_preload() -> bool:
    """Loads every script into Redis now (idempotent) and says whether all are there. redis-py
    reloads a script on NOSCRIPT anyway; loading ahead keeps the first purchases at one round
    trip. Raises redis.RedisError when Redis is unreachable."""
    client = get_redis()
    shas = [client.script_load((SCRIPT_DIR / f"{name}.lua").read_text()) for name in SCRIPT_NAMES]
    return all(client.script_exists(*shas))


def epoch_ms(moment: datetime) -> int:
    """The scripts' clock: epoch milliseconds, always from the caller (web server) side."""
    return int(moment.timestamp() * 1000)
