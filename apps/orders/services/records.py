"""Building order rows. Prices and names come from the server's records, never the client."""

import uuid
from datetime import datetime

from apps.catalog.models import Product
from apps.deals.models import Deal

from ..models import Order, OrderItem, OrderStatus
from .inputs import OrderInput


def shipping_fields(shipping: dict | None) -> dict:
    if not shipping:
        return {}
    return {
        "recipient_name": shipping.get("recipient_name", ""),
        "phone": shipping.get("phone", ""),
        "address": shipping.get("address", ""),
        "address_detail": shipping.get("address_detail", ""),
        "postal_code": shipping.get("postal_code", ""),
    }


def new_order(
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    data: OrderInput,
    status: str,
    total: int,
    created_at: datetime,
    deal: Deal | None = None,
) -> Order:
    return Order(
        id=order_id,
        user_id=user_id,
        deal=deal,
        status=status,
        total_amount=total,
        idempotency_key=data.idempotency_key,
        request_hash=data.request_hash,
        created_at=created_at,
        **shipping_fields(data.shipping),
    )


def new_item(
    *, order: Order, product: Product, quantity: int, unit_price: int, deal: Deal | None = None
) -> OrderItem:
    return OrderItem(
        id=uuid.uuid4(),
        order=order,
        product=product,
        deal=deal,
        product_name=product.name,
        unit_price=unit_price,
        quantity=quantity,
        subtotal=unit_price * quantity,
    )


def confirmed_deal_order(
    *, order_id, user_id, data: OrderInput, deal: Deal, created_at
) -> tuple[Order, OrderItem]:
    line = data.deal_line
    order = new_order(
        order_id=order_id,
        user_id=user_id,
        data=data,
        status=OrderStatus.CONFIRMED,
        total=deal.deal_price * line.quantity,
        created_at=created_at,
        deal=deal,
    )
    item = new_item(
        order=order, product=deal.product, quantity=line.quantity, unit_price=deal.deal_price,
        deal=deal,
    )  # fmt: skip
    return order, item
