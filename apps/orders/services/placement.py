"""POST /orders: regular orders in one transaction; deal orders through the configured pipeline."""

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.cache import CATALOG, scope_changed
from apps.catalog.models import Product

from ..errors import IdempotencyKeyReused, InsufficientStock, ProductNotFound
from ..models import Order, OrderItem, OrderStatus
from ..selectors import order_find_by_key
from .inputs import OrderInput
from .records import new_item, new_order


@dataclass
class PlacedOrder:
    """What POST /orders answers: a written order with its items, or a reservation (the async
    pipeline answers before the row exists; building model instances for it would cost more
    than the reservation itself)."""

    order: Order | None = None
    items: list[OrderItem] = field(default_factory=list)
    accepted_async: bool = False  # 202: accepted, written by the stream writer shortly
    reservation: dict | None = None
    status: str = ""


def order_place(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    if data.deal_line is not None:
        from .pipelines import PIPELINES

        return PIPELINES[settings.ORDER_PIPELINE](user_id=user_id, data=data)
    return regular_order_place(user_id=user_id, data=data)


def existing_for_key(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder | None:
    """The order an earlier request with this Idempotency-Key created, if any; 409 if that
    request had a different body."""
    if not data.idempotency_key:
        return None
    order = order_find_by_key(user_id=user_id, idempotency_key=data.idempotency_key)
    if order is None:
        return None
    if order.request_hash != data.request_hash:
        raise IdempotencyKeyReused(details={"order_id": str(order.id)})
    return PlacedOrder(order=order, items=list(order.items.all()))


def regular_order_place(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """One transaction: conditional stock updates per line in primary-key order (so two orders
    over the same products can't deadlock), then the order and its items. 201 confirmed."""
    if existing := existing_for_key(user_id=user_id, data=data):
        return existing
    lines = sorted(data.items, key=lambda line: str(line.product_id))
    try:
        with transaction.atomic(durable=True):
            products = Product.objects.in_bulk([line.product_id for line in lines])
            missing = [str(line.product_id) for line in lines if line.product_id not in products]
            if missing:
                raise ProductNotFound(details={"product_ids": missing})
            for line in lines:
                updated = Product.objects.filter(
                    pk=line.product_id, stock__gte=line.quantity
                ).update(stock=F("stock") - line.quantity, updated_at=timezone.now())
                if not updated:
                    raise InsufficientStock(
                        details={
                            "product_id": str(line.product_id),
                            "requested": line.quantity,
                            "available": Product.objects.get(pk=line.product_id).stock,
                        }
                    )
            scope_changed(CATALOG)  # cached product pages show stock: refresh them on commit
            order = new_order(
                order_id=uuid.uuid4(),
                user_id=user_id,
                data=data,
                status=OrderStatus.CONFIRMED,
                total=sum(products[line.product_id].price * line.quantity for line in lines),
                created_at=timezone.now(),
            )
            order.save(force_insert=True)
            items = [
                new_item(
                    order=order,
                    product=products[line.product_id],
                    quantity=line.quantity,
                    unit_price=products[line.product_id].price,
                )
                for line in lines
            ]
            OrderItem.objects.bulk_create(items)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the unique constraint.
        if existing := existing_for_key(user_id=user_id, data=data):
            return existing
        raise
    return PlacedOrder(order=order, items=items)
