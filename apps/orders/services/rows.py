"""Building order rows. Prices and names come from the server's records, never the client.

A deal order is always built from a `Reservation` (`deal_order_rows`), whichever way it was
sold: the Redis pipelines get one from reserve.lua, the database pipelines build one from the
deal row they locked, dead letters are one. Regular orders have several lines and no
reservation (`regular_order_rows`; the lab's bulk loader uses it too).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from apps.catalog.models import Product
from apps.deals.gate import Reservation

from ..models import Order, OrderItem
from .inputs import OrderInput

# The columns `deal_order_columns` gives values for, in that order (the batch writer's INSERTs;
# `updated_at` is the writer's clock, not the reservation's, so the writer adds it).
ORDER_COLUMNS = (
    "id", "user_id", "deal_id", "status", "total_amount", "recipient_name", "phone", "address",
    "address_detail", "postal_code", "idempotency_key", "request_hash", "cancel_reason",
    "failure_reason", "created_at",
)  # fmt: skip
ITEM_COLUMNS = (
    "id", "order_id", "product_id", "deal_id", "product_name", "unit_price", "quantity",
    "subtotal",
)  # fmt: skip


def shipping_fields(shipping: dict | None) -> dict[str, str]:
    if not shipping:
        return {}
    return {
        "recipient_name": shipping.get("recipient_name", ""),
        "phone": shipping.get("phone", ""),
        "address": shipping.get("address", ""),
        "address_detail": shipping.get("address_detail", ""),
        "postal_code": shipping.get("postal_code", ""),
    }


def deal_order_rows(reservation: Reservation, *, status: str) -> tuple[Order, OrderItem]:
    r = reservation
    order = Order(
        id=uuid.UUID(r.order_id),
        user_id=uuid.UUID(r.user_id),
        deal_id=uuid.UUID(r.deal_id),
        status=status,
        total_amount=r.subtotal,
        idempotency_key=r.idempotency_key,
        request_hash=r.request_hash,
        failure_reason=r.failure_reason,
        created_at=r.accepted_at,
        **shipping_fields(r.shipping),
    )
    item = OrderItem(
        id=uuid.UUID(r.item_id),
        order=order,
        product_id=uuid.UUID(r.product_id),
        deal_id=order.deal_id,
        product_name=r.product_name,
        unit_price=r.unit_price,
        quantity=r.quantity,
        subtotal=r.subtotal,
    )
    return order, item


def deal_order_columns(
    reservations: Sequence[Reservation], *, status: str
) -> tuple[list[list], list[list]]:
    """`deal_order_rows` for a whole batch, column-wise: one list per column of ORDER_COLUMNS
    and one per column of ITEM_COLUMNS, ids and `created_at` as the reservations' strings. No
    model instances: building two per row cost the batch writer more CPU than PostgreSQL spent
    inserting them (docs/scaling-drain.md). The same values as `deal_order_rows`, which
    `test_rows.py` holds them to."""
    orders, items = [], []
    for r in reservations:
        shipping = shipping_fields(r.shipping)
        subtotal = r.subtotal
        orders.append(
            (
                r.order_id, r.user_id, r.deal_id, status, subtotal,
                shipping.get("recipient_name", ""), shipping.get("phone", ""),
                shipping.get("address", ""), shipping.get("address_detail", ""),
                shipping.get("postal_code", ""), r.idempotency_key, r.request_hash, "",
                r.failure_reason, r.created_at,
            )
        )  # fmt: skip
        items.append(
            (r.item_id, r.order_id, r.product_id, r.deal_id, r.product_name, r.unit_price,
             r.quantity, subtotal)
        )  # fmt: skip
    order_columns = [list(column) for column in zip(*orders, strict=True)]
    return order_columns, [list(column) for column in zip(*items, strict=True)]


def regular_order_rows(
    *,
    user_id: uuid.UUID,
    data: OrderInput,
    products: dict[uuid.UUID, Product],
    status: str,
    created_at: datetime,
) -> tuple[Order, list[OrderItem]]:
    """`products` holds every line's product (read in the placing transaction)."""
    order = Order(
        id=uuid.uuid4(),
        user_id=user_id,
        status=status,
        total_amount=sum(products[line.product_id].price * line.quantity for line in data.items),
        idempotency_key=data.idempotency_key,
        request_hash=data.request_hash,
        created_at=created_at,
        **shipping_fields(data.shipping),
    )
    items = [
        OrderItem(
            id=uuid.uuid4(),
            order=order,
            product=products[line.product_id],
            product_name=products[line.product_id].name,
            unit_price=products[line.product_id].price,
            quantity=line.quantity,
            subtotal=products[line.product_id].price * line.quantity,
        )
        for line in sorted(data.items, key=lambda line: str(line.product_id))
    ]
    return order, items
