"""The lab's one invariant checker (docs/reliability.md), shared by the load tests
(`loadtest_prepare check`) and the chaos suite (`python -m apps.lab.chaos`).

It reads the record (PostgreSQL) and what the gate still holds after a run and returns one entry
per deal: `ok`, the named checks and the numbers behind them. What the clients saw is passed in:
the load tests pass a count of accepted purchases, the chaos suite the accepted order ids (every
201/202), so the checker can tell an accepted purchase that vanished from one that failed visibly.
"""

import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Sum

from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.models import Deal
from apps.orders.models import HOLDING, Order, OrderItem, OrderStatus
from apps.orders.services.reconcile import deal_reconcile


@dataclass(frozen=True)
class Accepted:
    """One 201/202 a client saw: the order id in its body, the shopper, the Idempotency-Key."""

    order_id: str
    user_id: str
    key: str | None = None


def backlog_wait(deal_id: uuid.UUID, *, timeout: float) -> int:
    """Waits for the writer to empty the deal's backlog; returns what is left."""
    deadline = time.monotonic() + timeout
    while gate.deal_backlog(deal_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    return gate.deal_backlog(deal_id)


def deal_invariants(
    *,
    deal_id: uuid.UUID,
    total_units: int,
    accepted: int | None = None,
    accepted_orders: Iterable[Accepted] | None = None,
    unanswered: int | None = None,
    closed: bool = False,
    timeout: float = 60.0,
) -> dict:
    """Checks one deal after a run.

    accepted: how many purchases the clients saw accepted, when nothing was cancelled or failed
      (the load tests): the non-cancelled orders must be exactly that many, or, with
      `unanswered`, at least that many and at most that many plus the unanswered (an overload
      run whose shoppers gave up waiting for answers, deal-overload).
    accepted_orders: every accepted answer (the chaos suite): each order id must be exactly one
      order row of this deal (any status) or a visible failed (dead-lettered) reservation, and
      answers to one Idempotency-Key must all name one order.
    unanswered: purchases whose client saw no answer or a 5xx; at most that many order rows may
      exist that no client was told about (a web process killed after the reservation).
    closed: the deal must be closed, nothing left pending.
    """
    backlog = backlog_wait(deal_id, timeout=timeout)
    deal = Deal.objects.get(pk=deal_id)
    orders = Order.objects.filter(deal_id=deal_id)
    holding = orders.filter(status__in=HOLDING)
    holding_count = holding.count()
    sold = (
        OrderItem.objects.filter(deal_id=deal_id, order__status__in=HOLDING).aggregate(
            u=Sum("quantity")
        )["u"]
        or 0
    )
    per_user = holding.values("user_id").annotate(
        units=Sum("items__quantity")
    )  # one item per deal order
    max_user = max((r["units"] for r in per_user), default=0)
    dup_keys = (
        orders.exclude(idempotency_key=None)
        .values("user_id", "idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    product = Product.objects.get(pk=deal.product_id)
    counters = gate.deal_counters(deal_id)
    remaining = counters.remaining if counters is not None else None
    # Redis counts the unsold units while the deal is open; a closed deal gave them back to the
    # product (a gate state still there after the close is the `deal_closed` check's finding).
    open_ = deal.closed_at is None
    live_remaining = remaining if remaining is not None and open_ else deal.remaining_stock
    conserved = product.stock + live_remaining + sold
    recon = deal_reconcile(deal_id=deal_id, repair=False)
    checks = {
        "backlog_drained": backlog == 0,
        "no_oversell": sold <= deal.deal_stock,
        "per_user_limit": max_user <= deal.per_user_limit,
        "no_duplicates": dup_keys == 0,
        # A closed deal gave its unsold units back to the product: its counter is 0.
        "db_counter": deal.remaining_stock == (0 if deal.closed_at else deal.deal_stock - sold),
        "stock_conserved": conserved == total_units,
        "reconcile_ok": recon.ok,
    }
    entry: dict = {
        "orders": holding_count,
        "failed_orders": orders.filter(status=OrderStatus.FAILED).count(),
        "sold": sold,
        "deal_stock": deal.deal_stock,
        "max_units_per_user": max_user,
        "per_user_limit": deal.per_user_limit,
        "duplicate_keys": dup_keys,
        "remaining_db": deal.remaining_stock,
        "remaining_redis": remaining,
        "product_stock": product.stock,
        "total_units": total_units,
        "reconcile_findings": recon.findings,
    }
    if accepted is not None and unanswered is not None and accepted_orders is None:
        checks["orders_explained"] = accepted <= holding_count <= accepted + unanswered
        entry["accepted"] = accepted
        entry["unanswered"] = unanswered
    elif accepted is not None:
        checks["orders_equal_accepted"] = holding_count == accepted
        entry["accepted"] = accepted
    if accepted_orders is not None:
        entry.update(_accepted_checks(deal_id, list(accepted_orders), unanswered, checks))
    if deal.room_enabled and open_ and remaining is not None:
        entry.update(_room_checks(deal, remaining, orders.count(), checks))
    if closed:
        # Closed, nothing pending, and no state left in the gate that could take a purchase.
        checks["deal_closed"] = not open_ and backlog == 0 and remaining is None
        entry["closed_at"] = deal.closed_at
    entry["checks"] = checks
    entry["ok"] = all(checks.values())
    return entry


def _room_checks(deal: Deal, remaining: int, orders: int, checks: dict) -> dict:
    """The admission invariant, for a deal whose waiting room was on throughout: admissions
    outstanding within the stock (remaining units x the overbooking factor), and no order without an
    admission (each purchase uses one up, so orders of any status <= shoppers ever admitted)."""
    room = gate.room_figures(deal.pk)
    cap = math.floor(remaining * deal.room_overbooking)
    checks["admissions_within_stock"] = room.admitted_now <= cap
    checks["orders_within_admissions"] = orders <= room.admitted
    figures = {"admitted_now": room.admitted_now, "admission_cap": cap, "admitted": room.admitted}
    return {"room": figures | {"lapsed": room.lapsed, "waiting": room.waiting}}


def _accepted_checks(
    deal_id: uuid.UUID, accepted: list[Accepted], unanswered: int | None, checks: dict
) -> dict:
    ids = {a.order_id for a in accepted}
    rows = dict(
        Order.objects.filter(pk__in=ids).values_list("id", "deal_id")
    )  # any status: cancelled and failed rows are still the one order
    written = {str(order_id) for order_id, row_deal in rows.items() if row_deal == deal_id}
    elsewhere = sorted(str(o) for o, row_deal in rows.items() if row_deal != deal_id)
    parked = gate.dead_letters_among(deal_id, sorted(ids - written))
    lost = sorted(ids - written - parked)
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in accepted:
        if a.key:
            by_key[(a.user_id, a.key)].add(a.order_id)
    split_keys = {f"{u}:{k}": sorted(o) for (u, k), o in by_key.items() if len(o) > 1}
    unacknowledged = Order.objects.filter(deal_id=deal_id).exclude(pk__in=ids).count()
    checks["accepted_found"] = not lost and not elsewhere
    checks["one_order_per_key"] = not split_keys
    if unanswered is not None:
        checks["no_unexplained_orders"] = unacknowledged <= unanswered
    return {
        "accepted": len(ids),
        "accepted_lost": lost,
        "accepted_in_other_deal": elsewhere,
        "accepted_failed_in_redis": sorted(parked),
        "keys_with_several_orders": split_keys,
        "orders_nobody_was_told_about": unacknowledged,
        "unanswered_requests": unanswered,
    }
