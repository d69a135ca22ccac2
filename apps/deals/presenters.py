"""JSON-ready deal dicts: a cacheable part, and the live overlay applied at response time."""

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from apps.catalog.presenters import product_data
from apps.core.renderers import iso

from . import gate
from .models import Deal, DealStatus

# The fields Deal.status_at reads. Cached with the body (never sent) so status is computed live.
_STATE_FIELDS = ("id", "published_at", "paused_at", "ended_at", "starts_at", "ends_at", "room_seed")


def deal_data(deal: Deal) -> dict[str, Any]:
    """Cacheable shape. `remaining_stock` and `status` hold the database values here; deals_live
    replaces them on every response. Needs `deal.product` loaded (select_related)."""
    return {
        "id": str(deal.id),
        "product_id": str(deal.product_id),
        "product": product_data(deal.product),
        "deal_price": deal.deal_price,
        "original_price": deal.product.price,
        "deal_stock": deal.deal_stock,
        "remaining_stock": deal.remaining_stock,
        "per_user_limit": deal.per_user_limit,
        "starts_at": iso(deal.starts_at),
        "ends_at": iso(deal.ends_at),
        "status": deal.status_at(),
        "waiting_room": deal.room_enabled,
        "queue_seed": None,
        "created_at": iso(deal.created_at),
        "_state": {field: getattr(deal, field) for field in _STATE_FIELDS}
        | {"remaining_stock": deal.remaining_stock},
    }


def deals_live(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public deal bodies with remaining_stock as it is now, and status from the clock now.

    Remaining comes from the gate (Redis, one round trip for all) for deals it holds; for the
    others (not loaded yet, closed, or a database pipeline where PostgreSQL is the live counter)
    from one query on the deal rows, never from the cached copy. So: 0 queries for live deals in
    a Redis pipeline, 1 otherwise, whatever the number of items."""
    items = list(items)
    if not items:
        return []
    ids = [item["_state"]["id"] for item in items]
    live = gate.deal_remaining(ids)
    missing = [deal_id for deal_id in ids if deal_id not in live]
    if missing:
        live |= dict(Deal.objects.filter(pk__in=missing).values_list("id", "remaining_stock"))
    now = timezone.now()
    bodies = []
    for item in items:
        state = item["_state"]
        remaining = live.get(state["id"], state["remaining_stock"])
        status = Deal(**state).status_at(now, remaining)
        body = {key: value for key, value in item.items() if key != "_state"}
        body.update(remaining_stock=remaining, status=status)
        if status == DealStatus.ENDED:  # the pre-queue's draw, published after the sale
            body["queue_seed"] = state["room_seed"]
        bodies.append(body)
    return bodies
