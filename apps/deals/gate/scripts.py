"""The gate's Lua scripts (redis_scripts/*.lua, each documented in its header) and the clock.

Each script is registered once per process with redis-py's `register_script` and run with
`run_script`: EVALSHA on the server that holds its keys (all of one deal's: one slot), with a
transparent reload when the server answers NOSCRIPT (a restarted or failed-over server, a
cluster's new primary). A script that shares the waiting room's steps has room_lib.lua put in
front of its text (LIBS).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from .client import gate_nodes, gate_redis, key_redis, routing_failed

SCRIPT_DIR = Path(__file__).parent / "redis_scripts"
SCRIPT_NAMES = ("reserve", "release", "load", "sync", "replay", "stop", "forget", "queue")
LIBS = {"reserve": ("room_lib",), "queue": ("room_lib",)}


def source(name: str) -> str:
    """A script's text as Redis runs it: its libraries first, then the file."""
    parts = [*LIBS.get(name, ()), name]
    return "\n".join((SCRIPT_DIR / f"{part}.lua").read_text() for part in parts)


@cache
def script(name: str) -> Script:
    """The script's text and SHA; `run_script` picks the server."""
    # Registered on no client: run_script passes the one to use; bytes need none for the SHA.
    return Script(None, source(name).encode())  # type: ignore[arg-type]


def run_script(name: str, *, keys: list[str], args: Sequence[Any] = ()) -> Any:
    """EVALSHA on the server that holds `keys` (a cluster client routes it; NOSCRIPT loads it
    there and retries). A Redis error is raised."""
    return script(name)(keys=keys, args=args, client=gate_redis())


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

    WAITAOF waits for the writes of the connection that sends it, so both go to the server
    that holds the keys (client.key_redis) on one connection. Without replicas WAITAOF rides
    in the script's round trip (appendfsync always fsyncs before the replies go out, so it
    returns at once). With replicas it is a second round trip: sent in the same packet, the
    primary asks the replicas for their offsets before they have fsynced the script's writes,
    and the next acknowledgement comes a second later (Valkey 8.1, measured: ~1,000 ms
    pipelined, ~0.5 ms as its own round trip)."""
    loaded = script(name)
    client = key_redis(keys[0])
    durable, replicas = settings.GATE_DURABLE_ACK, settings.GATE_WAITAOF_REPLICAS
    wait = ("WAITAOF", 1, replicas, settings.GATE_WAITAOF_TIMEOUT_MS)
    pool, connection = client.connection_pool, None
    try:
        connection = pool.get_connection()  # connects: a dead server fails here, nothing sent
        for _ in range(2):
            commands = [("EVALSHA", loaded.sha, len(keys), *keys, *args)]
            if durable and not replicas:
                commands.append(wait)
            replies = _send(client, connection, commands)
            if not isinstance(replies[0], NoScriptError):
                break
            _send(client, connection, [("SCRIPT", "LOAD", loaded.script)])
        if isinstance(replies[0], Exception):
            raise replies[0]
        if durable and replicas:
            replies += _send(client, connection, [wait])
    except redis.RedisError as exc:
        if connection is not None and not isinstance(exc, redis.ResponseError):
            connection.disconnect()  # a reply may be left unread on it
        routing_failed(exc)
        raise
    finally:
        if connection is not None:
            pool.release(connection)
    if not durable:
        return DurableReply(replies[0], durable=True)
    ack = replies[1]
    ok = isinstance(ack, list) and ack[0] >= 1 and ack[1] >= replicas
    return DurableReply(replies[0], durable=ok, ack=ack)


def _send(client: redis.Redis, connection: Any, commands: list[tuple]) -> list[Any]:
    """The commands in one packet on `connection`, their replies in order (an error reply is
    returned, not raised; a connection error is raised)."""
    connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for command in commands:
        try:
            replies.append(client.parse_response(connection, command[0]))
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies


def scripts_preload() -> bool:
    """Loads every script into the gate's server (each primary of a cluster) now (idempotent)
    and says whether all are there. NOSCRIPT reloads a script anyway; loading ahead keeps the
    first purchases at one round trip. Raises redis.RedisError when a server is unreachable."""
    present = True
    for client in gate_nodes():
        shas = [client.script_load(source(name)) for name in SCRIPT_NAMES]
        present = present and all(client.script_exists(*shas))
    return present


def epoch_ms(moment: datetime) -> int:
    """The scripts' clock: epoch milliseconds, always from the caller (web server) side."""
    return int(moment.timestamp() * 1000)
