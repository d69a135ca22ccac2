"""The database pipelines (docs/architecture.md): PostgreSQL decides and records in one transaction.

db_lock     SELECT ... FOR UPDATE on the deal row, check, decrement, insert   -> 201
db_update   conditional UPDATE (remaining >= q) takes the row lock, insert    -> 201

Both answer 201 with a confirmed order, and both serialise the per-user limit check on the deal
row's lock. They are the "before" of the lab: slower than the Redis pipelines, never wrong.
"""

import uuid
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from apps.core.errors import ApplicationError, ServiceUnavailable
from apps.core.locks import locked
from apps.deals import gate
from apps.deals.gate import DealTerms, Reservation
from apps.deals.models import Deal

from ..errors import DealLimitExceeded, DealSoldOut
from ..models import OrderStatus
from ..placed import PlacedOrder
from ..selectors import deal_units_held, order_for_idempotency_key
from .deal_checks import deal_checked
from .inputs import OrderInput
from .rows import deal_order_rows
from .shoppers import raise_if_shopper_gone

LOCK_TIMEOUT = "2s"

Place = Callable[..., PlacedOrder]


class _AlreadyPlaced(Exception):
    """A concurrent request with the same Idempotency-Key placed the order while this one
    waited for the deal row: roll back and answer with that order."""

    def __init__(self, placed: PlacedOrder) -> None:
        self.placed = placed


def _raise_if_placed(user_id: uuid.UUID, data: OrderInput) -> None:
    """Run once the deal row's lock was waited for: a retry queued behind its own original
    finds that order, before the stock or the limit (which the original took) refuse it."""
    if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
        raise _AlreadyPlaced(existing)


def _check_limit(deal: Deal, user_id: uuid.UUID, data: OrderInput) -> None:
    """Runs while the deal row is locked, so no concurrent purchase of this deal can interleave.
    (The test-only setting ORDER_UNSAFE_SKIP_DEAL_LOCK takes that lock away from db_lock, so the
    negative control in apps/orders/tests/test_concurrency.py races this very check.)"""
    assert data.deal_line is not None
    quantity = data.deal_line.quantity
    held = deal_units_held(deal_id=deal.id, user_id=user_id)
    if held + quantity > deal.per_user_limit:
        raise DealLimitExceeded(details={"held": held, "limit": deal.per_user_limit})


def _insert_confirmed(
    *, user_id: uuid.UUID, data: OrderInput, deal: Deal, now: datetime
) -> PlacedOrder:
    line = data.deal_line
    assert line is not None
    reservation = Reservation.new(
        user_id=user_id, quantity=line.quantity, created_at=now, request_hash=data.request_hash,
        idempotency_key=data.idempotency_key, shipping=data.shipping,
        deal=DealTerms(deal.id, deal.product_id, deal.product.name, deal.deal_price),
    )  # fmt: skip
    order, item = deal_order_rows(reservation, status=OrderStatus.CONFIRMED)
    order.save(force_insert=True)
    item.save(force_insert=True)
    return PlacedOrder(order=order, items=[item], status=order.status)


def _run_locked(place: Place, *, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """Common frame of the database pipelines: idempotent replay (`_raise_if_placed`, once the
    deal row's lock is held: one lookup serves a plain retry and one queued behind its
    original), a lock timeout that becomes a retryable 503, and the unique-key race resolved by
    re-reading the winner (or 401 for a shopper deleted meanwhile)."""
    try:
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            return place(user_id=user_id, data=data, now=timezone.now())
    except _AlreadyPlaced as already:  # raised inside the transaction: it rolled back
        return already.placed
    except IntegrityError as exc:
        if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
            return existing
        raise_if_shopper_gone(exc, user_id=user_id)
        raise
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise ServiceUnavailable("The deal is busy; retry shortly.", retry_after=1) from exc
        # A lost connection, a failover, a server shutting down: nothing was committed.
        raise ServiceUnavailable("The order could not be placed; retry shortly.") from exc


def _db_lock(*, user_id: uuid.UUID, data: OrderInput, now: datetime) -> PlacedOrder:
    line = data.deal_line
    assert line is not None
    deals: QuerySet[Deal] = Deal.objects.select_related("product").filter(pk=line.deal_id)
    if not settings.ORDER_UNSAFE_SKIP_DEAL_LOCK:  # test-only negative control when set
        deals = locked(deals)
    found = deals.first()
    _raise_if_placed(user_id, data)
    deal = deal_checked(found, line, now)
    _check_limit(deal, user_id, data)
    Deal.objects.filter(pk=deal.pk).update(
        remaining_stock=F("remaining_stock") - line.quantity, updated_at=now
    )
    return _insert_confirmed(user_id=user_id, data=data, deal=deal, now=now)


def _db_update(*, user_id: uuid.UUID, data: OrderInput, now: datetime) -> PlacedOrder:
    line = data.deal_line
    assert line is not None
    updated = (
        Deal.objects.selling(now)
        .filter(pk=line.deal_id, product_id=line.product_id, remaining_stock__gte=line.quantity)
        # No admission step here: a deal behind a waiting room fails closed (deal_checked says
        # why) instead of selling to whoever did not queue.
        .filter(room_enabled=False)
        .update(remaining_stock=F("remaining_stock") - line.quantity, updated_at=now)
    )
    deal = Deal.objects.select_related("product").filter(pk=line.deal_id).first()
    _raise_if_placed(user_id, data)  # the UPDATE waited for the row's lock if it was held
    if not updated:
        deal_checked(deal, line, now)  # raises the precise reason
        raise DealSoldOut(details={"deal_id": str(line.deal_id)})  # lost a race to the last unit
    assert deal is not None
    # The UPDATE holds the row lock until commit: the limit check below is serialised.
    _check_limit(deal, user_id, data)
    return _insert_confirmed(user_id=user_id, data=data, deal=deal, now=now)


def _counted(place: Place) -> Place:
    """Counts each answered purchase for the live console and metrics: one pipelined Redis
    round trip, no database query (apps.deals.gate.stats). The Redis pipelines count inside
    reserve.lua instead."""

    def counted(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
        assert data.deal_line is not None
        deal_id = data.deal_line.deal_id
        try:
            placed = _run_locked(place, user_id=user_id, data=data)
        except ApplicationError as exc:
            gate.purchase_outcome_record(deal_id=deal_id, error_code=exc.code)
            raise
        gate.purchase_outcome_record(deal_id=deal_id)
        return placed

    return counted


place_db_lock = _counted(_db_lock)
place_db_update = _counted(_db_update)
