"""Response bodies of the orders API, built by hand: they are on the hottest paths
(order-tps-limit). Their shape is the contract; `apis.OrderOutputSerializer` describes it for
the schema and a test keeps the two in step."""

from typing import Any

from apps.core.renderers import iso
from apps.deals.gate import Reservation

from .models import Order, OrderItem
from .placed import PlacedOrder
from .services.rows import shipping_fields


def order_body(order: Order, items: list[OrderItem]) -> dict[str, Any]:
    """The Order of the contract."""
    return {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "items": [
            {
                "id": str(item.id),
                "product_id": str(item.product_id),
                "deal_id": str(item.deal_id) if item.deal_id else None,
                "product_name": item.product_name,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "subtotal": item.subtotal,
            }
            for item in items
        ],
        "total_amount": order.total_amount,
        "status": order.status,
        "shipping_address": order.shipping_address,
        "cancelled_at": iso(order.cancelled_at),
        "cancel_reason": order.cancel_reason or None,
        "failure_reason": order.failure_reason or None,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def reservation_body(r: Reservation, status: str) -> dict[str, Any]:
    """The Order of the contract for a reservation not written yet (same shape as order_body)."""
    created_at = iso(r.accepted_at)
    return {
        "id": r.order_id,
        "user_id": r.user_id,
        "items": [
            {
                "id": r.item_id,
                "product_id": r.product_id,
                "deal_id": r.deal_id,
                "product_name": r.product_name,
                "quantity": r.quantity,
                "unit_price": r.unit_price,
                "subtotal": r.subtotal,
            }
        ],
        "total_amount": r.subtotal,
        "status": status,
        "shipping_address": shipping_fields(r.shipping) or None,
        "cancelled_at": None,
        "cancel_reason": None,
        "failure_reason": r.failure_reason or None,
        "created_at": created_at,
        "updated_at": created_at,
    }


def placed_body(placed: PlacedOrder) -> dict[str, Any]:
    if placed.reservation is not None:
        return reservation_body(placed.reservation, placed.status)
    assert placed.order is not None
    return order_body(placed.order, placed.items)
