"""Cancelling an order: its units go back to the deal while the deal is open, else to the
product; the shopper's held units go down. Cancelling twice is harmless."""

import logging
import uuid
from typing import Any

import redis
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.models import StockMovementKind
from apps.catalog.services import product_stock_return, stock_movement_record
from apps.core.audit import action_record
from apps.core.commit import on_commit_robust
from apps.core.errors import NotFound
from apps.core.locks import locked
from apps.deals import gate
from apps.deals.gate import ReservationState
from apps.deals.models import Deal

from ..errors import CannotCancel
from ..models import CANCELLABLE, Order, OrderStatus
from ..selectors import order_or_reservation_get
from .writer import WriteRefused, failure_reason, reservations_write

logger = logging.getLogger(__name__)


def _write_if_pending(*, order_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """An async order not written yet is written now, so it can be cancelled like any other."""
    found = order_or_reservation_get(order_id=order_id, user_id=user_id)
    if found is None:
        raise NotFound("No such order.")
    if found.reservation is None:
        return  # written meanwhile
    if found.status == ReservationState.FAILED:
        raise CannotCancel(details={"status": OrderStatus.FAILED})
    reservation = found.reservation
    try:
        reservations_write(reservation.deal_id, [reservation])
    except WriteRefused as exc:  # it can never be written: park it (units back), it failed
        gate.dead_letter_park(reservation.deal_id, reservation, reason=failure_reason(exc))
        raise CannotCancel(details={"status": OrderStatus.FAILED}) from exc
    except redis.RedisError:
        # The row is committed; only forgetting its Redis copies failed (the gate went down
        # after the write). The drain or the sweep writes those copies again, which inserts
        # nothing, and drops them. Cancel the row: answering 500 here said nothing true.
        logger.warning("order %s written; its Redis copies stay for the writer", order_id)


def order_cancel(
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    reason: str = "",
    actor_id: uuid.UUID | None = None,
) -> Order:
    """Cancels the user's order and returns its units (audited: `actor_id` is the operator who
    cancelled it, the shopper by default; an operator's cancellation is also recorded on the
    order's history with the `reason`)."""
    if not Order.objects.filter(pk=order_id, user_id=user_id).exists():
        _write_if_pending(order_id=order_id, user_id=user_id)
    releases: list[dict[str, Any]] = []
    with transaction.atomic(durable=True):
        order = locked(Order.objects.filter(pk=order_id, user_id=user_id)).first()
        if order is None:
            raise NotFound("No such order.")
        if order.status == OrderStatus.CANCELLED:
            return order
        if order.status not in CANCELLABLE:
            raise CannotCancel(details={"status": order.status})
        now = timezone.now()
        note = f"order {order.pk}" + (f"; {reason}" if reason else "")
        for item in sorted(order.items.all(), key=lambda i: str(i.product_id)):
            deal = locked(Deal.objects.filter(pk=item.deal_id)).first() if item.deal_id else None
            if deal is not None and deal.closed_at is None:
                Deal.objects.filter(pk=deal.pk).update(
                    remaining_stock=F("remaining_stock") + item.quantity, updated_at=now
                )
                releases.append(
                    {"deal_id": deal.pk, "user_id": user_id, "quantity": item.quantity,
                     "order_id": order.pk}
                )  # fmt: skip
                stock_movement_record(
                    product_id=item.product_id, kind=StockMovementKind.CANCELLATION,
                    deal_id=deal.pk, deal_delta=item.quantity, actor_id=actor_id or user_id,
                    note=note,
                )  # fmt: skip
            else:
                product_stock_return(
                    product_id=item.product_id, quantity=item.quantity,
                    kind=StockMovementKind.CANCELLATION, deal_id=item.deal_id,
                    actor_id=actor_id or user_id, note=note,
                )  # fmt: skip
        order.status = OrderStatus.CANCELLED
        order.cancelled_at = now
        order.cancel_reason = reason
        order.save(update_fields=["status", "cancelled_at", "cancel_reason", "updated_at"])
        if actor_id is not None:
            action_record(actor_id=actor_id, obj=order, action="cancel", reason=reason)
        for release in releases:
            # robust: a Redis outage after the commit leaves drift that reconciliation repairs.
            on_commit_robust(gate.deal_release, **release)
    return order
