"""Cloning a deal into a new draft: the next sale of the same product on the same terms, set up
in one click after a sale and then edited (the operator guide, "After the sale").

A clone is a draft like any deal saved from the add form: nothing is carved from the product's
stock and nothing reaches Redis until an operator publishes it through the preflight, so a
clone never goes on sale by itself. It copies the offer and the waiting room's tuning, never
what the sale did (orders, counters, the audit trail, the pre-queue seed).
"""

import math
from datetime import datetime, timedelta
from uuid import UUID

from django.utils import timezone

from .errors import DealNotFound
from .models import Deal
from .services import ROOM_FIELDS, deal_create

DAY = timedelta(days=1)
# What a clone copies from its deal, exactly: the offer, the per-shopper limit and the waiting
# room's settings. Its period is the same length at the same time of day (clone_period).
CLONED_FIELDS = ("product_id", "deal_price", "deal_stock", "per_user_limit", *sorted(ROOM_FIELDS))


def clone_period(
    *, starts_at: datetime, ends_at: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The period moved forward by whole days (so the same time of day and length) to the
    first day whose start is at least a day from `now`: tomorrow's or the day after's slot,
    whatever the age of the deal cloned. Never in the past, so the draft can be published
    as it is once the operator has checked it."""
    days = max(1, math.ceil((now + DAY - starts_at) / DAY))
    return starts_at + days * DAY, ends_at + days * DAY


def deal_clone(*, deal_id: UUID, actor_id: UUID | None = None) -> Deal:
    """Creates a draft copying CLONED_FIELDS of `deal_id` (any deal: draft, live or closed),
    with the period from clone_period. Goes through deal_create, so the deal price is checked
    against the product's list price now (400 when the list price fell below it since)."""
    source = Deal.objects.filter(pk=deal_id).first()
    if source is None:
        raise DealNotFound()
    starts_at, ends_at = clone_period(
        starts_at=source.starts_at, ends_at=source.ends_at, now=timezone.now()
    )
    room = {name: getattr(source, name) for name in ROOM_FIELDS}
    return deal_create(
        product_id=source.product_id,
        deal_price=source.deal_price,
        deal_stock=source.deal_stock,
        per_user_limit=source.per_user_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        publish=False,
        actor_id=actor_id,
        **room,
    )
