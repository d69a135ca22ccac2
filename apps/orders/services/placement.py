"""POST /orders: regular orders in one transaction; deal orders through the configured
pipeline (settings.ORDER_PIPELINE, spec section 5)."""

import uuid
from collections.abc import Callable

from django.conf import settings

from ..placed import PlacedOrder
from .db_pipelines import place_db_lock, place_db_update
from .inputs import OrderInput
from .redis_pipelines import place_redis, place_redis_async
from .regular import regular_order_place

PIPELINES: dict[str, Callable[..., PlacedOrder]] = {
    "db_lock": place_db_lock,
    "db_update": place_db_update,
    "redis": place_redis,
    "redis_async": place_redis_async,
}


def order_place(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    if data.deal_line is None:
        return regular_order_place(user_id=user_id, data=data)
    return PIPELINES[settings.ORDER_PIPELINE](user_id=user_id, data=data)
