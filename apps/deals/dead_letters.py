"""Dead-lettered reservations in Redis: list, take back into the deal (replay.lua), drop.

Kept apart from gate.py (the purchase hot path) because only the operator console uses it.
A dead letter is a reservation the writer could not persist after ORDER_STREAM_MAX_DELIVERIES
attempts; gate.dead_letter parked it in the deal's `dead` hash and returned its units. The
services that decide what to do with one live in apps.orders.services.dead_letters.
"""

import json
from dataclasses import dataclass
from uuid import UUID

from django.utils import timezone

from apps.core.redis import get_redis

from . import gate
from .keys import deal_keys


@dataclass(frozen=True)
class ReplayResult:
    outcome: str  # see replay.lua
    reservation: dict | None = None
    remaining: int | None = None
    held: int | None = None
    limit: int | None = None


def dead_letter_list(deal_id: UUID | str, *, limit: int = 50) -> list[dict]:
    """Up to `limit` parked reservations, oldest failure first."""
    _, found = get_redis().hscan(deal_keys(deal_id).dead, 0, count=limit)
    parked = [json.loads(value) for value in found.values()]
    return sorted(parked, key=lambda r: r.get("failed_at", ""))[:limit]


def dead_letter_count(deal_id: UUID | str) -> int:
    return int(get_redis().hlen(deal_keys(deal_id).dead))


def dead_letter_rereserve(deal_id: UUID | str, order_id: UUID | str) -> ReplayResult:
    """Runs replay.lua: takes the units again and moves the reservation to `pending`."""
    keys = deal_keys(deal_id)
    now_ms = gate._ms(timezone.now())
    reply = gate._script("replay")(
        keys=[keys.state, keys.users, keys.dead, keys.pending, keys.released],
        args=[str(order_id), now_ms],
    )
    outcome = reply[0]
    if outcome == "OK":
        return ReplayResult(outcome, reservation=json.loads(reply[2]), remaining=int(reply[1]))
    if outcome == "SOLD_OUT":
        return ReplayResult(outcome, remaining=int(reply[1]))
    if outcome == "LIMIT":
        return ReplayResult(outcome, held=int(reply[1]), limit=int(reply[2]))
    return ReplayResult(outcome)


def dead_letter_claim(deal_id: UUID | str, order_id: UUID | str) -> dict | None:
    """Removes a parked reservation and returns it; None if another operator got there first
    (HDEL decides: exactly one caller sees 1)."""
    key = deal_keys(deal_id).dead
    client = get_redis()
    parked = client.hget(key, str(order_id))
    if parked is None or not client.hdel(key, str(order_id)):
        return None
    return json.loads(parked)


def dead_letter_restore(deal_id: UUID | str, reservation: dict) -> None:
    """Puts a claimed reservation back (the caller's database write failed)."""
    get_redis().hset(deal_keys(deal_id).dead, reservation["order_id"], json.dumps(reservation))
