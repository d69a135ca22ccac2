"""Dead-lettered reservations: parked by the writer when they can't be written, then replayed
(replay.lua takes their units again) or discarded by an operator.

A reservation is dead-lettered after ORDER_STREAM_MAX_DELIVERIES failed writes (or at once
when retrying can't help). Parking returns its units to the deal, so the deal keeps selling
them; GET /orders/{id} shows it `failed` with the reason. What to do with one is decided in
apps.orders.services.dead_letters.
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from django.utils import timezone

from .client import gate_redis
from .keys import deal_keys, order_failed_key
from .reservation import Outcome, Reservation
from .reserve import deal_release
from .scripts import epoch_ms, run_script
from .stream import reservations_done

logger = logging.getLogger(__name__)

FAILED_POINTER_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class ReplayResult:
    outcome: Outcome  # OK, GONE, NOT_LOADED, ENDED, SOLD_OUT or LIMIT (see replay.lua)
    reservation: Reservation | None = None
    remaining: int | None = None
    held: int | None = None
    limit: int | None = None


def dead_letter_park(
    deal_id: UUID | str, reservation: Reservation, *, reason: str, stream_id: str | None = None
) -> None:
    """Parks a reservation that can't be written, returns its units to the deal, and
    acknowledges its stream entry."""
    parked = reservation.failed(reason, timezone.now())
    client = gate_redis()
    client.hset(deal_keys(deal_id).dead, reservation.order_id, parked.to_json())
    client.set(order_failed_key(reservation.order_id), str(deal_id), ex=FAILED_POINTER_TTL)
    deal_release(
        deal_id=deal_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        order_id=reservation.order_id,
    )
    if stream_id:
        reservations_done(deal_id, [], [stream_id])
    logger.error("reservation %s dead-lettered: %s", reservation.order_id, reason)


def dead_letter_park_finish(deal_id: UUID | str, reservation: Reservation) -> None:
    """Finishes a park interrupted before its release (a process killed between the two steps
    of dead_letter_park): the units go back and the pending copy is dropped. The dead letter
    stays as it was parked, reason and time included. Safe to repeat: release.lua gives an
    order's units back once."""
    deal_release(
        deal_id=deal_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        order_id=reservation.order_id,
    )
    logger.warning("reservation %s: finished its interrupted dead-lettering", reservation.order_id)


def dead_letters_among(deal_id: UUID | str, order_ids: list[str]) -> set[str]:
    """Which of these orders are parked: a stream copy of a parked reservation must not be
    written (it would be confirmed while its units are back on sale)."""
    if not order_ids:
        return set()
    parked = gate_redis().hmget(deal_keys(deal_id).dead, order_ids)
    return {order_id for order_id, value in zip(order_ids, parked, strict=True) if value}


def dead_letter_rereserve(deal_id: UUID | str, order_id: UUID | str) -> ReplayResult:
    """Runs replay.lua: takes the units again and moves the reservation to `pending`."""
    keys = deal_keys(deal_id)
    reply = run_script(
        "replay",
        keys=[keys.state, keys.users, keys.dead, keys.pending, keys.released],
        args=[str(order_id), epoch_ms(timezone.now())],
    )
    outcome = Outcome(reply[0])
    if outcome == Outcome.OK:
        return ReplayResult(
            outcome, reservation=Reservation.from_json(reply[2]), remaining=int(reply[1])
        )
    if outcome == Outcome.SOLD_OUT:
        return ReplayResult(outcome, remaining=int(reply[1]))
    if outcome == Outcome.LIMIT:
        return ReplayResult(outcome, held=int(reply[1]), limit=int(reply[2]))
    return ReplayResult(outcome)


def dead_letter_claim(deal_id: UUID | str, order_id: UUID | str) -> Reservation | None:
    """Removes a parked reservation and returns it; None if another operator got there first
    (HDEL decides: exactly one caller sees 1)."""
    key = deal_keys(deal_id).dead
    client = gate_redis()
    parked = client.hget(key, str(order_id))
    if parked is None or not client.hdel(key, str(order_id)):
        return None
    return Reservation.from_json(parked)


def dead_letter_restore(deal_id: UUID | str, reservation: Reservation) -> None:
    """Puts a claimed reservation back (the caller's database write failed)."""
    gate_redis().hset(deal_keys(deal_id).dead, reservation.order_id, reservation.to_json())
