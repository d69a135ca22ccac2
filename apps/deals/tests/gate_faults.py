"""Faults injected into a deal's gate state, for tests: what an eviction, a crash that lost the
last writes, or a lost release leaves behind. Tests of other apps use these instead of touching
the gate's keys themselves (apps.deals.gate owns them)."""

from uuid import UUID

from apps.core.redis import get_redis
from apps.deals.gate.keys import deal_keys, idempotency_claim_key, live_deals_key


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


def forget_idempotency_claim(user_id: UUID | str, idempotency_key: str) -> None:
    """Redis lost a shopper's Idempotency-Key claim (or its TTL ran out)."""
    get_redis().delete(idempotency_claim_key(user_id, idempotency_key))
