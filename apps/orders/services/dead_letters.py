"""What an operator can do with a dead-lettered reservation: replay it or discard it.

Replay: the units the reservation gave back when it was parked are taken again atomically
(replay.lua, same checks as a purchase), then it is written like any accepted reservation. If
the write fails again it is parked again with its units returned, so nothing is lost or double
counted. Discard: the units are already back in the deal; the reservation becomes a visible
`failed` order row (invariant 3: an accepted purchase ends as an order or a visible failure),
then leaves Redis. Both are audited in the stock trail with the operator.
"""

import logging
import uuid
from datetime import datetime

from django.db import DatabaseError, transaction

from apps.catalog.models import StockMovementKind
from apps.catalog.services import stock_movement_record
from apps.core.errors import Conflict, NotFound
from apps.deals import dead_letters, gate

from ..models import Order, OrderItem, OrderStatus
from .records import shipping_fields
from .writer import DealCounterMismatch, reservations_persist

logger = logging.getLogger(__name__)


class DeadLetterNotFound(NotFound):
    code = "DEAD_LETTER_NOT_FOUND"
    default_message = "No such dead letter (already replayed or discarded)."


class CannotReplay(Conflict):
    code = "CANNOT_REPLAY"
    default_message = "This reservation cannot be replayed."


_REFUSALS = {
    "NOT_LOADED": "The deal is not live in Redis (closed, or being restored); discard it.",
    "ENDED": "The deal has ended; its unsold units go back to the product. Discard it.",
    "SOLD_OUT": "Not enough units left in the deal to replay it.",
    "LIMIT": "The shopper already holds the deal's per-user limit.",
}


def dead_letter_replay(
    *, deal_id: uuid.UUID, order_id: uuid.UUID, actor_id: uuid.UUID | None = None
) -> Order:
    """Writes a parked reservation as a confirmed order if its units can still be taken."""
    result = dead_letters.dead_letter_rereserve(deal_id, order_id)
    if result.outcome == "GONE":
        raise DeadLetterNotFound(details={"order_id": str(order_id)})
    if result.outcome != "OK":
        raise CannotReplay(
            _REFUSALS[result.outcome],
            details={"order_id": str(order_id), "reason": result.outcome.lower()},
        )
    reservation = result.reservation
    try:
        with transaction.atomic():
            reservations_persist([reservation])
            stock_movement_record(
                product_id=reservation["product_id"], kind=StockMovementKind.DEAD_LETTER_REPLAY,
                deal_id=deal_id, deal_delta=-reservation["quantity"], actor_id=actor_id,
                note=f"order {order_id}",
            )  # fmt: skip
    except (DatabaseError, DealCounterMismatch) as exc:
        gate.dead_letter(deal_id, None, reservation, reason=f"replay: {exc.__class__.__name__}")
        raise CannotReplay(
            "Writing the order failed again; it is parked again with its units returned.",
            details={"order_id": str(order_id), "reason": str(exc)[:200]},
        ) from exc
    gate.reservations_done(deal_id, [reservation["order_id"]])
    return Order.objects.get(pk=order_id)


def dead_letter_discard(
    *, deal_id: uuid.UUID, order_id: uuid.UUID, actor_id: uuid.UUID | None = None
) -> Order:
    """Records a parked reservation as a `failed` order and drops it from Redis."""
    reservation = dead_letters.dead_letter_claim(deal_id, order_id)
    if reservation is None:
        raise DeadLetterNotFound(details={"order_id": str(order_id)})
    order, item = _failed_order(reservation)
    try:
        with transaction.atomic():
            # ignore_conflicts: a row written meanwhile (it cannot be, once parked) is kept
            Order.objects.bulk_create([order], ignore_conflicts=True)
            OrderItem.objects.bulk_create([item], ignore_conflicts=True)
            stock_movement_record(
                product_id=reservation["product_id"], kind=StockMovementKind.DEAD_LETTER_DISCARD,
                deal_id=deal_id, actor_id=actor_id,
                note=f"order {order_id}; its units went back when it was dead-lettered",
            )  # fmt: skip
    except DatabaseError:
        dead_letters.dead_letter_restore(deal_id, reservation)
        raise
    logger.info("dead letter %s of deal %s discarded", order_id, deal_id)
    return Order.objects.get(pk=order_id)


def _failed_order(reservation: dict) -> tuple[Order, OrderItem]:
    quantity, price = reservation["quantity"], reservation["unit_price"]
    order = Order(
        id=uuid.UUID(reservation["order_id"]),
        user_id=uuid.UUID(reservation["user_id"]),
        deal_id=uuid.UUID(reservation["deal_id"]),
        status=OrderStatus.FAILED,
        total_amount=price * quantity,
        idempotency_key=reservation.get("idempotency_key"),
        request_hash=reservation.get("request_hash") or "",
        failure_reason=(reservation.get("failure_reason") or "discarded")[:500],
        created_at=datetime.fromisoformat(reservation["created_at"]),
        **shipping_fields(reservation.get("shipping")),
    )
    item = OrderItem(
        id=uuid.UUID(reservation["item_id"]),
        order=order,
        product_id=uuid.UUID(reservation["product_id"]),
        deal_id=order.deal_id,
        product_name=reservation["product_name"],
        unit_price=price,
        quantity=quantity,
        subtotal=price * quantity,
    )
    return order, item
