"""Draining a deal's reservation stream into PostgreSQL (the redis_async pipeline).

Consumer group `writers` on each deal's stream. A drain reads batches, writes each batch in one
transaction (writer.reservations_write) and acknowledges only after the commit, so a worker
killed mid-batch leaves its entries pending; `streams_maintain` re-claims entries idle longer
than ORDER_STREAM_RECLAIM_IDLE_MS and dead-letters an entry after ORDER_STREAM_MAX_DELIVERIES
failed deliveries (its units go back to the deal).
"""

import json
import logging
import os
import socket
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.redis import get_redis
from apps.deals import gate
from apps.deals.keys import deal_keys

from ..selectors import orders_existing
from .writer import IdempotencyKeyClash, reservations_write

logger = logging.getLogger(__name__)

GROUP = gate.STREAM_GROUP
BLOCK_MS = 50


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _persist_entries(deal_id: str, entries: list) -> int:
    """Writes a batch; on failure retries entry by entry so one bad entry can't block the rest."""
    if not entries:
        return 0
    stream_ids = [entry_id for entry_id, _ in entries]
    reservations = [json.loads(fields["p"]) for _, fields in entries]
    try:
        reservations_write(deal_id, reservations, stream_ids)
    except Exception:
        logger.exception(
            "batch of %d for deal %s failed; retrying one by one", len(entries), deal_id
        )
        pairs = zip(stream_ids, reservations, strict=True)
        return sum(_persist_one(deal_id, sid, r) for sid, r in pairs)
    return len(entries)


def _persist_one(deal_id: str, stream_id: str, reservation: dict) -> int:
    try:
        reservations_write(deal_id, [reservation], [stream_id])
    except Exception as exc:  # noqa: BLE001 - any failure counts toward the dead-letter limit
        deliveries = gate.stream_deliveries(deal_id, stream_id)
        logger.warning(
            "reservation %s failed (delivery %s): %s", reservation["order_id"], deliveries, exc
        )
        # A key clash won't heal with retries: fail it now so the shopper sees it at once.
        retry = not isinstance(exc, IdempotencyKeyClash)
        if retry and deliveries < settings.ORDER_STREAM_MAX_DELIVERIES:
            return 0
        if orders_existing([reservation["order_id"]]):
            # Written meanwhile (by the sweep): its units are sold, so only forget the copies.
            gate.reservations_done(deal_id, [reservation["order_id"]], [stream_id])
            return 1
        gate.dead_letter(deal_id, stream_id, reservation, reason=f"{exc.__class__.__name__}: {exc}")
        return 0
    return 1


def _read(client, stream: str, consumer: str, *, block: int | None) -> list:
    reply = client.xreadgroup(
        GROUP, consumer, {stream: ">"}, count=settings.ORDER_STREAM_BATCH, block=block
    )
    return reply[0][1] if reply else []


def stream_drain(*, deal_id: str, idle_exit_ms: int = 1000) -> int:
    """Drains until the stream has been quiet for `idle_exit_ms`. Returns entries written.

    Exit protocol: clear the drain flag, then read once more. A purchase that found the flag set
    (and so did not start a drain) appended before that read, so nothing is left behind.
    """
    client = get_redis()
    keys = deal_keys(deal_id)
    gate.ensure_group(deal_id)
    consumer = consumer_name()
    written, quiet_ms = 0, 0
    while True:
        entries = _read(client, keys.stream, consumer, block=BLOCK_MS)
        client.expire(keys.drain, gate.DRAIN_FLAG_TTL_SECONDS)
        if entries:
            written += _persist_entries(deal_id, entries)
            quiet_ms = 0
            if len(entries) < settings.ORDER_STREAM_BATCH:
                # Linger: let the next batch fill up. A transaction (and its WAL flush) per
                # handful of orders costs the worker and PostgreSQL several times more CPU per
                # order than one per few dozen, and that CPU is taken from the web tier during
                # a burst. Confirmation waits at most this long more (the stream is durable).
                time.sleep(settings.ORDER_STREAM_LINGER_MS / 1000)
            continue
        quiet_ms += BLOCK_MS
        if quiet_ms < idle_exit_ms:
            continue
        client.delete(keys.drain)
        entries = _read(client, keys.stream, consumer, block=None)
        if not entries:
            return written
        client.set(keys.drain, "1", nx=True, ex=gate.DRAIN_FLAG_TTL_SECONDS)
        written += _persist_entries(deal_id, entries)
        quiet_ms = 0


def stream_reclaim(*, deal_id: str) -> int:
    """Takes over entries a dead consumer left pending for longer than the reclaim idle time."""
    client = get_redis()
    keys = deal_keys(deal_id)
    gate.ensure_group(deal_id)
    written, start = 0, "0-0"
    while True:
        reply = client.xautoclaim(
            keys.stream,
            GROUP,
            consumer_name(),
            min_idle_time=settings.ORDER_STREAM_RECLAIM_IDLE_MS,
            start_id=start,
            count=settings.ORDER_STREAM_BATCH,
        )
        start, entries = reply[0], [(sid, fields) for sid, fields in reply[1] if fields]
        if entries:
            logger.warning("re-claimed %d stale entries of deal %s", len(entries), deal_id)
            written += _persist_entries(deal_id, entries)
        if start in ("0-0", b"0-0") or not entries:
            return written


def pending_sweep(*, deal_id: str) -> int:
    """Writes reservations that sat in `pending` longer than the sweep age: a `redis`-pipeline
    request whose process died after the Lua step, or an async entry whose writer is stuck.
    Idempotent with the stream writer."""
    cutoff = timezone.now() - timedelta(milliseconds=settings.ORDER_PENDING_SWEEP_AGE_MS)
    stale = [
        r
        for r in gate.pending_reservations(deal_id)
        if datetime.fromisoformat(r["created_at"]) < cutoff
    ]
    if not stale:
        return 0
    logger.warning("sweeping %d orphaned reservations of deal %s", len(stale), deal_id)
    try:
        reservations_write(deal_id, stale)
        return len(stale)
    except Exception:  # noqa: BLE001 - one bad reservation must not hold back the others
        logger.exception("sweep of deal %s failed as a batch; writing one by one", deal_id)
    written = 0
    for reservation in stale:
        try:
            reservations_write(deal_id, [reservation])
            written += 1
        except Exception:  # noqa: BLE001 - stays pending: visible as backlog, retried next beat
            logger.exception("reservation %s could not be swept", reservation["order_id"])
    return written


def streams_maintain() -> dict[str, int]:
    """Beat: for each live deal re-claim stale entries, sweep orphans and make sure a drain runs
    when entries wait undelivered (a kick lost with a dead worker)."""
    from ..tasks import drain_deal_stream_task

    report = {}
    for deal_id in gate.live_deal_ids():
        try:  # one deal's trouble must not stop the maintenance of the others
            reclaimed = stream_reclaim(deal_id=deal_id)
            swept = pending_sweep(deal_id=deal_id)
            if gate.stream_undelivered(deal_id) and gate.drain_flag_take(deal_id):
                drain_deal_stream_task.delay(deal_id)
            report[deal_id] = reclaimed + swept
        except Exception:  # noqa: BLE001
            logger.exception("maintenance of deal %s failed", deal_id)
    return report
