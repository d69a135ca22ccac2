"""Rebuilding a deal's gate state from the orders' books.

The gate (apps.deals.gate) owns the Redis keys but not the orders: when Redis has lost a
deal's state, this module hands it what PostgreSQL knows, so the rebuilt counters count every
unit already sold.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import NamedTuple
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.errors import ServiceUnavailable
from apps.deals import gate
from apps.deals.gate import Holdings, Reservation
from apps.deals.models import Deal

from ..selectors import deal_holdings_snapshot, deal_idempotency_keys, deal_orders_written

logger = logging.getLogger(__name__)

# A cancellation gives its units back in Redis just after its commit (on_commit). Until that
# lands, Redis still counts them as held; a rebuild and reconciliation must know which
# cancellations may still be on their way.
RELEASE_GRACE = timedelta(minutes=10)


class Books(NamedTuple):
    held: dict[str, int]  # user_id -> units in non-cancelled orders plus unwritten reservations
    accepted: int  # purchases ever accepted: order rows plus unwritten reservations
    unwritten: list[Reservation]  # accepted reservations not yet written
    # (order_id, user_id, units) cancelled within RELEASE_GRACE: their release may not have
    # landed in Redis yet
    cancelled: list[tuple[str, str, int]]

    @property
    def unwritten_units(self) -> int:
        return sum(r.quantity for r in self.unwritten)


def deal_books(deal: Deal, pending: Mapping[str, Reservation]) -> Books:
    """What PostgreSQL plus the accepted-but-unwritten reservations say the deal has sold, from
    one statement. `pending` must be snapshotted BEFORE this runs: a reservation written in
    between is then found in the database and counted once."""
    snapshot = deal_holdings_snapshot(
        deal_id=deal.id,
        order_ids=pending.keys(),
        cancelled_since=timezone.now() - RELEASE_GRACE,
    )
    held = snapshot.held
    unwritten = [r for order_id, r in pending.items() if order_id not in snapshot.seen]
    for reservation in unwritten:
        held[reservation.user_id] = held.get(reservation.user_id, 0) + reservation.quantity
    return Books(
        held,
        accepted=snapshot.rows + len(unwritten),
        unwritten=unwritten,
        cancelled=snapshot.cancelled,
    )


def deal_state_ensure(deal: Deal) -> bool:
    """Makes sure a published, not closed deal has its state in Redis: syncs the flags when it
    is there, rebuilds it from PostgreSQL plus the pending reservations when it is not. True
    when it was (re)built. `deal` comes with its product (select_related)."""
    try:
        if gate.deal_state_loaded(deal.id):
            gate.deal_state_sync(deal)
            return False
        pending = gate.pending_snapshot(deal.id)  # first, then PostgreSQL (see above)
    except redis.RedisError as exc:  # the gate fails closed
        raise ServiceUnavailable("The deal gate is unavailable; retry shortly.") from exc
    books = deal_books(deal, pending)
    holdings = Holdings(
        units=books.held,
        accepted=books.accepted,
        unwritten=[(r.order_id, r.user_id, r.quantity) for r in books.unwritten],
        idempotency_keys=deal_idempotency_keys(deal_id=deal.id),
        released=[order_id for order_id, _, _ in books.cancelled],
    )
    installed = gate.deal_state_load(deal, pending=pending, holdings=holdings)
    if installed:
        # `deal` was read before the rebuild; an operator who paused or ended it meanwhile had
        # nothing to sync (no state). Sync the row as it is now: the version check keeps the
        # newer flags either way.
        gate.deal_state_sync(Deal.objects.get(pk=deal.id))
    return installed


def deal_state_restore(deal: Deal) -> None:
    """A request found the deal's state missing: one request at a time rebuilds it (the others
    fail closed with 503 until it is back)."""
    if not gate.rebuild_lock(deal.id):
        raise ServiceUnavailable("The deal is being restored; retry shortly.", retry_after=1)
    try:
        deal_state_ensure(deal)
    finally:
        gate.rebuild_unlock(deal.id)


def deal_state_rebuild_if_behind(deal_id: UUID | str) -> None:
    """A gate that lost writes (its count of accepted purchases is below PostgreSQL's rows: a
    restore, a failover to a replica that had not caught up) is rebuilt now rather than at the
    next purchase (the maintenance beat). Only the Redis pipelines keep the gate's count."""
    _rebuild(deal_id, lambda: gate.deal_state_behind(
        deal_id, written=deal_orders_written(deal_id=deal_id)
    ))  # fmt: skip


def deal_state_rebuild(deal_id: UUID | str) -> None:
    """The gate sold what PostgreSQL refused (a unit it no longer has, a shopper over the
    limit): its counters are proven wrong (it came back from an older state, or lost a key), so
    they are dropped and rebuilt now, before it sells more. Called by the writers."""

    def forget() -> bool:
        gate.deal_state_forget(deal_id)
        return True

    _rebuild(deal_id, forget)


def _rebuild(deal_id: UUID | str, dropped: Callable[[], bool]) -> None:
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        return
    try:
        if dropped():
            deal = Deal.objects.select_related("product").filter(pk=deal_id).first()
            if deal is not None:
                deal_state_ensure(deal)
    except (redis.RedisError, ServiceUnavailable) as exc:  # the next beat or purchase retries
        logger.warning("could not rebuild the gate of deal %s: %s", deal_id, exc)
