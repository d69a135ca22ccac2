"""The orders app's part of the operator's live deal page (apps.deals.console): units sold,
the last reconciliation, and the actions only orders can take. Registered with the console by
OrdersConfig.ready()."""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Q, Sum

from apps.core.errors import ApplicationError, ErrorCode
from apps.core.renderers import iso
from apps.deals.console import OrdersConsole
from apps.deals.models import Deal
from apps.deals.report import DealReport

from .models import HOLDING, OrderItem, OrderStatus, ReconciliationReport
from .services.dead_letters import dead_letter_discard, dead_letter_replay
from .services.deal_checks import deal_checked
from .services.inputs import DealLine
from .services.reconcile import deal_reconcile

CONFIRMED = [OrderStatus.CONFIRMED, OrderStatus.SHIPPED, OrderStatus.DELIVERED]


# Units and revenue count the orders that hold units (pending ones too: accepted, being
# written); the order counts split them by outcome.
SALES = {
    "units_sold": Sum("quantity", filter=Q(order__status__in=HOLDING), default=0),
    "revenue": Sum("subtotal", filter=Q(order__status__in=HOLDING), default=0),
    "orders_confirmed": Count("id", filter=Q(order__status__in=CONFIRMED)),
    "orders_cancelled": Count("id", filter=Q(order__status=OrderStatus.CANCELLED)),
    "orders_failed": Count("id", filter=Q(order__status=OrderStatus.FAILED)),
}
NO_SALES = {"units_sold": 0, "revenue": 0, "orders_confirmed": 0, "orders_cancelled": 0,
            "orders_failed": 0}  # fmt: skip


def deal_sales(deal_id: UUID) -> dict:
    """One aggregate over the deal's order items (deal orders have exactly one item)."""
    return OrderItem.objects.filter(deal_id=deal_id).aggregate(**SALES)


def deals_sales(deal_ids: Iterable[UUID]) -> dict[UUID, dict]:
    """`deal_sales` of several deals in one grouped query; deals without orders get zeros."""
    ids = list(deal_ids)
    rows = OrderItem.objects.filter(deal_id__in=ids).values("deal_id").order_by().annotate(**SALES)
    found = {row.pop("deal_id"): row for row in rows}
    return {deal_id: found.get(deal_id, dict(NO_SALES)) for deal_id in ids}


def report_data(report: ReconciliationReport | None) -> dict | None:
    if report is None:
        return None
    return {
        "id": str(report.id),
        "created_at": iso(report.created_at),
        "ok": report.ok,
        "sold_units": report.sold_units,
        "pending_units": report.pending_units,
        "db_remaining": report.db_remaining,
        "redis_remaining": report.redis_remaining,
        "findings": report.findings,
        "repairs": report.repairs,
    }


def last_reconciliation(deal_id: UUID) -> dict | None:
    return report_data(ReconciliationReport.objects.filter(deal_id=deal_id).first())


def last_reconciliations(deal_ids: Iterable[UUID]) -> dict[UUID, dict]:
    """The newest report of each deal that has one, in one query (PostgreSQL's DISTINCT ON,
    served by recon_deal_newest_idx)."""
    reports = (
        ReconciliationReport.objects.filter(deal_id__in=list(deal_ids))
        .order_by("deal_id", "-created_at")
        .distinct("deal_id")
    )
    return {report.deal_id: report_data(report) for report in reports}  # type: ignore[misc]


def purchase_answer(deal: Deal, *, remaining: int, now: datetime) -> dict:
    """What POST /orders answers now to a shopper buying one unit of `deal` who has bought
    none yet, decided by the code the API runs: `deal_checked` is PostgreSQL's decision (the
    database pipelines; the Redis ones when the gate has no state), and the same rule
    reserve.lua applies to the gate's copy of the row, with `remaining` the gate's count.
    {"status", "code", "detail"}; code None is a purchase that would be accepted (201, or 202
    where the async pipeline accepts before writing)."""
    line = DealLine(product_id=deal.product_id, quantity=1, deal_id=deal.pk)
    try:
        deal_checked(_with_remaining(deal, remaining), line, now)
    except ApplicationError as exc:
        reason = (exc.details or {}).get("status")
        detail = f"{exc.message} (status {reason})" if reason else exc.message
        return {"status": exc.http_status, "code": str(exc.code), "detail": detail}
    if deal.room_enabled:
        return {"status": 403, "code": ErrorCode.NOT_ADMITTED,
                "detail": "Only with an admission from the waiting room."}  # fmt: skip
    accepted = 202 if settings.ORDER_PIPELINE == "redis_async" else 201
    return {"status": accepted, "code": None, "detail": "Accepted."}


def _with_remaining(deal: Deal, remaining: int) -> Deal:
    """A copy of `deal` whose count of units left is the gate's (live) one."""
    copy = Deal(**{f.attname: getattr(deal, f.attname) for f in Deal._meta.concrete_fields})
    copy.remaining_stock = remaining
    return copy


def reconcile_now(*, deal_id: UUID, actor_id: UUID | None = None) -> dict:
    """The operator's reconciliation (recorded on the deal with the operator)."""
    return report_data(deal_reconcile(deal_id=deal_id, actor_id=actor_id))


def _deal_report(deal: Deal) -> DealReport:
    from .report import deal_report  # cycle: apps.orders.report reads this module's figures

    return deal_report(deal)


ORDERS_CONSOLE = OrdersConsole(
    sales=deal_sales,
    sales_many=deals_sales,
    last_reconciliation=last_reconciliation,
    last_reconciliations=last_reconciliations,
    purchase_answer=purchase_answer,
    reconcile=reconcile_now,
    replay=dead_letter_replay,
    discard=dead_letter_discard,
    report=_deal_report,
)
