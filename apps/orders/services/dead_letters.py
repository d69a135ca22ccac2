"""What an operator can do with a dead-lettered reservation: replay it or discard it.

Replay: the units the reservation gave back when it was parked are taken again atomically
(replay.lua, same checks as a purchase), then it is written like any accepted reservation. If
the write fails again it is parked again with its units returned, so nothing is lost or double
counted. Discard: the units are already back in the deal; the reservation becomes a visible
`failed` order row (nothing lost: an accepted purchase ends as an order or a visible failure),
then leaves Redis. Both are audited in the stock trail with the operator.
"""

import logging
import uuid
from dataclasses import replace

from django.db import DatabaseError, transaction

from apps.catalog.models import StockMovementKind
from apps.catalog.services import stock_movement_record
from apps.core.audit import action_record
from apps.deals import gate
from apps.deals.gate import Outcome
from apps.deals.models import Deal

from ..errors import CannotReplay, DeadLetterNotFound
from ..models import Order, OrderStatus
from .writer import (
    IdempotencyKeyClash,
    ShopperGone,
    WriteRefused,
    failure_reason,
    reservations_persist,
)

logger = logging.getLogger(__name__)

_REFUSALS = {
    Outcome.NOT_LOADED: "The deal is not live in Redis (closed, or being restored); discard it.",
    Outcome.ENDED: "The deal has ended; its unsold units go back to the product. Discard it.",
    Outcome.SOLD_OUT: "Not enough units left in the deal to replay it.",
    Outcome.LIMIT: "The shopper already holds the deal's per-user limit.",
}


def _record(
    deal_id: uuid.UUID, action: str, order_id: uuid.UUID, actor_id: uuid.UUID | None, reason: str
) -> None:
    """On the deal (its page lists what was done to its dead letters), naming the order."""
    deal = Deal.objects.select_related("product").get(pk=deal_id)
    detail = f"order {order_id}"
    action_record(actor_id=actor_id, obj=deal, action=action, reason=reason, detail=detail)


def dead_letter_replay(
    *,
    deal_id: uuid.UUID,
    order_id: uuid.UUID,
    actor_id: uuid.UUID | None = None,
    reason: str = "",
) -> Order:
    """Writes a parked reservation as a confirmed order if its units can still be taken."""
    result = gate.dead_letter_rereserve(deal_id, order_id)
    if result.outcome == Outcome.GONE:
        raise DeadLetterNotFound(details={"order_id": str(order_id)})
    if result.outcome != Outcome.OK:
        raise CannotReplay(
            _REFUSALS[result.outcome],
            details={"order_id": str(order_id), "reason": result.outcome.lower()},
        )
    reservation = result.reservation
    assert reservation is not None
    try:
        with transaction.atomic():
            reservations_persist([reservation])
            stock_movement_record(
                product_id=uuid.UUID(reservation.product_id),
                kind=StockMovementKind.DEAD_LETTER_REPLAY,
                deal_id=deal_id, deal_delta=-reservation.quantity, actor_id=actor_id,
                note=f"order {order_id}" + (f"; {reason}" if reason else ""),
            )  # fmt: skip
            _record(deal_id, "replay dead letter", order_id, actor_id, reason)
    except (DatabaseError, WriteRefused) as exc:
        logger.warning("replay of %s failed: %s", order_id, exc)
        gate.dead_letter_park(deal_id, reservation, reason=failure_reason(exc))
        raise CannotReplay(
            "Writing the order failed again; it is parked again with its units returned.",
            details={"order_id": str(order_id), "reason": failure_reason(exc)},
        ) from exc
    gate.reservations_done(deal_id, [reservation.order_id])
    return Order.objects.get(pk=order_id)


def dead_letter_discard(
    *,
    deal_id: uuid.UUID,
    order_id: uuid.UUID,
    actor_id: uuid.UUID | None = None,
    reason: str = "",
) -> Order:
    """Records a parked reservation as a `failed` order and drops it from Redis."""
    reservation = gate.dead_letter_claim(deal_id, order_id)
    if reservation is None:
        raise DeadLetterNotFound(details={"order_id": str(order_id)})
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    reservations_persist([reservation], status=OrderStatus.FAILED)
            except IdempotencyKeyClash:
                # Parked because its key belongs to another of the shopper's orders: the
                # failed row is kept without it (the key stays with that order).
                reservations_persist(
                    [replace(reservation, idempotency_key=None)], status=OrderStatus.FAILED
                )
            stock_movement_record(
                product_id=uuid.UUID(reservation.product_id),
                kind=StockMovementKind.DEAD_LETTER_DISCARD,
                deal_id=deal_id, actor_id=actor_id,
                note=f"order {order_id}; its units went back when it was dead-lettered"
                + (f"; {reason}" if reason else ""),
            )  # fmt: skip
            _record(deal_id, "discard dead letter", order_id, actor_id, reason)
    except ShopperGone as exc:
        # No row can reference a deleted shopper: it stays parked (its units are back), never
        # dropped without a trace.
        gate.dead_letter_restore(deal_id, reservation)
        raise CannotReplay(
            "The shopper's account was deleted, so no failed order can be recorded for it; "
            "it stays parked (its units are back).",
            details={"order_id": str(order_id), "reason": failure_reason(exc)},
        ) from exc
    except DatabaseError:
        gate.dead_letter_restore(deal_id, reservation)
        raise
    logger.info("dead letter %s of deal %s discarded", order_id, deal_id)
    return Order.objects.get(pk=order_id)
