"""Deal writes: create/publish (carve the quota out of the product's stock), pause/resume, end
early, close (give the unsold units back, exactly once), and edits an operator may make.

Every state change is a conditional UPDATE on the deal row whose WHERE clause is the transition's
precondition, with a row-count check, so two operators (or an operator and the closing beat)
cannot both apply one transition. The Redis gate is told after commit (`transaction.on_commit`,
robust: a gate outage never undoes a committed change; the gate's own beat reloads live deals).

Every applied transition is recorded (apps.core.audit.action_record) in its own transaction with
the actor the caller passes (`actor_id`, None for the system: beat, the API's closing paths) and
the operator's `reason`; an idempotent no-op records nothing.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.cache import DEALS, scope_changed
from apps.catalog.errors import UnknownProduct
from apps.catalog.models import Product, StockMovementKind
from apps.catalog.services import product_stock_adjust, product_stock_return
from apps.core.audit import action_record
from apps.core.commit import on_commit_robust
from apps.core.errors import ValidationFailed
from apps.core.locks import locked

from . import gate
from .errors import DealNotFound, InvalidDealState, InvalidPeriod
from .models import Deal

logger = logging.getLogger(__name__)

# Every change an operator makes bumps the deal's state version (see Deal.state_version).
NEXT_VERSION = F("state_version") + 1
# Fields that fix what a shopper buys; frozen once the quota is carved (published).
TERMS_FIELDS = frozenset({"product_id", "deal_price", "deal_stock"})
SCHEDULE_FIELDS = frozenset({"starts_at", "ends_at", "per_user_limit"})
# The waiting room's settings: editable until the deal closes, even while it sells (switching
# the room on mid-sale sends every shopper without an admission to the line).
ROOM_FIELDS = frozenset(
    {"room_enabled", "room_rate", "room_prequeue_seconds", "room_admission_seconds",
     "room_overbooking"}
)  # fmt: skip


def _check_period(*, starts_at: datetime, ends_at: datetime) -> None:
    if starts_at >= ends_at:
        raise InvalidPeriod(
            "starts_at must be before ends_at.",
            details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        )
    if ends_at <= timezone.now():
        raise InvalidPeriod("ends_at is in the past.", details={"ends_at": ends_at.isoformat()})


def _check_price(*, deal_price: int, product: Product) -> None:
    if deal_price >= product.price:
        raise ValidationFailed(
            details={"deal_price": [f"Must be below the product's price ({product.price})."]}
        )


def _carve(*, deal: Deal, actor_id: UUID | None, reason: str = "") -> None:
    """Takes the deal's quota out of the product's regular stock (conditional UPDATE; 400
    INSUFFICIENT_STOCK and nothing changed when there is not enough), audited."""
    product_stock_adjust(
        product_id=deal.product_id,
        delta=-deal.deal_stock,
        kind=StockMovementKind.DEAL_CARVE,
        deal_id=deal.id,
        deal_delta=deal.deal_stock,
        actor_id=actor_id,
        note=reason,
    )


def _install_on_commit(deal_id: UUID) -> None:
    """After publishing: the deal has sold nothing yet, so its state starts from the full quota.
    (Rebuilding a state Redis lost mid-sale needs the orders' books: apps.orders does that.)"""

    def install() -> None:
        deal = Deal.objects.select_related("product").get(pk=deal_id)
        gate.deal_state_load(deal, pending={}, holdings=gate.Holdings())

    transaction.on_commit(install, robust=True)


def _sync_on_commit(deal_id: UUID) -> None:
    def sync() -> None:
        gate.deal_state_sync(Deal.objects.get(pk=deal_id))

    transaction.on_commit(sync, robust=True)


def _deal(deal_id: UUID) -> Deal:
    deal = Deal.objects.select_related("product").filter(pk=deal_id).first()
    if deal is None:
        raise DealNotFound()
    return deal


def deal_create(
    *,
    product_id: UUID,
    deal_price: int,
    deal_stock: int,
    per_user_limit: int = 1,
    starts_at: datetime,
    ends_at: datetime,
    publish: bool,
    actor_id: UUID | None = None,
    **room: Any,
) -> Deal:
    """Creates a deal; with `publish` (the API) also carves its quota in the same transaction, so
    either both the deal and the carve exist or neither. Without it: a draft (the admin).
    `room`: the waiting room's settings (ROOM_FIELDS), the model's defaults otherwise."""
    if unknown := set(room) - ROOM_FIELDS:
        raise ValueError(f"not a waiting-room setting: {sorted(unknown)}")
    _check_period(starts_at=starts_at, ends_at=ends_at)
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise UnknownProduct(details={"product_id": str(product_id)})
    _check_price(deal_price=deal_price, product=product)
    with transaction.atomic():
        deal = Deal.objects.create(
            product=product,
            deal_price=deal_price,
            deal_stock=deal_stock,
            remaining_stock=deal_stock,
            per_user_limit=per_user_limit,
            starts_at=starts_at,
            ends_at=ends_at,
            published_at=timezone.now() if publish else None,
            **room,
        )
        if publish:
            _carve(deal=deal, actor_id=actor_id)
            action_record(
                actor_id=actor_id, obj=deal, action="publish",
                detail=f"{deal.deal_stock} units carved from the product",
            )  # fmt: skip
            _install_on_commit(deal.id)
        scope_changed(DEALS)
    deal.product.refresh_from_db()
    return deal


def deal_publish(*, deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> Deal:
    """Publishes a draft: carves its quota and loads it into the gate. 409 if already published."""
    with transaction.atomic():
        deal = _deal(deal_id)
        _check_period(starts_at=deal.starts_at, ends_at=deal.ends_at)
        _check_price(deal_price=deal.deal_price, product=deal.product)
        claimed = Deal.objects.filter(pk=deal_id, published_at__isnull=True).update(
            published_at=timezone.now(), state_version=NEXT_VERSION, updated_at=timezone.now()
        )
        if not claimed:
            raise InvalidDealState("The deal is already published.")
        _carve(deal=deal, actor_id=actor_id, reason=reason)
        action_record(
            actor_id=actor_id, obj=deal, action="publish", reason=reason,
            detail=f"{deal.deal_stock} units carved from the product",
        )  # fmt: skip
        _install_on_commit(deal_id)
        scope_changed(DEALS)
    return _deal(deal_id)


def _transition(
    deal_id: UUID, *, where: dict, set_: dict, already: Callable[[Deal], bool], refused: str
) -> bool:
    """Applies one lifecycle transition to a running deal (published, not ended or closed) as a
    conditional UPDATE whose `where` adds the precondition. False when the deal is already in
    the target state (an idempotent no-op); InvalidDealState when it is in any other state."""
    updated = (
        Deal.objects.running()
        .filter(pk=deal_id, **where)
        .update(**set_, state_version=NEXT_VERSION, updated_at=timezone.now())
    )
    if updated:
        return True
    deal = _deal(deal_id)
    if already(deal):
        return False
    raise InvalidDealState(refused, details={"status": deal.status})


def _record(
    deal_id: UUID, action: str, actor_id: UUID | None, reason: str, detail: str = ""
) -> None:
    action_record(
        actor_id=actor_id, obj=_deal(deal_id), action=action, reason=reason, detail=detail
    )


def deal_pause(*, deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> Deal:
    """Stops sales of a published deal until resumed. Idempotent."""
    with transaction.atomic():
        if _transition(
            deal_id,
            where={"paused_at__isnull": True},
            set_={"paused_at": timezone.now()},
            already=lambda d: bool(d.paused_at and not d.ended_at and not d.closed_at),
            refused="Only a published deal that has not ended can be paused.",
        ):
            _record(deal_id, "pause", actor_id, reason)
            _sync_on_commit(deal_id)
            scope_changed(DEALS)
    return _deal(deal_id)


def deal_resume(*, deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> Deal:
    """Reopens a paused deal. Idempotent. Syncs the gate's flags; a state Redis dropped while
    the deal was paused is rebuilt by the next purchase or the preparing beat (apps.orders)."""
    with transaction.atomic():
        if _transition(
            deal_id,
            where={"paused_at__isnull": False},
            set_={"paused_at": None},
            already=lambda d: (
                d.published_at is not None and d.paused_at is None and not d.closed_at
            ),
            refused="Only a paused deal that has not ended can be resumed.",
        ):
            _record(deal_id, "resume", actor_id, reason)
            _sync_on_commit(deal_id)
            scope_changed(DEALS)
    return _deal(deal_id)


def deal_end(*, deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> Deal:
    """Ends a published deal now, then closes it after commit (the gate first learns it has ended,
    so no reservation can slip in after the unsold units are returned). If reservations are still
    being written, closing is left to the closing beat (deal_close returns None). Idempotent."""
    with transaction.atomic():
        if _transition(
            deal_id,
            where={},
            set_={"ended_at": timezone.now()},
            already=lambda d: d.ended_at is not None or d.closed_at is not None,
            refused="Only a published deal can be ended.",
        ):
            _record(deal_id, "end", actor_id, reason, detail="ended early")
            _sync_on_commit(deal_id)
            scope_changed(DEALS)
        on_commit_robust(_close_quietly, deal_id, actor_id, reason)
    return _deal(deal_id)


def _close_quietly(deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> None:
    if deal_close(deal_id=deal_id, actor_id=actor_id, reason=reason) is None:
        logger.info("deal %s ended with a write backlog; the closing beat will close it", deal_id)


def deal_close(*, deal_id: UUID, actor_id: UUID | None = None, reason: str = "") -> Deal | None:
    """Returns an ended deal's unsold units (the database's remaining_stock) to the product,
    exactly once, and drops its gate state.

    Precondition: the deal has ended (ended_at set, or ends_at passed) and the gate knows it.
    Returns None without changing anything while the gate still holds reservations not yet
    written to PostgreSQL (the remaining count in the database is not final yet): the caller
    retries later. Idempotent: closing a closed deal returns it unchanged. The deal row is locked
    for the few statements that move its units, so a concurrent order write waits and then sees
    remaining 0.
    """
    deal = _deal(deal_id)
    if deal.closed_at is not None:
        return deal
    if deal.published_at is None:
        raise InvalidDealState("A draft has no quota to return; delete it instead.")
    if deal.ended_at is None and deal.ends_at > timezone.now():
        raise InvalidDealState("The deal has not ended yet.", details={"status": deal.status})
    if gate.deal_sales_stop(deal_id) > 0:  # stop sales first, then count what is unwritten
        return None
    with transaction.atomic():
        deal = locked(Deal.objects.filter(pk=deal_id)).get()
        if deal.closed_at is not None:  # a concurrent close won
            return _deal(deal_id)
        unsold = deal.remaining_stock
        closed = Deal.objects.filter(pk=deal_id, closed_at__isnull=True).update(
            closed_at=timezone.now(),
            remaining_stock=0,
            state_version=NEXT_VERSION,
            updated_at=timezone.now(),
        )
        if closed and unsold > 0:
            product_stock_return(
                product_id=deal.product_id,
                quantity=unsold,
                kind=StockMovementKind.DEAL_RETURN,
                deal_id=deal_id,
                deal_delta=-unsold,
                actor_id=actor_id,
                note=reason,
            )
        if closed:
            detail = f"{unsold} unsold units back to the product"
            _record(deal_id, "close", actor_id, reason, detail=detail)
        on_commit_robust(gate.deal_state_close, deal_id)
        scope_changed(DEALS)
    return _deal(deal_id)


def deal_update(*, deal_id: UUID, **fields: Any) -> Deal:
    """Operator edits. A draft may change anything; once published, the terms (product, price,
    quota) are frozen (409) and only the schedule, the per-user limit and the waiting room may
    change, after which the gate is re-synced. A closed deal is history and cannot change."""
    unknown = set(fields) - TERMS_FIELDS - SCHEDULE_FIELDS - ROOM_FIELDS
    if unknown:
        raise ValueError(f"not editable through deal_update: {sorted(unknown)}")
    with transaction.atomic():
        deal = locked(Deal.objects.filter(pk=deal_id)).first()
        if deal is None:
            raise DealNotFound()
        changed = {k: v for k, v in fields.items() if getattr(deal, k) != v}
        if not changed:
            return _deal(deal_id)
        if deal.closed_at is not None:
            raise InvalidDealState("A closed deal cannot change.")
        if deal.published_at is not None and set(changed) & TERMS_FIELDS:
            raise InvalidDealState(
                "The product, price and quota of a published deal cannot change.",
                details={"fields": sorted(set(changed) & TERMS_FIELDS)},
            )
        if "starts_at" in changed or "ends_at" in changed:
            _check_period(
                starts_at=changed.get("starts_at", deal.starts_at),
                ends_at=changed.get("ends_at", deal.ends_at),
            )
        if "product_id" in changed or "deal_price" in changed:
            product_id = changed.get("product_id", deal.product_id)
            product = Product.objects.filter(pk=product_id).first()
            if product is None:
                raise UnknownProduct(details={"product_id": str(product_id)})
            _check_price(deal_price=changed.get("deal_price", deal.deal_price), product=product)
        if "deal_stock" in changed:
            changed["remaining_stock"] = changed["deal_stock"]  # drafts only (terms frozen)
        Deal.objects.filter(pk=deal_id).update(
            **changed, state_version=NEXT_VERSION, updated_at=timezone.now()
        )
        if deal.published_at is not None:
            _sync_on_commit(deal_id)
        scope_changed(DEALS)
    return _deal(deal_id)
