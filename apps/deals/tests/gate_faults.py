"""Faults injected into a deal's gate state, for tests: what an eviction, a crash that lost the
last writes, or a lost release leaves behind. Tests of other apps use these instead of touching
the gate's keys themselves (apps.deals.gate owns them)."""

from uuid import UUID

import redis
from django.conf import settings

from apps.core.redis import get_redis
from apps.deals.gate.keys import deal_keys, live_deals_key


def forget_counters(deal_id: UUID | str) -> None:
    """Redis lost the deal's state, held units and idempotency keys (not its pending copies)."""
    keys = deal_keys(deal_id)
    get_redis().delete(keys.state, keys.users, keys.idem)


def forget_state(deal_id: UUID | str) -> None:
    """Only the state hash is gone."""
    get_redis().delete(deal_keys(deal_id).state)


def set_remaining(deal_id: UUID | str, remaining: int) -> None:
    get_redis().hset(deal_keys(deal_id).state, "remaining", remaining)


def forget_user(deal_id: UUID | str, user_id: UUID | str) -> None:
    get_redis().hdel(deal_keys(deal_id).users, str(user_id))


def is_parked(deal_id: UUID | str, order_id: str) -> bool:
    return bool(get_redis().hexists(deal_keys(deal_id).dead, order_id))


def dead_letter_count(deal_id: UUID | str) -> int:
    return int(get_redis().hlen(deal_keys(deal_id).dead))


def forget_live(deal_id: UUID | str) -> None:
    """The live set lost this deal (an eviction, a failover of the slot it lives on)."""
    get_redis().srem(live_deals_key(), str(deal_id))


def forget_users(deal_id: UUID | str) -> None:
    """The units every shopper holds are gone (the `users` hash alone)."""
    get_redis().delete(deal_keys(deal_id).users)


def forget_idem(deal_id: UUID | str) -> None:
    """The deal's remembered Idempotency-Keys are gone (the `idem` hash alone)."""
    get_redis().delete(deal_keys(deal_id).idem)


def forget_pending(deal_id: UUID | str) -> None:
    """The copies of accepted, unwritten reservations are gone (the `pending` hash alone; the
    stream keeps its entries)."""
    get_redis().delete(deal_keys(deal_id).pending)


def deal_snapshot(deal_id: UUID | str) -> dict:
    """Every key of the deal as a copy of the gate's data taken now would hold it (DUMP), and
    whether the live set lists it."""
    raw = redis.Redis.from_url(settings.REDIS_URL)  # DUMP is binary: no decoding
    names = list(vars(deal_keys(deal_id)).values())
    return {
        "keys": {name: raw.dump(name) for name in names},
        "live": bool(raw.sismember(live_deals_key(), str(deal_id))),
    }


def deal_snapshot_restore(deal_id: UUID | str, snapshot: dict) -> None:
    """The gate came back from that copy, for this deal: keys written since are gone (the
    closed tombstone among them), keys dropped since are back."""
    raw = redis.Redis.from_url(settings.REDIS_URL)
    for name, dumped in snapshot["keys"].items():
        raw.delete(name)
        if dumped is not None:
            raw.restore(name, 0, dumped)
    if snapshot["live"]:
        raw.sadd(live_deals_key(), str(deal_id))
    else:
        raw.srem(live_deals_key(), str(deal_id))


# What the chaos suite (apps/lab/chaos) may lose, by the name it prints.
LOSABLE_KEYS = {
    "users": forget_users,
    "idem": forget_idem,
    "pending": forget_pending,
    "deals:live": forget_live,
}
