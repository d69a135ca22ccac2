"""The orders app's part of the operator's live deal page (apps.deals.console): units sold,
the last reconciliation, and the actions only orders can take. Registered with the console by
OrdersConfig.ready()."""

from uuid import UUID

from django.db.models import Count, Q, Sum

from apps.core.renderers import iso
from apps.deals.console import OrdersConsole
from apps.deals.models import Deal
from apps.deals.report import DealReport

from .models import HOLDING, OrderItem, OrderStatus, ReconciliationReport
from .services.dead_letters import dead_letter_discard, dead_letter_replay
from .services.reconcile import deal_reconcile

CONFIRMED = [OrderStatus.CONFIRMED, OrderStatus.SHIPPED, OrderStatus.DELIVERED]


def deal_sales(deal_id: UUID) -> dict:
    """One aggregate over the deal's order items (deal orders have exactly one item)."""
    return OrderItem.objects.filter(deal_id=deal_id).aggregate(
        units_sold=Sum("quantity", filter=Q(order__status__in=HOLDING), default=0),
        orders_confirmed=Count("id", filter=Q(order__status__in=CONFIRMED)),
        orders_cancelled=Count("id", filter=Q(order__status=OrderStatus.CANCELLED)),
        orders_failed=Count("id", filter=Q(order__status=OrderStatus.FAILED)),
    )


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


def reconcile_now(*, deal_id: UUID, actor_id: UUID | None = None) -> dict:
    """The operator's reconciliation (recorded on the deal with the operator)."""
    return report_data(deal_reconcile(deal_id=deal_id, actor_id=actor_id))


def _deal_report(deal: Deal) -> DealReport:
    from .report import deal_report  # cycle: apps.orders.report reads this module's figures

    return deal_report(deal)


ORDERS_CONSOLE = OrdersConsole(
    sales=deal_sales,
    last_reconciliation=last_reconciliation,
    reconcile=reconcile_now,
    replay=dead_letter_replay,
    discard=dead_letter_discard,
    report=_deal_report,
)
