"""The deal's reservation stream (redis_async) as the batch writer sees it: a consumer group
`writers`, a kick-once drain flag, acknowledgement after the commit, re-claiming what a dead
consumer left, and counting deliveries toward the dead-letter limit.

The writer (apps.orders.services.drain) owns the loop and the database; this module owns every
command on the stream and the drain flag, and drops `pending` copies once they are written.
"""

import os
import socket
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import redis
from django.conf import settings

from .client import gate_redis
from .keys import deal_keys
from .reservation import Reservation

STREAM_GROUP = "writers"
# A running drain refreshes its flag every loop; a dead one's flag lapses within seconds, after
# which the maintenance beat starts a new drain.
DRAIN_FLAG_TTL_SECONDS = 5


@dataclass(frozen=True)
class StreamEntry:
    stream_id: str
    reservation: Reservation
    traceparent: str | None = None  # the purchase's trace (apps.core.tracing); None: untraced


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def stream_group_ensure(deal_id: UUID | str) -> None:
    try:
        gate_redis().xgroup_create(deal_keys(deal_id).stream, STREAM_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _entries(raw: list) -> list[StreamEntry]:
    # An entry deleted after it was delivered comes back from XAUTOCLAIM with no fields.
    return [
        StreamEntry(sid, Reservation.from_json(fields["p"]), fields.get("t"))
        for sid, fields in raw
        if fields
    ]


def stream_read(deal_id: UUID | str, *, block_ms: int | None) -> list[StreamEntry]:
    """Up to ORDER_STREAM_BATCH entries no consumer has read yet; waits up to `block_ms`
    (None: do not wait)."""
    reply: Any = gate_redis().xreadgroup(  # decoded replies: redis-py's types say bytes | str
        STREAM_GROUP,
        consumer_name(),
        {deal_keys(deal_id).stream: ">"},
        count=settings.ORDER_STREAM_BATCH,
        block=block_ms,
    )
    return _entries(reply[0][1]) if reply else []


def stream_claim_stale(deal_id: UUID | str, *, start: str) -> tuple[str | None, list[StreamEntry]]:
    """Takes over entries delivered to a consumer that has not acknowledged them for
    ORDER_STREAM_RECLAIM_IDLE_MS. Returns (where to continue, or None when done; the entries)."""
    next_start, raw = gate_redis().xautoclaim(
        deal_keys(deal_id).stream,
        STREAM_GROUP,
        consumer_name(),
        min_idle_time=settings.ORDER_STREAM_RECLAIM_IDLE_MS,
        start_id=start,
        count=settings.ORDER_STREAM_BATCH,
    )[:2]
    entries = _entries(raw)
    return (None if next_start == "0-0" or not entries else next_start), entries


def reservations_done(
    deal_id: UUID | str, order_ids: list[str], stream_ids: list[str] | None = None
) -> None:
    """After the commit: forget the pending copies and acknowledge + delete the stream entries."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    if order_ids:
        pipe.hdel(keys.pending, *order_ids)
    if stream_ids:
        pipe.xack(keys.stream, STREAM_GROUP, *stream_ids)
        pipe.xdel(keys.stream, *stream_ids)
    pipe.execute()


def stream_deliveries(deal_id: UUID | str, stream_id: str) -> int:
    """How often the entry was handed to a consumer (it counts toward the dead-letter limit)."""
    rows: Any = gate_redis().xpending_range(
        deal_keys(deal_id).stream, STREAM_GROUP, min=stream_id, max=stream_id, count=1
    )
    return int(rows[0]["times_delivered"]) if rows else 0


def stream_held(deal_id: UUID | str) -> dict[str, int]:
    """Entries each consumer (stream.consumer_name) has read and not acknowledged yet."""
    summary: Any = gate_redis().xpending(deal_keys(deal_id).stream, STREAM_GROUP)
    return {str(c["name"]): int(c["pending"]) for c in summary["consumers"]}


def stream_undelivered(deal_id: UUID | str) -> int:
    """Entries no consumer has read yet (entries are deleted once written)."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    pipe.xlen(keys.stream)
    pipe.xpending(keys.stream, STREAM_GROUP)
    length, summary = pipe.execute()
    return max(0, length - summary["pending"])


def drain_flag_take(deal_id: UUID | str) -> bool:
    """True for the one caller that must start a drain (reserve.lua takes it the same way)."""
    key = deal_keys(deal_id).drain
    return bool(gate_redis().set(key, "1", nx=True, ex=DRAIN_FLAG_TTL_SECONDS))


def drain_flag_refresh(deal_id: UUID | str) -> None:
    gate_redis().expire(deal_keys(deal_id).drain, DRAIN_FLAG_TTL_SECONDS)


def drain_flag_clear(deal_id: UUID | str) -> None:
    gate_redis().delete(deal_keys(deal_id).drain)
