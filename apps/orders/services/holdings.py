from collections.abc import Mapping

from apps.deals.models import Deal

from ..selectors import deal_holdings_snapshot


def holdings_with_pending(deal: Deal, pending: Mapping[str, dict]) -> dict[str, int]:
    """Units per user: non-cancelled orders in PostgreSQL plus accepted reservations not yet
    written. `pending` must be snapshotted BEFORE this runs: a reservation written in between
    is then found in the database and counted once."""
    held, written = deal_holdings_snapshot(deal_id=deal.id, order_ids=pending.keys())
    for order_id, reservation in pending.items():
        if order_id not in written:
            user = reservation["user_id"]
            held[user] = held.get(user, 0) + reservation["quantity"]
    return held
