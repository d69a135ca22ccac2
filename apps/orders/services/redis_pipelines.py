"""The Redis pipelines (docs/architecture.md): the gate decides in one atomic step (reserve.lua),
PostgreSQL records.

redis       reserve.lua decides, then this request writes the row            -> 201
redis_async reserve.lua also appends to the deal's stream; the batch writer
            inserts shortly after (apps.orders.services.drain)                -> 202

reserve.lua counts its own answer for the console in the same call.
"""

import contextlib
import logging
import uuid
from typing import Literal

import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from apps.accounts.errors import AccessRevoked
from apps.core.errors import ApplicationError, ServiceUnavailable
from apps.deals import gate
from apps.deals.gate import Outcome, Reservation, ReservationState, ReserveResult
from apps.deals.models import Deal

from ..errors import (
    DealLimitExceeded,
    DealNotActive,
    DealSoldOut,
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidDeal,
    NotAdmitted,
)
from ..models import OrderStatus
from ..placed import PlacedOrder
from ..selectors import order_for_idempotency_key, order_or_reservation_get
from ..tasks import drain_deal_stream_task
from .deal_checks import deal_checked
from .gate_state import deal_state_rebuild, deal_state_restore
from .inputs import OrderInput
from .writer import (
    DealCounterMismatch,
    IdempotencyKeyClash,
    PerUserLimitExceeded,
    ShopperGone,
    WriteRefused,
    reservations_write,
)

logger = logging.getLogger(__name__)


def place_redis(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Redis decides; the request then writes the order itself. If the write fails the units go
    back (503); if this process dies in between, the reservation stays in the deal's `pending`
    hash and the sweep writes it (apps.orders.services.drain.pending_sweep)."""
    result = _reserve(user_id=user_id, data=data, mode="sync")
    if result.outcome == Outcome.DUPLICATE:
        return _duplicate(result, user_id)
    reservation = result.reservation
    assert reservation is not None
    try:
        reservations_write(reservation.deal_id, [reservation])
    except redis.RedisError:
        # Only reservations_write's last step talks to Redis, after PostgreSQL committed the
        # order: forgetting its pending copy failed. The order exists, so it is the answer; the
        # sweep drops the copy once Redis is back (writing it again inserts nothing).
        logger.warning("order %s written; its pending copy is left to the sweep",
                       reservation.order_id)  # fmt: skip
    except (DatabaseError, WriteRefused) as exc:
        try:
            gate.deal_release(
                deal_id=reservation.deal_id,
                user_id=user_id,
                quantity=reservation.quantity,
                order_id=reservation.order_id,
                forget_key=reservation.idempotency_key,  # never written: a retry is new
            )
        except redis.RedisError as lost:  # still pending in Redis: the sweep writes or parks it
            raise ServiceUnavailable("The order could not be written; retry shortly.") from lost
        # The key belongs to another order: that order (a retry), or 409 (another body).
        if isinstance(exc, IdempotencyKeyClash) and (
            existing := order_for_idempotency_key(user_id=user_id, **data.keyed)
        ):
            return existing
        if isinstance(exc, ShopperGone):
            raise AccessRevoked() from exc
        if isinstance(exc, DealCounterMismatch | PerUserLimitExceeded):
            deal_state_rebuild(reservation.deal_id)  # the gate's counters are proven wrong
        if isinstance(exc, PerUserLimitExceeded):
            held = exc.held - reservation.quantity  # what PostgreSQL had before this one
            raise DealLimitExceeded(details={"held": held, "limit": exc.limit}) from exc
        raise ServiceUnavailable("The order could not be written; retry shortly.") from exc
    return PlacedOrder.reserved(reservation, OrderStatus.CONFIRMED)


def place_redis_async(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Redis decides and queues; answers 202 at once. The writer confirms within milliseconds."""
    result = _reserve(user_id=user_id, data=data, mode="async")
    if result.outcome == Outcome.DUPLICATE:
        return _duplicate(result, user_id)
    assert result.reservation is not None
    if result.kick:
        _start_writer(result.reservation.deal_id)
    return PlacedOrder.reserved(result.reservation, ReservationState.PENDING)


def _start_writer(deal_id: str) -> None:
    """The purchase is accepted and durable in the stream whatever happens here: a broker
    error must not turn it into a 500 (a retry would then be refused as over the limit). The
    drain flag reserve.lua took is given back so the maintenance beat starts a writer at its
    next run (every few seconds) instead of after the flag's lease."""
    try:
        drain_deal_stream_task.delay(deal_id)
    except Exception:  # noqa: BLE001 - kombu/redis errors of any broker transport
        logger.warning("could not start a writer for deal %s; the beat will", deal_id)
        with contextlib.suppress(redis.RedisError):
            gate.drain_flag_clear(deal_id)


def _reserve(
    *, user_id: uuid.UUID, data: OrderInput, mode: Literal["sync", "async"]
) -> ReserveResult:
    line = data.deal_line
    assert line is not None
    reservation = Reservation.new(
        user_id=user_id,
        quantity=line.quantity,
        created_at=timezone.now(),
        request_hash=data.request_hash,
        idempotency_key=data.idempotency_key,
        shipping=data.shipping,
    )

    # A forged, altered, expired or other shopper's admission counts as none: the script then
    # answers NOT_ADMITTED if the room is on (a retry of a purchase it already accepted still
    # finds its order first), and nothing if it is off.
    admitted_at = (
        gate.admission_check(data.admission, deal_id=line.deal_id, user_id=user_id)
        if data.admission
        else None
    )

    def reserve() -> ReserveResult:
        return gate.deal_reserve(
            deal_id=line.deal_id,
            product_id=line.product_id,
            reservation=reservation,
            mode=mode,
            # The Idempotency-Key's claim rides in the script (one fsync, no round trip of its
            # own); the setting is a test-only negative control (settings/base.py).
            claim=not settings.ORDER_UNSAFE_SKIP_IDEMPOTENCY_CLAIM,
            admitted_at=admitted_at,
        )

    result = reserve()
    if result.outcome == Outcome.NOT_LOADED:
        try:
            _restore_state(data)
        except ApplicationError as exc:  # decided by PostgreSQL, not by the script: count it
            gate.purchase_outcome_record(deal_id=line.deal_id, error_code=exc.code)
            raise
        result = reserve()
    _raise_for(result, data)
    return result


def _restore_state(data: OrderInput) -> None:
    """The deal has no state in Redis: answer from PostgreSQL why not, or rebuild it (one
    request at a time; the others fail closed with 503 until it is back)."""
    line = data.deal_line
    assert line is not None
    deal = deal_checked(
        Deal.objects.select_related("product").filter(pk=line.deal_id).first(),
        line,
        timezone.now(),
    )  # 404 / INVALID_DEAL / not active / sold out in the database
    deal_state_restore(deal)


_REFUSED = {
    Outcome.NOT_STARTED: DealNotActive,
    Outcome.ENDED: DealNotActive,
    Outcome.PAUSED: DealNotActive,
    Outcome.SOLD_OUT: DealSoldOut,
    Outcome.WRONG_PRODUCT: InvalidDeal,
    Outcome.NO_ADMISSION: NotAdmitted,
}


def _raise_for(result: ReserveResult, data: OrderInput) -> None:
    """The contract's error for every outcome but OK and DUPLICATE."""
    assert data.deal_line is not None
    deal_id = str(data.deal_line.deal_id)
    match result.outcome:
        case Outcome.OK | Outcome.DUPLICATE:
            return
        case Outcome.KEY_REUSED:
            # No order id when the claim knew the key from another deal or a regular order.
            details = {"order_id": result.order_id} if result.order_id else None
            raise IdempotencyKeyReused(details=details)
        case Outcome.INSUFFICIENT:
            raise InsufficientStock(details={"deal_id": deal_id, "available": result.remaining})
        case Outcome.LIMIT:
            raise DealLimitExceeded(details={"held": result.held, "limit": result.limit})
        case Outcome.NOT_LOADED:
            raise ServiceUnavailable("The deal is being restored; retry shortly.", retry_after=1)
    error = _REFUSED[result.outcome]
    raise error(details={"deal_id": deal_id, "reason": result.outcome.lower()})


def _duplicate(result: ReserveResult, user_id: uuid.UUID) -> PlacedOrder:
    """A retry of an accepted purchase: the existing order, written or still pending."""
    assert result.order_id is not None
    found = order_or_reservation_get(order_id=uuid.UUID(result.order_id), user_id=user_id)
    if found is None:
        raise ServiceUnavailable("The earlier order is being written; retry shortly.")
    return found
