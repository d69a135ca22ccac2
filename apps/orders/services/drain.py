"""Draining a deal's reservation stream into PostgreSQL (the redis_async pipeline).

A drain reads batches from the deal's stream (apps.deals.gate.stream), writes each batch in
one transaction (writer.reservations_write) and acknowledges only after the commit, so a worker
killed mid-batch leaves its entries pending; `streams_maintain` re-claims entries idle longer
than ORDER_STREAM_RECLAIM_IDLE_MS and dead-letters an entry after ORDER_STREAM_MAX_DELIVERIES
failed deliveries (its units go back to the deal).
"""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core import tracing
from apps.deals import gate
from apps.deals.gate import StreamEntry
from apps.deals.models import Deal

from ..selectors import orders_existing
from ..tasks import drain_deal_stream_task
from .gate_state import deal_state_rebuild, deal_state_rebuild_if_behind
from .writer import (
    DealCounterMismatch,
    IdempotencyKeyClash,
    PerUserLimitExceeded,
    ShopperGone,
    WriteRefused,
    failure_reason,
    reservations_write,
)

logger = logging.getLogger(__name__)

BLOCK_MS = 50


def _persist_entries(deal_id: str, entries: list[StreamEntry]) -> int:
    """Writes a batch; on failure retries entry by entry so one bad entry can't block the rest.
    Traced as one batch joined to each purchase's trace (apps.core.tracing.drain_span)."""
    if not entries:
        return 0
    with tracing.drain_span(deal_id, [e.traceparent for e in entries]):
        return _persist_batch(deal_id, entries)


def _persist_batch(deal_id: str, entries: list[StreamEntry]) -> int:
    ids = [e.reservation.order_id for e in entries]
    if parked := gate.dead_letters_among(deal_id, ids):  # parked by the sweep meanwhile
        gate.reservations_done(
            deal_id, [], [e.stream_id for e in entries if e.reservation.order_id in parked]
        )
        entries = [e for e in entries if e.reservation.order_id not in parked]
        if not entries:
            return 0
    try:
        reservations_write(
            deal_id, [e.reservation for e in entries], [e.stream_id for e in entries]
        )
    except Exception:
        logger.exception(
            "batch of %d for deal %s failed; retrying one by one", len(entries), deal_id
        )
        return sum(_persist_one(deal_id, entry) for entry in entries)
    return len(entries)


def _persist_one(deal_id: str, entry: StreamEntry) -> int:
    reservation = entry.reservation
    try:
        reservations_write(deal_id, [reservation], [entry.stream_id])
    except Exception as exc:  # noqa: BLE001 - any failure counts toward the dead-letter limit
        deliveries = gate.stream_deliveries(deal_id, entry.stream_id)
        logger.warning(
            "reservation %s failed (delivery %s): %s", reservation.order_id, deliveries, exc
        )
        if isinstance(exc, DealCounterMismatch | PerUserLimitExceeded):
            deal_state_rebuild(deal_id)  # the gate's counters are proven wrong: rebuild now
        # A key clash, a limit, a deleted shopper or units PostgreSQL does not have won't heal
        # with retries: fail it now (its units go back to the gate).
        final = IdempotencyKeyClash | PerUserLimitExceeded | ShopperGone | DealCounterMismatch
        retry = not isinstance(exc, final)
        if retry and deliveries < settings.ORDER_STREAM_MAX_DELIVERIES:
            return 0
        if orders_existing([reservation.order_id]):
            # Written meanwhile (by the sweep): its units are sold, so only forget the copies.
            gate.reservations_done(deal_id, [reservation.order_id], [entry.stream_id])
            return 1
        gate.dead_letter_park(
            deal_id,
            reservation,
            reason=failure_reason(exc),
            stream_id=entry.stream_id,
        )
        return 0
    return 1


def stream_drain(*, deal_id: str, idle_exit_ms: int = 1000) -> int:
    """Drains until the stream has been quiet for `idle_exit_ms`. Returns entries written.

    Exit protocol: clear the drain flag, then read once more. A purchase that found the flag set
    (and so did not start a drain) appended before that read, so nothing is left behind.
    """
    gate.stream_group_ensure(deal_id)
    written, quiet_ms = 0, 0
    while True:
        entries = gate.stream_read(deal_id, block_ms=BLOCK_MS)
        gate.drain_flag_refresh(deal_id)
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
        gate.drain_flag_clear(deal_id)
        entries = gate.stream_read(deal_id, block_ms=None)
        if not entries:
            if written:  # one line per drain, which runs from a burst's first purchase to its end
                plural = "" if written == 1 else "s"
                logger.info("wrote %d order%s of deal %s", written, plural, deal_id)
            return written
        gate.drain_flag_take(deal_id)
        written += _persist_entries(deal_id, entries)
        quiet_ms = 0


def stream_reclaim(*, deal_id: str) -> int:
    """Takes over entries a dead consumer left pending for longer than the reclaim idle time."""
    gate.stream_group_ensure(deal_id)
    written, start = 0, "0-0"
    while True:
        next_start, entries = gate.stream_claim_stale(deal_id, start=start)
        if entries:
            logger.warning("re-claimed %d stale entries of deal %s", len(entries), deal_id)
            written += _persist_entries(deal_id, entries)
        if next_start is None:
            return written
        start = next_start


def pending_sweep(*, deal_id: str) -> int:
    """Writes reservations that sat in `pending` longer than the sweep age: a `redis`-pipeline
    request whose process died after the Lua step, or an async entry whose writer is stuck.
    Idempotent with the stream writer. One PostgreSQL refuses for good is dead-lettered (its
    units go back, and its stream copy, if any, is then skipped): left pending it would keep
    the deal from ever closing. One already parked (its dead-lettering was interrupted before
    the release) is neither written nor parked again: its park is finished."""
    cutoff = timezone.now() - timedelta(milliseconds=settings.ORDER_PENDING_SWEEP_AGE_MS)
    stale = [r for r in gate.pending_snapshot(deal_id).values() if r.accepted_at < cutoff]
    if not stale:
        return 0
    if parked := gate.dead_letters_among(deal_id, [r.order_id for r in stale]):
        for reservation in stale:
            if reservation.order_id in parked:
                gate.dead_letter_park_finish(deal_id, reservation)
        stale = [r for r in stale if r.order_id not in parked]
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
        except WriteRefused as exc:  # won't heal: park it (units back) so the deal can close
            gate.dead_letter_park(deal_id, reservation, reason=failure_reason(exc))
        except Exception:  # noqa: BLE001 - stays pending: visible as backlog, retried next beat
            logger.exception("reservation %s could not be swept", reservation.order_id)
    return written


def streams_maintain() -> dict[str, int]:
    """Beat: for each live deal re-claim stale entries, sweep orphans and make sure a drain runs
    when entries wait undelivered (a kick lost with a dead worker). Deals the live set lost
    are put back first."""
    gate.live_deals_reassert(Deal.objects.published_unclosed().values_list("id", flat=True))
    report = {}
    live = gate.live_deal_ids()
    closed = {
        str(deal_id)
        for deal_id in Deal.objects.filter(pk__in=live, closed_at__isnull=False).values_list(
            "id", flat=True
        )
    }
    for deal_id in live:
        try:  # one deal's trouble must not stop the maintenance of the others
            if deal_id in closed:
                gate.deal_sales_stop(uuid.UUID(deal_id))  # see _close_resurrected
            else:
                deal_state_rebuild_if_behind(deal_id)
            reclaimed = stream_reclaim(deal_id=deal_id)
            swept = pending_sweep(deal_id=deal_id)
            if gate.stream_undelivered(deal_id) and gate.drain_flag_take(deal_id):
                drain_deal_stream_task.delay(deal_id)
            if deal_id in closed:
                _close_resurrected(deal_id)
            report[deal_id] = reclaimed + swept
        except Exception:  # noqa: BLE001
            logger.exception("maintenance of deal %s failed", deal_id)
    return report


def _close_resurrected(deal_id: str) -> None:
    """A deal PostgreSQL has closed is live in the gate again: the gate came back from a copy
    taken before the close (a restore, a failover to a lagging replica), without the closed
    tombstone. Its sales were stopped above (nothing accepted for a deal whose units went back
    to the product); its restored backlog is resolved here (written again, which is
    idempotent, or parked), then its state is dropped and the tombstone set again, as
    deal_close left it."""
    if gate.deal_backlog(deal_id):
        stream_drain(deal_id=deal_id, idle_exit_ms=0)
    if gate.deal_backlog(deal_id) == 0:
        if gate.deal_state_loaded(deal_id):
            logger.error("deal %s is closed but was live in the gate again; closing it there",
                         deal_id)  # fmt: skip
        else:  # a close interrupted between its transaction and the live set (state.py)
            logger.info("deal %s is closed; its live-set entry outlived the close", deal_id)
        gate.deal_state_close(deal_id)
