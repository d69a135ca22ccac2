"""Why PostgreSQL says a deal can't sell a line right now, as the contract's error. Used where
PostgreSQL decides: the database pipelines, and the Redis pipelines when the gate has no state
for the deal (to answer 404 / not active / sold out instead of rebuilding it)."""

from datetime import datetime

from django.conf import settings

from apps.deals import gate
from apps.deals.models import Deal, DealStatus

from ..errors import (
    DealNotActive,
    DealSoldOut,
    InsufficientStock,
    InvalidDeal,
    NotAdmitted,
    UnknownDeal,
)
from .inputs import DealLine


def deal_checked(deal: Deal | None, line: DealLine, now: datetime) -> Deal:
    """`deal` if it can sell `line` at `now`; else raises the contract's error."""
    if deal is None:
        raise UnknownDeal(details={"deal_id": str(line.deal_id)})
    if deal.product_id != line.product_id:
        raise InvalidDeal(details={"deal_id": str(deal.id), "product_id": str(line.product_id)})
    status = deal.status_at(now)
    if status == DealStatus.SOLD_OUT:
        raise DealSoldOut(details={"deal_id": str(deal.id)})
    if status != DealStatus.ACTIVE:
        raise DealNotActive(details={"deal_id": str(deal.id), "status": status})
    if deal.room_enabled and settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        # The admission is checked where the gate reserves (reserve.lua); a database pipeline
        # has no such step, so it fails closed (the preflight refuses to publish this deal).
        raise NotAdmitted("The waiting room needs a Redis pipeline (ORDER_PIPELINE).")
    if deal.remaining_stock < line.quantity:
        raise InsufficientStock(
            details={"deal_id": str(deal.id), "available": deal.remaining_stock}
        )
    return deal
