"""The gate's Lua scripts (redis_scripts/*.lua, each documented in its header) and the clock.

Each script is registered once per process with redis-py's `register_script`: EVALSHA, with a
transparent reload when the server answers NOSCRIPT (a restarted or failed-over Redis). A
script that shares the waiting room's steps has room_lib.lua put in front of its text (LIBS).
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from apps.core.redis import get_redis

SCRIPT_DIR = Path(__file__).parent / "redis_scripts"
SCRIPT_NAMES = ("reserve", "release", "load", "sync", "replay", "stop", "forget", "queue")
LIBS = {"reserve": ("room_lib",), "queue": ("room_lib",)}


def source(name: str) -> str:
    """A script's text as Redis runs it: its libraries first, then the file."""
    parts = [*LIBS.get(name, ()), name]
    return "\n".join((SCRIPT_DIR / f"{part}.lua").read_text() for part in parts)


@cache
def script(name: str) -> Script:
    return get_redis().register_script(source(name))


@dataclass(frozen=True)
class DurableReply:
    reply: Any  # the script's
    durable: bool  # WAITAOF saw its writes fsynced locally and on the replicas asked for
    ack: object = None  # WAITAOF's answer ([local, replicas]) or its error, for the log


def script_durably(name: str, *, keys: list[str], args: list[Any]) -> DurableReply:
    """Runs a script, then WAITAOF 1 <replicas> <timeout>: the reply comes back once the
    script's writes are fsynced to the AOF (and on the replicas), so an answer given after it
    survives a crash of the server or its machine. With GATE_DURABLE_ACK off it is a plain
    EVALSHA reported durable. NOSCRIPT (a restarted or failed-over server) reloads the script
    and retries once; a script error is raised.

    Without replicas WAITAOF rides in the script's round trip (appendfsync always fsyncs before
    the replies go out, so it returns at once). With replicas it is a second round trip: sent in
    the same packet, the primary asks the replicas for their offsets before they have fsynced
    the script's writes, and the next acknowledgement comes a second later (Valkey 8.1,
    measured: ~1,000 ms pipelined, ~0.5 ms as its own round trip)."""
    loaded = script(name)
    client = get_redis()
    durable, replicas = settings.GATE_DURABLE_ACK, settings.GATE_WAITAOF_REPLICAS
    wait = ("WAITAOF", 1, replicas, settings.GATE_WAITAOF_TIMEOUT_MS)
    for _ in range(2):
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(loaded.sha, len(keys), *keys, *args)
        if durable and not replicas:
            pipe.execute_command(*wait)
        replies = pipe.execute(raise_on_error=False)
        if not isinstance(replies[0], NoScriptError):
            break
        client.script_load(loaded.script)
    if isinstance(replies[0], Exception):
        raise replies[0]
    if not durable:
        return DurableReply(replies[0], durable=True)
    if replicas:
        try:
            replies.append(client.execute_command(*wait))
        except redis.ResponseError as exc:
            replies.append(exc)
    ack = replies[1]
    ok = isinstance(ack, list) and ack[0] >= 1 and ack[1] >= replicas
    return DurableReply(replies[0], durable=ok, ack=ack)


def scripts_forget() -> None:
    """Drops the registered scripts, for a process whose Redis client was replaced."""
    script.cache_clear()


def scripts_preload() -> bool:
    """Loads every script into Redis now (idempotent) and says whether all are there. redis-py
    reloads a script on NOSCRIPT anyway; loading ahead keeps the first purchases at one round
    trip. Raises redis.RedisError when Redis is unreachable."""
    client = get_redis()
    shas = [client.script_load(source(name)) for name in SCRIPT_NAMES]
    return all(client.script_exists(*shas))


def epoch_ms(moment: datetime) -> int:
    """The scripts' clock: epoch milliseconds, always from the caller (web server) side."""
    return int(moment.timestamp() * 1000)
