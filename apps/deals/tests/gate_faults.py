"""Faults injected into a deal's gate state, for tests: what an eviction, a crash that lost the
last writes, or a lost release leaves behind. Tests of other apps use these instead of touching
the gate's keys themselves (apps.deals.gate owns them)."""

from collections.abc import Sequence
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.deals.gate.client import gate_redis, key_redis
from apps.deals.gate.keys import (
    deal_keys,
    deal_rate_key,
    idempotency_claim_key,
    live_deals_key,
    order_failed_key,
)
from apps.deals.gate.reservation import Reservation
from apps.deals.gate.scripts import epoch_ms, run_script, script
from apps.deals.gate.stats import OUTCOMES_TTL_SECONDS, RATE_TTL_SECONDS
from apps.deals.gate.stream import DRAIN_FLAG_TTL_SECONDS


def forget_counters(deal_id: UUID | str) -> None:
    """Redis lost the deal's state, held units and idempotency keys (not its pending copies)."""
    keys = deal_keys(deal_id)
    gate_redis().delete(keys.state, keys.users, keys.idem)


def forget_state(deal_id: UUID | str) -> None:
    """Only the state hash is gone."""
    gate_redis().delete(deal_keys(deal_id).state)


def set_remaining(deal_id: UUID | str, remaining: int) -> None:
    gate_redis().hset(deal_keys(deal_id).state, "remaining", remaining)


def forget_user(deal_id: UUID | str, user_id: UUID | str) -> None:
    gate_redis().hdel(deal_keys(deal_id).users, str(user_id))


def is_parked(deal_id: UUID | str, order_id: str) -> bool:
    return bool(gate_redis().hexists(deal_keys(deal_id).dead, order_id))


def dead_letter_count(deal_id: UUID | str) -> int:
    return int(gate_redis().hlen(deal_keys(deal_id).dead))


def close_interrupted_before_the_live_set(deal_id: UUID | str) -> None:
    """A close whose process died between its transaction and leaving the live set (the live
    set has a slot of its own, state.py): the deal is still a member, with nothing behind it."""
    gate_redis().sadd(live_deals_key(), str(deal_id))


def forget_live(deal_id: UUID | str) -> None:
    """The live set lost this deal (an eviction, a failover of the slot it lives on)."""
    gate_redis().srem(live_deals_key(), str(deal_id))


def forget_users(deal_id: UUID | str) -> None:
    """The units every shopper holds are gone (the `users` hash alone)."""
    gate_redis().delete(deal_keys(deal_id).users)


def forget_idem(deal_id: UUID | str) -> None:
    """The deal's remembered Idempotency-Keys are gone (the `idem` hash alone)."""
    gate_redis().delete(deal_keys(deal_id).idem)


def forget_pending(deal_id: UUID | str) -> None:
    """The copies of accepted, unwritten reservations are gone (the `pending` hash alone; the
    stream keeps its entries)."""
    gate_redis().delete(deal_keys(deal_id).pending)


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


def reserve_raw(
    deal_id: UUID | str,
    product_id: UUID | str,
    reservation: Reservation,
    *,
    payload: str | None = None,
    extra_args: Sequence[str] = (),
) -> list:
    """Runs reserve.lua as deal_reserve does, but with `payload` (when given) as its reservation
    JSON (ARGV 7) and `extra_args` after its twelve: a caller with a bug, or of another version,
    sending what the script does not expect. Returns the raw reply; raises what Redis raises."""
    keys = deal_keys(deal_id)
    now_ms = epoch_ms(timezone.now())
    return run_script(
        "reserve",
        keys=[
            keys.state, keys.users, keys.idem, keys.pending, keys.stream, keys.drain,
            deal_rate_key(deal_id, now_ms // 60_000), keys.outcomes,
        ],
        args=[
            reservation.user_id, reservation.quantity, reservation.idempotency_key or "",
            reservation.request_hash, reservation.order_id, now_ms,
            reservation.to_json() if payload is None else payload, "async",
            DRAIN_FLAG_TTL_SECONDS, str(product_id), RATE_TTL_SECONDS, OUTCOMES_TTL_SECONDS,
            *extra_args,
        ],
    )  # fmt: skip


def release_raw(deal_id: UUID | str, *, user_id: UUID | str, quantity: str, order_id: str) -> list:
    """Runs release.lua as deal_release does, but with `quantity` (ARGV 2) sent as given: a
    caller with a bug, or of another version. Returns the raw reply; raises what Redis raises."""
    keys = deal_keys(deal_id)
    return run_script(
        "release",
        keys=[keys.state, keys.users, keys.pending, keys.released, keys.idem],
        args=[str(user_id), quantity, order_id, ""],
    )


def is_released(deal_id: UUID | str, order_id: str) -> bool:
    """release.lua has marked this order's units as given back."""
    return bool(gate_redis().sismember(deal_keys(deal_id).released, order_id))


def idempotency_fields(deal_id: UUID | str) -> dict[str, str]:
    """The deal's idem hash: "<user_id>:<key>" -> "<order_id>|<request hash>"."""
    return dict(gate_redis().hgetall(deal_keys(deal_id).idem))


def keys_without_ttl(deal_id: UUID | str) -> set[str]:
    """The deal's keys that never expire, by their name after the hash tag ("state", "dead",
    ...): what would stay in Redis for ever once nobody deletes them."""
    client = gate_redis()
    tag = deal_keys(deal_id).state.removesuffix("state")
    return {
        key.removeprefix(tag)
        for key in client.scan_iter(match=f"{tag}*", count=1000)
        if client.ttl(key) == -1
    }


def park_interrupted(deal_id: UUID | str, reservation: Reservation, *, reason: str) -> None:
    """dead_letter_park's first steps only, as a process killed inside it leaves them: the
    reservation is parked (and GET /orders/{id} can find it), its units are not back yet and its
    pending copy is still there."""
    client = gate_redis()
    parked = reservation.failed(reason, timezone.now())
    client.hset(deal_keys(deal_id).dead, reservation.order_id, parked.to_json())
    client.set(order_failed_key(reservation.order_id), str(deal_id), ex=3600)


def forget_idempotency_claim(user_id: UUID | str, idempotency_key: str) -> None:
    """Redis lost a shopper's Idempotency-Key claim (or its TTL ran out)."""
    gate_redis().delete(idempotency_claim_key(user_id, idempotency_key))


def room_fill(deal_id: UUID | str, n: int, *, now_ms: int, prefix: str = "filler") -> None:
    """`n` made-up shoppers join the deal's waiting room through queue.lua itself, in one
    pipeline: a long line without `n` HTTP requests (their ids are not users)."""
    keys = deal_keys(deal_id)
    # One deal: one server (a cluster pipeline would refuse the EVALSHAs).
    queue, pipe = script("queue"), key_redis(keys.state).pipeline(transaction=False)
    rate_key = deal_rate_key(deal_id, now_ms // 60_000)
    for i in range(n):
        queue(
            keys=[keys.state, keys.queue, keys.tickets, keys.admitted, keys.expiry, keys.room,
                  rate_key],
            args=["join", f"{prefix}-{i}", now_ms, RATE_TTL_SECONDS],
            client=pipe,
        )  # fmt: skip
    replies = pipe.execute()
    assert all(reply[0] == "WAITING" for reply in replies), {r[0] for r in replies}
