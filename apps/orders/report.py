"""The orders app's part of a deal's post-sale report (apps.deals.report holds its shape and
shows it): five small queries and one Redis round trip, whatever the size of the sale."""

import logging

import redis
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncSecond

from apps.catalog.models import StockMovement, StockMovementKind
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.report import DealReport

from .console import deal_sales, last_reconciliation
from .models import HOLDING, Order

logger = logging.getLogger(__name__)

ANSWERS_GONE = (
    "Not kept: answers are counted in Redis and kept 30 days after the deal's last purchase "
    "attempt (or nobody tried to buy)."
)
REDIS_DOWN = "Redis unreachable: answers by reason can't be read now."


def deal_report(deal: Deal) -> DealReport:
    """The report of `deal` (with its product, select_related) as of now; for a deal still
    selling it is a snapshot. Redis being down leaves its two figures unknown, not the page."""
    orders = Order.objects.filter(deal_id=deal.pk)
    sales = deal_sales(deal.pk)
    span = orders.filter(status__in=HOLDING).aggregate(
        first=Min("created_at"), last=Max("created_at")
    )
    peak = (
        orders.annotate(second=TruncSecond("created_at"))
        .values("second")
        .annotate(n=Count("id"))
        .order_by("-n", "second")
        .first()
    )
    moved = dict(
        StockMovement.objects.filter(
            deal_id=deal.pk,
            kind__in=[StockMovementKind.DEAD_LETTER_REPLAY, StockMovementKind.DEAD_LETTER_DISCARD],
        )
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    try:
        after = gate.deal_after_sale(deal.pk)
        answers, parked = after.outcomes, after.dead_letters
        note = "" if answers is not None else ANSWERS_GONE
    except redis.RedisError as exc:
        logger.warning("post-sale report of deal %s without Redis: %s", deal.pk, exc)
        answers, parked, note = None, None, REDIS_DOWN
    return DealReport(
        deal_id=deal.pk,
        product=deal.product.name,
        status=deal.status,
        deal_price=deal.deal_price,
        deal_stock=deal.deal_stock,
        starts_at=deal.starts_at,
        ends_at=deal.ends_at,
        ended_at=deal.ended_at,
        closed_at=deal.closed_at,
        units_sold=sales["units_sold"],
        orders_confirmed=sales["orders_confirmed"],
        orders_cancelled=sales["orders_cancelled"],
        orders_failed=sales["orders_failed"],
        first_sale_at=span["first"],
        last_sale_at=span["last"],
        peak_per_second=peak["n"] if peak else 0,
        peak_second=peak["second"] if peak else None,
        answers=answers,
        answers_note=note,
        dead_letters_replayed=moved.get(StockMovementKind.DEAD_LETTER_REPLAY, 0),
        dead_letters_discarded=moved.get(StockMovementKind.DEAD_LETTER_DISCARD, 0),
        dead_letters_parked=parked,
        reconciliation=last_reconciliation(deal.pk),
    )
