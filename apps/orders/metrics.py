"""The reconciliation's figure for /metrics, read from PostgreSQL when Prometheus scrapes (one
query). Registered with apps.core.metrics by OrdersConfig.ready()."""

import logging
import math

from prometheus_client.core import GaugeMetricFamily

from apps.deals.models import Deal

from .models import ReconciliationReport

logger = logging.getLogger(__name__)


def drift_deals() -> int:
    """Open deals (published, not closed) whose newest reconciliation report found drift: the
    newest report of each in one query (DISTINCT ON, served by recon_deal_newest_idx, as
    apps.orders.console.last_reconciliations)."""
    newest_ok = (
        ReconciliationReport.objects.filter(deal__in=Deal.objects.published_unclosed())
        .order_by("deal_id", "-created_at")
        .distinct("deal_id")
        .values_list("ok", flat=True)
    )
    return sum(1 for ok in newest_ok if not ok)


class ReconciliationDriftCollector:
    """`flashdeals_reconciliation_drift_deals`; +Inf when PostgreSQL can't be read, so the drift
    alert fires rather than go quiet (its description says which)."""

    def describe(self):
        return []

    def collect(self):
        try:
            drift: float = drift_deals()
        except Exception as exc:  # noqa: BLE001 - an unreadable count alerts; never a 500
            logger.warning("reconciliation drift unreadable: %s", exc)
            drift = math.inf
        yield GaugeMetricFamily(
            "flashdeals_reconciliation_drift_deals",
            "Open deals whose newest reconciliation report found drift (+Inf: unreadable).",
            value=drift,
        )
