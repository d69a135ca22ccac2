"""Order reads."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch, QuerySet, Sum

from apps.core.pagination import Page
from apps.deals import gate

from .errors import IdempotencyKeyReused
from .models import HOLDING, Order, OrderItem, OrderStatus
from .placed import PlacedOrder


def order_get(*, order_id: UUID, user_id: UUID) -> Order | None:
    """The user's order with its items, or None (also for another user's order)."""
    return (
        Order.objects.filter(pk=order_id, user_id=user_id)
        .prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
        .first()
    )


def order_list(*, user_id: UUID, status: str | None = None) -> QuerySet[Order]:
    """Newest first. With ORDER_LIST_PREFETCH (the default) items come in one extra query for
    the whole page; without it each order's items load lazily (the N+1 "before")."""
    qs = Order.objects.filter(user_id=user_id).order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if settings.ORDER_LIST_PREFETCH:
        qs = qs.prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
    return qs


def order_or_reservation_get(*, order_id: UUID, user_id: UUID) -> PlacedOrder | None:
    """The user's order as PostgreSQL has it, else as the gate holds it (accepted and not
    written yet, or dead-lettered); None when neither has it for this user.

    Reads PostgreSQL, then Redis, then PostgreSQL again: a write that commits (and drops its
    pending copy) between the first two reads is found by the third."""
    order = order_get(order_id=order_id, user_id=user_id)
    if order is None:
        found = gate.reservation_lookup(order_id)
        if found is not None:
            state, reservation = found
            if reservation.user_id != str(user_id):
                return None  # another shopper's: as unknown as a missing one
            return PlacedOrder.reserved(reservation, state)
        order = order_get(order_id=order_id, user_id=user_id)
    return PlacedOrder.written(order) if order is not None else None


def order_list_page(*, user_id: UUID, status: str | None, page: Page) -> tuple[list[Order], int]:
    """One page of `order_list` and the total."""
    orders = order_list(user_id=user_id, status=status)
    return list(orders[page.offset : page.offset + page.size]), orders.count()


def order_for_idempotency_key(
    *, user_id: UUID, idempotency_key: str | None, request_hash: str
) -> PlacedOrder | None:
    """The order an earlier request with this Idempotency-Key created, if any; 409 if that
    request had a different body (`request_hash`)."""
    if not idempotency_key:
        return None
    order = (
        Order.objects.filter(user_id=user_id, idempotency_key=idempotency_key)
        .prefetch_related("items")
        .first()
    )
    if order is None:
        return None
    if order.request_hash != request_hash:
        raise IdempotencyKeyReused(details={"order_id": str(order.id)})
    return PlacedOrder.written(order)


def deal_units_held(*, deal_id: UUID, user_id: UUID) -> int:
    """Units the user holds in non-cancelled orders of this deal. Filters on the order's
    (user, deal), served by order_user_deal_idx: a hot deal has many items, a shopper few."""
    total = OrderItem.objects.filter(
        order__user_id=user_id, order__deal_id=deal_id, order__status__in=HOLDING
    ).aggregate(units=Sum("quantity"))["units"]
    return total or 0


def deal_holdings(*, deal_id: UUID) -> dict[str, int]:
    """{user_id: units} over the deal's non-cancelled orders."""
    rows = (
        OrderItem.objects.filter(deal_id=deal_id, order__status__in=HOLDING)
        .values("order__user_id")
        .annotate(units=Sum("quantity"))
    )
    return {str(r["order__user_id"]): r["units"] for r in rows}


class DealSnapshot(NamedTuple):
    held: dict[str, int]  # user_id -> units in the deal's non-cancelled orders
    seen: set[str]  # which of the given order ids are written
    rows: int  # the deal's order rows, any status
    cancelled: list[tuple[str, str, int]]  # (order_id, user_id, units) cancelled since ...


def deal_holdings_snapshot(
    *, deal_id: UUID, order_ids: Iterable[str], cancelled_since: datetime
) -> DealSnapshot:
    """The deal's books read in ONE statement, so all parts come from the same snapshot: a
    writer or a cancel committing meanwhile is either in all of them or in none."""
    sql = """
        SELECT o.user_id::text, SUM(i.quantity)::int, 'held'
          FROM orders_orderitem i JOIN orders_order o ON o.id = i.order_id
         WHERE i.deal_id = %s AND o.status = ANY(%s)
         GROUP BY o.user_id
        UNION ALL
        SELECT id::text, 0, 'seen' FROM orders_order WHERE id = ANY(%s::uuid[])
        UNION ALL
        SELECT '', count(*)::int, 'rows' FROM orders_order WHERE deal_id = %s
        UNION ALL
        SELECT o.id::text || ' ' || o.user_id::text, i.quantity, 'cancelled'
          FROM orders_orderitem i JOIN orders_order o ON o.id = i.order_id
         WHERE i.deal_id = %s AND o.status = %s AND o.cancelled_at >= %s
    """
    params: list[Any] = [deal_id, list(HOLDING), list(order_ids), deal_id]
    params += [deal_id, OrderStatus.CANCELLED, cancelled_since]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return DealSnapshot(
        held={key: units for key, units, kind in rows if kind == "held"},
        seen={key for key, _, kind in rows if kind == "seen"},
        rows=next(units for _, units, kind in rows if kind == "rows"),
        cancelled=[(*key.split(" "), units) for key, units, kind in rows if kind == "cancelled"],
    )


def deal_orders_written(*, deal_id: UUID | str) -> int:
    """Order rows of the deal, whatever their status (each was one accepted purchase)."""
    return Order.objects.filter(deal_id=deal_id).count()


def deal_idempotency_keys(*, deal_id: UUID) -> dict[str, str]:
    """{"<user_id>:<key>": "<order_id>|<request hash>"} of the deal's orders sent with a key,
    in reserve.lua's idem format (for rebuilding a lost deal state)."""
    rows = Order.objects.filter(deal_id=deal_id, idempotency_key__isnull=False).values_list(
        "user_id", "idempotency_key", "id", "request_hash"
    )
    return {f"{user}:{key}": f"{order_id}|{digest}" for user, key, order_id, digest in rows}


def orders_existing(order_ids: Iterable[str]) -> set[str]:
    ids = list(order_ids)
    if not ids:
        return set()
    return {str(pk) for pk in Order.objects.filter(pk__in=ids).values_list("pk", flat=True)}
