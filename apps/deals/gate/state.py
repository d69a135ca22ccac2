"""A live deal's state in Redis: installing it, keeping its flags in step with PostgreSQL,
stopping sales, dropping it, and the reads the console and the lifecycle need.

The gate fails closed: while a deal's state is missing purchases answer 503 until it has been
rebuilt from PostgreSQL plus the reservations accepted but not yet written (`pending`). The gate
does not read orders itself (dependencies point deals <- orders): whoever rebuilds a state
passes in what PostgreSQL knows (`Holdings`), computed after `pending_snapshot`.
"""

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.errors import ServiceUnavailable

from ..models import Deal
from .client import deal_pipeline, gate_redis
from .keys import deal_keys, live_deals_key
from .reservation import Reservation
from .scripts import epoch_ms, run_script

logger = logging.getLogger(__name__)

REDIS_PIPELINES = ("redis", "redis_async")
REBUILD_LOCK_SECONDS = 10
# A closed deal's tombstone outlives any loader that read the deal before it closed by far.
TOMBSTONE_SECONDS = 7 * 24 * 3600
ROOM_FIGURES_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Holdings:
    """What PostgreSQL (plus the pending snapshot) says a deal has sold, for a rebuild."""

    units: Mapping[str, int] = field(default_factory=dict)  # user_id -> units held
    # "<user_id>:<key>" -> "<order_id>|<request hash>" of written orders sent with a key
    idempotency_keys: Mapping[str, str] = field(default_factory=dict)
    # Orders cancelled recently, whose units `units` leaves out: their releases may still land
    released: Sequence[str] = ()
    accepted: int = 0  # purchases ever accepted: the deal's order rows plus unwritten ones
    # (order_id, user_id, units) of the unwritten reservations `units` counts: load.lua leaves
    # out any released since the pending snapshot was taken
    unwritten: Sequence[tuple[str, str, int]] = ()


def _flags(deal: Deal) -> dict[str, Any]:
    """The operator's part of the state (sync.lua copies it; load.lua installs it), the waiting
    room's settings included (room.py reads them in queue.lua and reserve.lua)."""
    return {
        "version": deal.state_version,
        "starts_at": epoch_ms(deal.starts_at),
        "ends_at": epoch_ms(deal.ends_at),
        "paused": int(deal.paused_at is not None),
        "ended": int(deal.ended_at is not None or deal.closed_at is not None),
        "per_user_limit": deal.per_user_limit,
        "room": int(deal.room_enabled),
        "room_rate": deal.room_rate or settings.WAITING_ROOM_AUTO_RATE,
        "room_admit_ms": deal.room_admission_seconds * 1000,
        "room_overbook": str(deal.room_overbooking),
        "room_prequeue_ms": deal.room_prequeue_seconds * 1000,
        "room_seed": deal.room_seed,
    }


def pending_snapshot(deal_id: UUID | str) -> dict[str, Reservation]:
    """The reservations accepted but not yet written, by order id. A rebuild takes this BEFORE
    reading PostgreSQL, so a reservation the writer commits in between is seen in the database
    and not counted twice. A reservation whose dead-lettering was interrupted before its
    release is here too, parked as well: it still holds its units until the park is finished
    (dead_letter_park_finish), so a rebuild counts it; a writer must skip it
    (dead_letters_among)."""
    raw = gate_redis().hgetall(deal_keys(deal_id).pending)
    return {str(order_id): Reservation.from_json(value) for order_id, value in raw.items()}


def deal_state_load(deal: Deal, *, pending: Mapping[str, Reservation], holdings: Holdings) -> bool:
    """Installs the state of a published, not closed deal unless it is already there (then only
    the flags are synced). Returns True when it was installed.

    `pending` comes from `pending_snapshot` and `holdings` from PostgreSQL read after it;
    `holdings.units` already include the pending reservations. A just-published deal, which has
    sold nothing, passes an empty snapshot and `Holdings()`.
    """
    if deal.published_at is None or deal.closed_at is not None:
        return False
    keys = deal_keys(deal.id)
    state = {
        **_flags(deal),
        "deal_id": str(deal.id),
        "deal_stock": deal.deal_stock,
        "remaining": deal.deal_stock - sum(holdings.units.values()),
        "product_id": str(deal.product_id),
        "product_name": deal.product.name,
        "unit_price": deal.deal_price,
        "loaded_at": epoch_ms(timezone.now()),
    }
    # Keys of written orders and of reservations not yet written, so that a retry after the
    # rebuild still finds its order.
    idem = dict(holdings.idempotency_keys)
    for order_id, r in pending.items():
        if r.idempotency_field:
            idem[r.idempotency_field] = f"{order_id}|{r.request_hash}"
    try:
        # reserve.lua counts up from here; PostgreSQL never holds more rows than this unless
        # the gate lost writes (deal_state_behind). Parked reservations were accepted too: a
        # replay or a discard will write their rows.
        state["accepted"] = holdings.accepted + int(gate_redis().hlen(keys.dead))
        installed = run_script(
            "load",
            keys=[keys.state, keys.users, keys.idem, keys.closed, keys.released],
            args=[
                json.dumps(state),
                json.dumps(dict(holdings.units)),
                json.dumps(idem),
                json.dumps(list(holdings.released)),
                json.dumps([list(r) for r in holdings.unwritten]),
            ],
        )
        if installed == 0:
            deal_state_sync(deal)
        if installed >= 0:  # not for a closed deal (load.lua: -1)
            gate_redis().sadd(live_deals_key(), str(deal.id))
    except redis.RedisError as exc:
        raise ServiceUnavailable("The deal gate is unavailable.") from exc
    if installed == 1:
        logger.info("deal %s state loaded: remaining=%s", deal.id, state["remaining"])
    return installed == 1


def deal_state_behind(deal_id: UUID | str, *, written: int) -> bool:
    """True when PostgreSQL holds more of the deal's orders (`written`, rows of any status)
    than the gate has ever accepted: the gate lost writes (a restore, a failover to a replica
    that had not caught up). Its counters can't be trusted then, so they are dropped
    (deal_state_forget): purchases fail closed until the caller, or the next purchase, rebuilds
    them from PostgreSQL. Purchases the gate accepted after coming back also count up, so this
    catches a gate that came back and stayed quiet; the writers catch the rest when PostgreSQL
    refuses a unit the gate sold."""
    keys = deal_keys(deal_id)
    accepted = gate_redis().hget(keys.state, "accepted")
    if accepted is None or written <= int(accepted):
        return False
    logger.error(
        "deal %s: the gate accepted %s purchases but PostgreSQL has %s orders; rebuilding",
        deal_id, accepted, written,
    )  # fmt: skip
    deal_state_forget(deal_id)
    return True


def deal_state_forget(deal_id: UUID | str) -> None:
    """Drops the deal's counters, held units and idempotency keys (forget.lua): they are proven
    wrong and must be rebuilt from PostgreSQL. The pending copies, the stream and a sales
    stop's mark stay."""
    keys = deal_keys(deal_id)
    run_script("forget", keys=[keys.state, keys.users, keys.idem])


def deal_state_sync(deal: Deal) -> bool:
    """Copies the operator's flags (paused, ended, window, limit) into an existing state, unless
    it holds flags of a newer version of the deal (sync.lua): a caller that read the row before
    an operator changed it can't undo the change. Never creates a partial state. True when
    applied."""
    keys = deal_keys(deal.id)
    flags = _flags(deal)
    version = flags.pop("version")
    return bool(run_script("sync", keys=[keys.state], args=[version, json.dumps(flags)]))


def deal_sales_stop(deal_id: UUID) -> int:
    """Marks the deal ended in Redis and returns how many accepted reservations are not yet
    written (as `deal_backlog` counts them), in one step (stop.lua): once `ended` is set
    reserve.lua accepts nothing more, so a zero here stays zero (a web server whose clock
    read "before the end" can't slip one in). The mark holds even if the state is missing now
    and rebuilt later from an older read of the deal (load.lua keeps it); a closed deal is
    left as the close left it."""
    keys = deal_keys(deal_id)
    return int(run_script("stop", keys=[keys.state, keys.pending, keys.closed, keys.stream]))


def deal_state_close(deal_id: UUID | str) -> None:
    """Drops a closed deal's live state and leaves a tombstone that load.lua refuses to pass
    (its dead letters and counts stay for the operator)."""
    keys = deal_keys(deal_id)
    with deal_pipeline(deal_id) as pipe:
        pipe.set(keys.closed, "1", ex=TOMBSTONE_SECONDS)  # first: a loader racing this finds it
        _queue_unload(pipe, deal_id)
        pipe.execute()
    _live_set_leave(deal_id)


def deal_state_unload(deal_id: UUID | str) -> None:
    """Drops a deal's live state that may be loaded again later (the lab does, for a deal sold
    through a database pipeline)."""
    with deal_pipeline(deal_id) as pipe:
        _queue_unload(pipe, deal_id)
        pipe.execute()
    _live_set_leave(deal_id)


def _queue_unload(pipe: redis.client.Pipeline, deal_id: UUID | str) -> None:
    keys = deal_keys(deal_id)
    pipe.delete(keys.state, keys.users, keys.idem, keys.stream, keys.drain, keys.released,
                keys.queue, keys.tickets, keys.admitted, keys.expiry)  # fmt: skip
    pipe.expire(keys.room, ROOM_FIGURES_TTL_SECONDS)  # the room's figures, for the post-mortem


def _live_set_leave(deal_id: UUID | str) -> None:
    """After the deal's keys are gone: the live set has a slot of its own (on a cluster, maybe
    another server), so it can't be in their transaction. A member left behind by a process
    that died between the two is a deal PostgreSQL has closed: the maintenance beat closes it
    again (orders.services.drain._close_resurrected)."""
    gate_redis().srem(live_deals_key(), str(deal_id))


def deal_state_loaded(deal_id: UUID | str) -> bool:
    return bool(gate_redis().hexists(deal_keys(deal_id).state, "remaining"))


def deal_remaining(deal_ids: Iterable[UUID]) -> dict[UUID, int]:
    """Live remaining units from Redis; ids without state (or Redis down) are left out so the
    caller falls back to PostgreSQL for display. Never used to decide a sale. With a database
    pipeline PostgreSQL is the live counter, so this returns nothing."""
    ids = list(deal_ids)
    if not ids or settings.ORDER_PIPELINE not in REDIS_PIPELINES:
        return {}
    try:
        pipe = gate_redis().pipeline(transaction=False)
        for deal_id in ids:
            pipe.hget(deal_keys(deal_id).state, "remaining")
        values = pipe.execute()
    except redis.RedisError:
        logger.warning("deal_remaining: Redis unavailable, showing database values")
        return {}
    return {deal_id: int(v) for deal_id, v in zip(ids, values, strict=True) if v is not None}


@dataclass(frozen=True)
class Counters:
    """The gate's counters of one deal, as Redis has them now."""

    remaining: int
    users: dict[str, int]  # user_id -> units held


def deal_counters(deal_id: UUID | str) -> Counters | None:
    """None when the deal has no state in Redis."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    pipe.hget(keys.state, "remaining")
    pipe.hgetall(keys.users)
    remaining, users = pipe.execute()
    if remaining is None:
        return None
    return Counters(int(remaining), {user: int(units) for user, units in users.items()})


def deal_state_read(deal_id: UUID | str) -> dict[str, str]:
    """The state hash as Redis has it (empty when not loaded): flags, window, counters."""
    raw = gate_redis().hgetall(deal_keys(deal_id).state)
    return {str(field): str(value) for field, value in raw.items()}


def deal_backlog(deal_id: UUID | str) -> int:
    """Reservations accepted but not yet written to PostgreSQL: the `pending` copies, or the
    stream's entries if it holds more (an async reservation is in both until written, and
    written entries are deleted from the stream). The stream counts on its own because
    `pending` can be lost while the stream still holds the reservations (found by the chaos
    suite): a close that counted `pending` alone returned their units to the product and
    deleted the stream with them."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    pipe.hlen(keys.pending)
    pipe.xlen(keys.stream)
    pending, stream = pipe.execute()
    return max(int(pending), int(stream))


def deal_backlog_key(deal_id: UUID | str) -> str:
    """The key whose HLEN is `deal_backlog` when nothing was lost, for a process outside Django
    that waits for the writer (the load-test runner); it only ever reads it."""
    return deal_keys(deal_id).pending


def live_deal_ids() -> list[str]:
    """Deals whose state is loaded (what the drain and reconcile beats visit)."""
    return sorted(str(deal_id) for deal_id in gate_redis().smembers(live_deals_key()))


def live_deals_reassert(deal_ids: Iterable[UUID | str]) -> list[str]:
    """Puts back into the live set every given deal that still has a state, a backlog or a
    stream in Redis. The set is what the maintenance beat and order lookups visit; a member
    lost to an eviction or a failover would leave that deal's orphans unswept and its pending
    orders unfindable. Returns the ids it put back."""
    ids = [str(deal_id) for deal_id in deal_ids]
    if not ids:
        return []
    client = gate_redis()
    pipe = client.pipeline(transaction=False)
    for deal_id in ids:
        keys = deal_keys(deal_id)
        pipe.exists(keys.state, keys.pending, keys.stream)
    pipe.smembers(live_deals_key())
    *present, live = pipe.execute()
    missing = [d for d, n in zip(ids, present, strict=True) if n and d not in live]
    if missing:
        client.sadd(live_deals_key(), *missing)
        logger.warning("deals %s were missing from the live set; put back", missing)
    return missing


def rebuild_lock(deal_id: UUID | str) -> bool:
    """One request rebuilds a lost deal state; the others answer 503 until it is back."""
    key = deal_keys(deal_id).rebuild
    try:
        return bool(gate_redis().set(key, "1", nx=True, ex=REBUILD_LOCK_SECONDS))
    except redis.RedisError as exc:  # the gate fails closed
        raise ServiceUnavailable("The deal gate is unavailable; retry shortly.") from exc


def rebuild_unlock(deal_id: UUID | str) -> None:
    """Best effort: the lock lapses on its own after REBUILD_LOCK_SECONDS."""
    try:
        gate_redis().delete(deal_keys(deal_id).rebuild)
    except redis.RedisError:
        logger.warning("rebuild lock of deal %s left to expire", deal_id)
