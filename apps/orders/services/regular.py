"""Regular orders (no deal): one transaction, stock taken by conditional updates. 201."""

import uuid

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.cache import CATALOG, scope_changed
from apps.catalog.models import Product

from ..errors import InsufficientStock, UnknownProduct
from ..models import OrderItem, OrderStatus
from ..placed import PlacedOrder
from ..selectors import order_for_idempotency_key
from .inputs import OrderInput
from .rows import regular_order_rows
from .shoppers import raise_if_shopper_gone


def regular_order_place(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Conditional stock updates per line in primary-key order (so two orders over the same
    products can't deadlock), then the order and its items, all in one transaction."""
    if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
        return existing
    lines = sorted(data.items, key=lambda line: str(line.product_id))
    try:
        with transaction.atomic(durable=True):
            products = Product.objects.in_bulk([line.product_id for line in lines])
            missing = [str(line.product_id) for line in lines if line.product_id not in products]
            if missing:
                raise UnknownProduct(details={"product_ids": missing})
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
            order, items = regular_order_rows(
                user_id=user_id,
                data=data,
                products=products,
                status=OrderStatus.CONFIRMED,
                created_at=timezone.now(),
            )
            order.save(force_insert=True)
            OrderItem.objects.bulk_create(items)
    except IntegrityError as exc:
        # A concurrent request with the same Idempotency-Key won the unique constraint.
        if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
            return existing
        raise_if_shopper_gone(exc, user_id=user_id)
        raise
    return PlacedOrder(order=order, items=items, status=order.status)
