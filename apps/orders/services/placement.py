"""POST /orders: regular orders in one transaction; deal orders through the configured
pipeline (settings.ORDER_PIPELINE, spec section 5)."""

import uuid
from collections.abc import Callable

from django.conf import settings

from apps.deals import gate
from apps.deals.gate import Claim

from ..errors import IdempotencyKeyReused
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
    if data.deal_line is None or settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        _claim_idempotency_key(user_id=user_id, data=data)
    # else reserve.lua takes the claim in its own atomic step (redis_pipelines._reserve)
    if data.deal_line is None:
        return regular_order_place(user_id=user_id, data=data)
    return PIPELINES[settings.ORDER_PIPELINE](user_id=user_id, data=data)


def _claim_idempotency_key(*, user_id: uuid.UUID, data: OrderInput) -> None:
    """Binds the request's Idempotency-Key to its body across all of the shopper's orders,
    before any reservation or transaction (apps.deals.gate.idempotency): another body under
    the key is 409 here, whichever deal or regular order had it first; the same body goes on,
    and the pipeline returns the original order. No key, no Redis call. Redis down: 503."""
    if data.idempotency_key is None or settings.ORDER_UNSAFE_SKIP_IDEMPOTENCY_CLAIM:
        return  # the setting is a test-only negative control (settings/base.py)
    claim = gate.idempotency_claim(
        user_id=user_id, key=data.idempotency_key, request_hash=data.request_hash
    )
    if claim == Claim.OTHER_BODY:
        if data.deal_line is not None:  # the deal's answers, for the console (best effort)
            gate.purchase_outcome_record(
                deal_id=data.deal_line.deal_id, error_code=IdempotencyKeyReused.code
            )
        raise IdempotencyKeyReused()
