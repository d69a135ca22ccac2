"""The four deal-order pipelines (spec section 5). Each keeps every invariant; the "before"
variants are slower, never wrong. Chosen by settings.ORDER_PIPELINE.

db_lock     SELECT ... FOR UPDATE on the deal row, check, decrement, insert   -> 201
db_update   conditional UPDATE (remaining >= q) takes the row lock, insert    -> 201
redis       reserve.lua decides atomically in Redis, then the row is inserted -> 201
redis_async reserve.lua also appends to the deal's stream; the batch writer
            inserts shortly after                                             -> 202
"""

import logging
import uuid
from datetime import datetime

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import ApplicationError, ServiceUnavailable
from apps.deals import gate
from apps.deals.models import Deal, DealStatus
from apps.deals.stats import purchase_outcome_record

from ..errors import (
    DealLimitExceeded,
    DealNotActive,
    DealNotFound,
    DealSoldOut,
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidDeal,
)
from ..models import Order, OrderStatus
from ..selectors import deal_units_held, order_get
from .inputs import OrderInput
from .placement import PlacedOrder, existing_for_key
from .records import confirmed_deal_order
from .writer import IdempotencyKeyClash, WriteRefused, reservations_write

logger = logging.getLogger(__name__)
LOCK_TIMEOUT = "2s"


# --- database pipelines ------------------------------------------------------------------------


def _deal_checked(deal: Deal | None, data: OrderInput, now: datetime) -> Deal:
    """Raises the contract's error for a deal that can't sell `data`'s line right now."""
    line = data.deal_line
    if deal is None:
        raise DealNotFound(details={"deal_id": str(line.deal_id)})
    if deal.product_id != line.product_id:
        raise InvalidDeal(details={"deal_id": str(deal.id), "product_id": str(line.product_id)})
    status = deal.status_at(now)
    if status == DealStatus.SOLD_OUT:
        raise DealSoldOut(details={"deal_id": str(deal.id)})
    if status != DealStatus.ACTIVE:
        raise DealNotActive(details={"deal_id": str(deal.id), "status": status})
    if deal.remaining_stock < line.quantity:
        raise InsufficientStock(
            details={"deal_id": str(deal.id), "available": deal.remaining_stock}
        )
    return deal


def _check_limit(deal: Deal, user_id: uuid.UUID, quantity: int) -> None:
    """Runs while the deal row is locked, so no concurrent purchase of this deal can interleave."""
    held = deal_units_held(deal_id=deal.id, user_id=user_id)
    if held + quantity > deal.per_user_limit:
        raise DealLimitExceeded(details={"held": held, "limit": deal.per_user_limit})


def _insert_confirmed(*, user_id, data: OrderInput, deal: Deal, now) -> PlacedOrder:
    order, item = confirmed_deal_order(
        order_id=uuid.uuid4(), user_id=user_id, data=data, deal=deal, created_at=now
    )
    order.save(force_insert=True)
    item.save(force_insert=True)
    return PlacedOrder(order=order, items=[item])


def _run_locked(place, *, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Common frame of the database pipelines: idempotent replay, a lock timeout that becomes a
    retryable 503, and the unique-key race resolved by re-reading the winner."""
    if existing := existing_for_key(user_id=user_id, data=data):
        return existing
    try:
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            return place(user_id=user_id, data=data, now=timezone.now())
    except IntegrityError:
        if existing := existing_for_key(user_id=user_id, data=data):
            return existing
        raise
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise ServiceUnavailable("The deal is busy; retry shortly.", retry_after=1) from exc
        raise


def _db_lock(*, user_id, data: OrderInput, now) -> PlacedOrder:
    line = data.deal_line
    deal = Deal.objects.select_for_update().select_related("product").filter(pk=line.deal_id)
    deal = _deal_checked(deal.first(), data, now)
    _check_limit(deal, user_id, line.quantity)
    Deal.objects.filter(pk=deal.pk).update(
        remaining_stock=F("remaining_stock") - line.quantity, updated_at=now
    )
    return _insert_confirmed(user_id=user_id, data=data, deal=deal, now=now)


def _db_update(*, user_id, data: OrderInput, now) -> PlacedOrder:
    line = data.deal_line
    updated = Deal.objects.filter(
        pk=line.deal_id,
        product_id=line.product_id,
        remaining_stock__gte=line.quantity,
        published_at__isnull=False,
        paused_at__isnull=True,
        ended_at__isnull=True,
        closed_at__isnull=True,
        starts_at__lte=now,
        ends_at__gt=now,
    ).update(remaining_stock=F("remaining_stock") - line.quantity, updated_at=now)
    deal = Deal.objects.select_related("product").filter(pk=line.deal_id).first()
    if not updated:
        _deal_checked(deal, data, now)  # raises the precise reason
        raise DealSoldOut(details={"deal_id": str(line.deal_id)})  # lost a race to the last unit
    # The UPDATE holds the row lock until commit: the limit check below is serialised.
    _check_limit(deal, user_id, line.quantity)
    return _insert_confirmed(user_id=user_id, data=data, deal=deal, now=now)


def place_db_lock(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    return _run_locked(_db_lock, user_id=user_id, data=data)


def place_db_update(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    return _run_locked(_db_update, user_id=user_id, data=data)


# --- Redis pipelines -----------------------------------------------------------------------------


def _reserve(*, user_id: uuid.UUID, data: OrderInput, mode: str) -> gate.ReserveResult:
    line = data.deal_line
    order_id = uuid.uuid4()
    reservation = {
        "order_id": str(order_id),
        "item_id": str(uuid.uuid4()),
        "user_id": str(user_id),
        "quantity": line.quantity,
        "idempotency_key": data.idempotency_key,
        "request_hash": data.request_hash,
        "shipping": data.shipping,
        "created_at": timezone.now().isoformat(),
    }
    request = {
        "deal_id": line.deal_id,
        "product_id": line.product_id,
        "user_id": user_id,
        "quantity": line.quantity,
        "order_id": order_id,
        "idempotency_key": data.idempotency_key,
        "request_hash": data.request_hash,
        "reservation": reservation,
        "mode": mode,
    }
    result = gate.deal_reserve(**request)  # counts its own answer for the console
    if result.outcome == "NOT_LOADED":
        try:
            _recover_state(data)
        except ApplicationError as exc:  # decided by PostgreSQL, not by the script: count it
            purchase_outcome_record(deal_id=line.deal_id, error_code=exc.code)
            raise
        result = gate.deal_reserve(**request)
    _raise_for(result, data)
    return result


def _recover_state(data: OrderInput) -> None:
    """The deal has no state in Redis: answer from PostgreSQL why not, or rebuild it (one
    request at a time; the others fail closed with 503 until it is back)."""
    line = data.deal_line
    now = timezone.now()
    deal = Deal.objects.select_related("product").filter(pk=line.deal_id).first()
    _deal_checked(deal, data, now)  # 404 / INVALID_DEAL / not active / sold out in the DB
    if not gate.rebuild_lock(deal.id):
        raise ServiceUnavailable("The deal is being restored; retry shortly.", retry_after=1)
    try:
        gate.deal_state_load(deal)
    finally:
        gate.rebuild_unlock(deal.id)


_OUTCOME_ERRORS = {
    "NOT_STARTED": DealNotActive,
    "ENDED": DealNotActive,
    "PAUSED": DealNotActive,
    "SOLD_OUT": DealSoldOut,
    "WRONG_PRODUCT": InvalidDeal,
}


def _raise_for(result: gate.ReserveResult, data: OrderInput) -> None:
    deal_id = str(data.deal_line.deal_id)
    if result.outcome in ("OK", "DUPLICATE"):
        return
    if result.outcome == "KEY_REUSED":
        raise IdempotencyKeyReused(details={"order_id": result.order_id})
    if result.outcome == "INSUFFICIENT":
        raise InsufficientStock(details={"deal_id": deal_id, "available": result.remaining})
    if result.outcome == "LIMIT":
        raise DealLimitExceeded(details={"held": result.held, "limit": result.limit})
    if result.outcome == "NOT_LOADED":
        raise ServiceUnavailable("The deal is being restored; retry shortly.", retry_after=1)
    error = _OUTCOME_ERRORS[result.outcome]
    raise error(details={"deal_id": deal_id, "reason": result.outcome.lower()})


def _duplicate(result: gate.ReserveResult, user_id: uuid.UUID) -> PlacedOrder:
    """A retry of an accepted purchase: the existing order, written or still pending. Reads
    PostgreSQL, then Redis, then PostgreSQL again: a write that commits (and drops its pending
    copy) between the first two reads is found by the third."""
    order = order_get(order_id=result.order_id, user_id=user_id)
    if order is None:
        if found := gate.reservation_lookup(result.order_id):
            status, reservation = found
            return pending_order(reservation, status=status)
        order = order_get(order_id=result.order_id, user_id=user_id)
    if order is None:
        raise ServiceUnavailable("The earlier order is being written; retry shortly.")
    return PlacedOrder(order=order, items=list(order.items.all()))


def pending_order(reservation: dict, *, status: str = OrderStatus.PENDING) -> PlacedOrder:
    """An answer straight from a reservation, before (or instead of) reading the order row."""
    return PlacedOrder(
        reservation=reservation, status=status, accepted_async=status == OrderStatus.PENDING
    )


def place_redis(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Redis decides; the request then writes the order itself. If the write fails the units go
    back (503); if this process dies in between, the reservation stays in the deal's `pending`
    hash and the sweep writes it (apps.orders.services.stream.pending_sweep)."""
    result = _reserve(user_id=user_id, data=data, mode="sync")
    if result.outcome == "DUPLICATE":
        return _duplicate(result, user_id)
    reservation = result.reservation
    try:
        reservations_write(data.deal_line.deal_id, [reservation])
    except (DatabaseError, WriteRefused) as exc:
        gate.deal_release(
            deal_id=data.deal_line.deal_id,
            user_id=user_id,
            quantity=data.deal_line.quantity,
            order_id=reservation["order_id"],
        )
        # The key belongs to another order: that order (a retry), or 409 (another body).
        if isinstance(exc, IdempotencyKeyClash) and (
            existing := existing_for_key(user_id=user_id, data=data)
        ):
            return existing
        raise ServiceUnavailable("The order could not be written; retry shortly.") from exc
    return pending_order(reservation, status=OrderStatus.CONFIRMED)


def place_redis_async(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Redis decides and queues; answers 202 at once. The writer confirms within milliseconds."""
    result = _reserve(user_id=user_id, data=data, mode="async")
    if result.outcome == "DUPLICATE":
        return _duplicate(result, user_id)
    if result.kick:
        from ..tasks import drain_deal_stream_task

        drain_deal_stream_task.delay(str(data.deal_line.deal_id))
    return pending_order(result.reservation)


def _counted(place):
    """Counts each answered purchase of a database pipeline for the live console and metrics:
    one pipelined Redis round trip, no database query (apps.deals.stats). The Redis pipelines
    count inside reserve.lua instead."""

    def counted(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
        try:
            placed = place(user_id=user_id, data=data)
        except ApplicationError as exc:
            purchase_outcome_record(deal_id=data.deal_line.deal_id, error_code=exc.code)
            raise
        purchase_outcome_record(deal_id=data.deal_line.deal_id)
        return placed

    return counted


PIPELINES = {
    "db_lock": _counted(place_db_lock),
    "db_update": _counted(place_db_update),
    "redis": place_redis,
    "redis_async": place_redis_async,
}

__all__ = ["PIPELINES", "Order", "pending_order"]
