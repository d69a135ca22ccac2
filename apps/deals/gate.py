"""The deal gate: a live deal's state in Redis and the atomic reservation on it.

Redis is the fast gate while a deal is live; PostgreSQL is the record. The gate fails closed:
when Redis is unreachable or a deal's state is missing, purchases get 503 (never a fallback that
could oversell) until `deal_state_load` has rebuilt the state from PostgreSQL plus the
reservations accepted but not yet written (the `pending` hash, kept durable by AOF).

Public functions (other apps call only these):
- deal_state_load(deal)      install a published deal's state (rebuilding if Redis lost it);
                             keeps the live counters when the state is already there.
- deal_state_sync(deal)      copy the operator flags (paused/ended/window) into Redis.
- deal_state_unload(deal_id) drop a closed deal's state.
- deal_remaining(deal_ids)   live remaining units for deals whose state is in Redis.
- deal_backlog(deal_id)      reservations accepted but not yet written to PostgreSQL.
- deal_reserve(...)          run reserve.lua; deal_release(...) runs release.lua.
"""

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.errors import ServiceUnavailable
from apps.core.redis import get_redis

from .keys import deal_keys, deal_rate_key, live_deals_key, order_failed_key
from .models import Deal
from .stats import OUTCOMES_TTL_SECONDS, RATE_TTL_SECONDS

logger = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent / "redis_scripts"
# A running drain refreshes its flag every loop; a dead one's flag lapses within seconds, after
# which the maintenance beat starts a new drain.
DRAIN_FLAG_TTL_SECONDS = 5
FAILED_POINTER_TTL = 30 * 24 * 3600
STREAM_GROUP = "writers"
REDIS_PIPELINES = ("redis", "redis_async")

# Units already held per user, for a rebuild: {user_id: units}, from orders in PostgreSQL plus
# the given not-yet-written reservations. The orders app registers it (dependencies point
# deals <- orders, so the gate asks through this hook instead of importing orders).
HoldingsSource = Callable[[Deal, Mapping[str, dict]], dict[str, int]]
_holdings_source: HoldingsSource | None = None


def register_holdings_source(source: HoldingsSource) -> None:
    global _holdings_source
    _holdings_source = source


# Idempotency keys of the deal's written orders, {"<user_id>:<key>": "<order_id>|<hash>"}, so a
# rebuilt state still answers a retry with the original order (also registered by orders).
KeysSource = Callable[[Deal], dict[str, str]]
_keys_source: KeysSource | None = None


def register_keys_source(source: KeysSource) -> None:
    global _keys_source
    _keys_source = source


@cache
def _script(name: str):
    """EVALSHA with a transparent reload on NOSCRIPT (redis-py's Script object)."""
    return get_redis().register_script((SCRIPTS / f"{name}.lua").read_text())


def _ms(dt) -> int:
    return int(dt.timestamp() * 1000)


def _flags(deal: Deal) -> dict[str, Any]:
    return {
        "starts_at": _ms(deal.starts_at),
        "ends_at": _ms(deal.ends_at),
        "paused": int(deal.paused_at is not None),
        "ended": int(deal.ended_at is not None or deal.closed_at is not None),
        "per_user_limit": deal.per_user_limit,
    }


def deal_state_load(deal: Deal) -> bool:
    """Installs the state of a published, not yet closed deal. Returns True if it was (re)built,
    False if it was already there (then only the flags are synced).

    Rebuild order matters: snapshot the pending reservations first, then read PostgreSQL, so a
    reservation the writer commits in between is seen in the database and not counted twice.
    """
    if deal.published_at is None or deal.closed_at is not None:
        return False
    keys = deal_keys(deal.id)
    client = get_redis()
    try:
        if client.hexists(keys.state, "remaining"):
            deal_state_sync(deal)
            return False
        pending = {oid: json.loads(p) for oid, p in client.hgetall(keys.pending).items()}
        held = _holdings_source(deal, pending) if _holdings_source else {}
        state = {
            **_flags(deal),
            "deal_id": str(deal.id),
            "deal_stock": deal.deal_stock,
            "remaining": deal.deal_stock - sum(held.values()),
            "product_id": str(deal.product_id),
            "product_name": deal.product.name,
            "unit_price": deal.deal_price,
            "loaded_at": _ms(timezone.now()),
        }
        # Keys of written orders and of reservations not yet written, so that a retry after
        # the rebuild still finds its order.
        idem = _keys_source(deal) if _keys_source else {}
        idem |= {
            f"{r['user_id']}:{r['idempotency_key']}": f"{oid}|{r.get('request_hash', '')}"
            for oid, r in pending.items()
            if r.get("idempotency_key")
        }
        installed = _script("load")(
            keys=[keys.state, keys.users, keys.idem],
            args=[json.dumps(state), json.dumps(held), json.dumps(idem)],
        )
        client.sadd(live_deals_key(), str(deal.id))
    except redis.RedisError as exc:
        raise ServiceUnavailable("The deal gate is unavailable.") from exc
    if installed:
        logger.info("deal %s state loaded: remaining=%s", deal.id, state["remaining"])
    return bool(installed)


def deal_state_sync(deal: Deal) -> None:
    """Copies flags into an existing state; never creates a partial state."""
    keys = deal_keys(deal.id)
    client = get_redis()
    if client.hexists(keys.state, "remaining"):
        client.hset(keys.state, mapping=_flags(deal))


def deal_sales_stop(deal_id: UUID) -> int:
    """Marks the deal ended in Redis, then returns how many accepted reservations are not yet
    written. In that order: once `ended` is set reserve.lua accepts nothing more, so a zero
    here stays zero (a web server whose clock read "before the end" can't slip one in)."""
    keys = deal_keys(deal_id)
    client = get_redis()
    if client.hexists(keys.state, "remaining"):
        client.hset(keys.state, "ended", 1)
    return int(client.hlen(keys.pending))


def deal_state_unload(deal_id: UUID) -> None:
    keys = deal_keys(deal_id)
    client = get_redis()
    client.delete(keys.state, keys.users, keys.idem, keys.stream, keys.drain, keys.released)
    client.srem(live_deals_key(), str(deal_id))


def deal_state_loaded(deal_id: UUID) -> bool:
    return bool(get_redis().hexists(deal_keys(deal_id).state, "remaining"))


def deal_remaining(deal_ids: Iterable[UUID]) -> dict[UUID, int]:
    """Live remaining units from Redis; ids without state (or Redis down) are left out so the
    caller falls back to PostgreSQL for display. Never used to decide a sale. With a database
    pipeline PostgreSQL is the live counter, so this returns nothing."""
    ids = list(deal_ids)
    if not ids or settings.ORDER_PIPELINE not in REDIS_PIPELINES:
        return {}
    try:
        pipe = get_redis().pipeline(transaction=False)
        for deal_id in ids:
            pipe.hget(deal_keys(deal_id).state, "remaining")
        values = pipe.execute()
    except redis.RedisError:
        logger.warning("deal_remaining: Redis unavailable, showing database values")
        return {}
    return {deal_id: int(v) for deal_id, v in zip(ids, values, strict=True) if v is not None}


def deal_backlog(deal_id: UUID) -> int:
    return int(get_redis().hlen(deal_keys(deal_id).pending))


def live_deal_ids() -> list[str]:
    return sorted(get_redis().smembers(live_deals_key()))


@dataclass(frozen=True)
class ReserveResult:
    outcome: str  # see reserve.lua
    order_id: str | None = None
    remaining: int | None = None
    kick: bool = False
    reservation: dict | None = None
    held: int | None = None
    limit: int | None = None


def deal_reserve(
    *,
    deal_id: UUID,
    product_id: UUID,
    user_id: UUID,
    quantity: int,
    order_id: UUID,
    idempotency_key: str | None,
    request_hash: str,
    reservation: dict,
    mode: str,
) -> ReserveResult:
    """One round trip: EVALSHA reserve.lua (reloaded transparently after NOSCRIPT), which also
    counts the answer for the console (apps.deals.stats). Redis errors become 503: the gate
    fails closed."""
    keys = deal_keys(deal_id)
    now_ms = _ms(timezone.now())
    try:
        reply = _script("reserve")(
            keys=[
                keys.state,
                keys.users,
                keys.idem,
                keys.pending,
                keys.stream,
                keys.drain,
                deal_rate_key(deal_id, now_ms // 60_000),
                keys.outcomes,
            ],  # fmt: skip
            args=[
                str(user_id),
                quantity,
                idempotency_key or "",
                request_hash,
                str(order_id),
                now_ms,
                json.dumps(reservation, separators=(",", ":")),
                mode,
                DRAIN_FLAG_TTL_SECONDS,
                str(product_id),
                RATE_TTL_SECONDS,
                OUTCOMES_TTL_SECONDS,
            ],  # fmt: skip
        )
    except redis.RedisError as exc:
        logger.warning("deal gate unavailable for deal %s: %s", deal_id, exc)
        raise ServiceUnavailable("The deal gate is unavailable; retry shortly.") from exc
    outcome = reply[0]
    if outcome == "OK":
        return ReserveResult(
            outcome, reply[1], int(reply[2]), bool(int(reply[3])), json.loads(reply[4])
        )
    if outcome in ("DUPLICATE", "KEY_REUSED"):
        return ReserveResult(outcome, order_id=reply[1])
    if outcome == "INSUFFICIENT":
        return ReserveResult(outcome, remaining=int(reply[1]))
    if outcome == "LIMIT":
        return ReserveResult(outcome, held=int(reply[1]), limit=int(reply[2]))
    return ReserveResult(outcome)


def deal_release(*, deal_id: UUID, user_id: UUID, quantity: int, order_id: UUID) -> bool:
    """Gives units back to a live deal in Redis. False when the deal has no state there."""
    keys = deal_keys(deal_id)
    reply = _script("release")(
        keys=[keys.state, keys.users, keys.pending, keys.released],
        args=[str(user_id), quantity, str(order_id)],
    )
    return reply[0] in ("OK", "ALREADY")


def reservation_lookup(order_id: UUID | str) -> tuple[str, dict] | None:
    """A reservation not yet written to PostgreSQL, or one dead-lettered:
    ("pending" | "failed", reservation). None when Redis knows nothing of it.

    The purchase itself records no order -> deal pointer (that would cost every purchase a
    write); instead this looks in the pending hashes of the live deals, which are few, and
    follows the pointer `dead_letter` leaves for failed ones. Two round trips, off the hot path.
    """
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.smembers(live_deals_key())
    pipe.get(order_failed_key(order_id))
    live, failed_deal = pipe.execute()
    deal_ids = sorted(live)
    pipe = client.pipeline(transaction=False)
    for deal_id in deal_ids:
        pipe.hget(deal_keys(deal_id).pending, str(order_id))
    if failed_deal:
        pipe.hget(deal_keys(failed_deal).dead, str(order_id))
    found = pipe.execute()
    for value in found[: len(deal_ids)]:
        if value:
            return "pending", json.loads(value)
    if failed_deal and found[-1]:
        return "failed", json.loads(found[-1])
    return None


# --- writer side: acknowledging, dead-lettering, maintenance -----------------------------------


def ensure_group(deal_id: UUID | str) -> None:
    try:
        get_redis().xgroup_create(deal_keys(deal_id).stream, STREAM_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def reservations_done(
    deal_id: UUID | str, order_ids: list[str], stream_ids: list[str] | None = None
) -> None:
    """After the commit: forget the pending copies and acknowledge + delete the stream entries."""
    keys = deal_keys(deal_id)
    pipe = get_redis().pipeline(transaction=False)
    if order_ids:
        pipe.hdel(keys.pending, *order_ids)
    if stream_ids:
        pipe.xack(keys.stream, STREAM_GROUP, *stream_ids)
        pipe.xdel(keys.stream, *stream_ids)
    pipe.execute()


def stream_deliveries(deal_id: UUID | str, stream_id: str) -> int:
    rows = get_redis().xpending_range(
        deal_keys(deal_id).stream, STREAM_GROUP, min=stream_id, max=stream_id, count=1
    )
    return rows[0]["times_delivered"] if rows else 0


def dead_letter(deal_id: UUID | str, stream_id: str | None, reservation: dict, *, reason: str):
    """Parks a reservation that can't be written, returns its units to the deal, and acks it.
    GET /orders/{id} then shows it `failed` with the reason; the operator can replay it."""
    keys = deal_keys(deal_id)
    parked = {
        **reservation,
        "failure_reason": reason[:500],
        "failed_at": timezone.now().isoformat(),
    }
    client = get_redis()
    client.hset(keys.dead, reservation["order_id"], json.dumps(parked))
    client.set(order_failed_key(reservation["order_id"]), str(deal_id), ex=FAILED_POINTER_TTL)
    deal_release(
        deal_id=deal_id,
        user_id=reservation["user_id"],
        quantity=reservation["quantity"],
        order_id=reservation["order_id"],
    )
    if stream_id:
        reservations_done(deal_id, [], [stream_id])
    logger.error("reservation %s dead-lettered: %s", reservation["order_id"], reason)


def pending_reservations(deal_id: UUID | str) -> list[dict]:
    return [json.loads(v) for v in get_redis().hvals(deal_keys(deal_id).pending)]


def stream_undelivered(deal_id: UUID | str) -> int:
    """Entries no consumer has read yet (entries are deleted once written)."""
    keys = deal_keys(deal_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.xlen(keys.stream)
    pipe.xpending(keys.stream, STREAM_GROUP)
    length, summary = pipe.execute()
    return max(0, length - summary["pending"])


def drain_flag_take(deal_id: UUID | str) -> bool:
    return bool(get_redis().set(deal_keys(deal_id).drain, "1", nx=True, ex=DRAIN_FLAG_TTL_SECONDS))


def rebuild_lock(deal_id: UUID | str) -> bool:
    """One request rebuilds a lost deal state; the others answer 503 until it is back."""
    return bool(get_redis().set(deal_keys(deal_id).rebuild, "1", nx=True, ex=10))


def rebuild_unlock(deal_id: UUID | str) -> None:
    get_redis().delete(deal_keys(deal_id).rebuild)
