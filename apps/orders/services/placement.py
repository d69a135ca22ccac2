"""POST /orders: regular orders in one transaction; deal orders through the configured
pipeline (settings.ORDER_PIPELINE, docs/architecture.md)."""

import uuid
from collections.abc import Callable

from django.conf import settings

from apps.deals import gate
from apps.deals.gate import Claim

from ..errors import DealSoldOut, IdempotencyKeyReused
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
    _raise_if_known_sold_out(user_id, data)
    if data.deal_line is None or settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        _claim_idempotency_key(user_id=user_id, data=data)
    # else reserve.lua takes the claim in its own atomic step (redis_pipelines._reserve)
    if data.deal_line is None:
        return regular_order_place(user_id=user_id, data=data)
    try:
        return PIPELINES[settings.ORDER_PIPELINE](user_id=user_id, data=data)
    except DealSoldOut:  # from the gate, or from PostgreSQL in the database pipelines
        gate.sold_out_remember(data.deal_line.deal_id, data.deal_line.product_id)
        raise


def _raise_if_known_sold_out(user_id: uuid.UUID, data: OrderInput) -> None:
    """A deal this process saw sell out moments ago is answered from memory, before any Redis
    or database call (apps.deals.gate.sold_out), with the gate's own error and details. A
    purchase with an Idempotency-Key by a shopper who bought the deal with a key goes to the
    gate: it may be the retry of an accepted purchase, whose answer is its order."""
    line = data.deal_line
    if line is None:
        return
    keyed_by = user_id if data.idempotency_key is not None else None
    if gate.sold_out_known(line.deal_id, line.product_id, keyed_by=keyed_by):
        raise DealSoldOut(details={"deal_id": str(line.deal_id), "reason": "sold_out"})


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
