"""Which deals the minute beat reconciles (open ones, and a closed one once more), and how old
reports are pruned (RECONCILIATION_RETENTION_DAYS, each deal's newest kept)."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deals.models import Deal
from apps.orders.models import ReconciliationReport
from apps.orders.services.reconcile import reconcile_live_deals, reconciliation_reports_prune
from apps.orders.tests.helpers import make_deal

pytestmark = pytest.mark.django_db


def _closed(*, ago: timedelta) -> Deal:
    deal = make_deal(starts_in=-timedelta(hours=3), lasts=timedelta(hours=1), load=False)
    Deal.objects.filter(pk=deal.pk).update(closed_at=timezone.now() - ago, remaining_stock=0)
    return deal


def _report(deal: Deal, *, age: timedelta) -> ReconciliationReport:
    report = ReconciliationReport.objects.create(
        deal=deal, ok=True, deal_stock=deal.deal_stock, sold_units=0, pending_units=0,
        db_remaining=deal.remaining_stock,
    )  # fmt: skip
    ReconciliationReport.objects.filter(pk=report.pk).update(created_at=timezone.now() - age)
    return report


def test_the_beat_reconciles_open_deals_and_each_closed_one_once(settings):
    settings.ORDER_PIPELINE = "redis_async"
    live = make_deal()
    paused = make_deal()
    Deal.objects.filter(pk=paused.pk).update(paused_at=timezone.now())
    ended_early = make_deal()
    Deal.objects.filter(pk=ended_early.pk).update(ended_at=timezone.now())
    past_end = make_deal(starts_in=-timedelta(hours=2), lasts=timedelta(hours=1), load=False)
    tomorrow = make_deal(starts_in=timedelta(days=1), load=False)
    soon = make_deal(starts_in=timedelta(minutes=5))  # loaded into Redis, not started
    draft = make_deal(published=False)
    just_closed = _closed(ago=timedelta(minutes=2))
    closed_checked = _closed(ago=timedelta(minutes=5))
    _report(closed_checked, age=timedelta(minutes=4))  # written after it closed
    closed_long_ago = _closed(ago=timedelta(hours=2))

    first = Counter(report.deal_id for report in reconcile_live_deals())
    second = Counter(report.deal_id for report in reconcile_live_deals())

    open_deals = {live.pk: 1, paused.pk: 1, ended_early.pk: 1, past_end.pk: 1}
    assert first == {**open_deals, just_closed.pk: 1}
    assert second == open_deals  # the closed deal had its final check
    for deal in (tomorrow, soon, draft, closed_long_ago):
        assert not ReconciliationReport.objects.filter(deal=deal).exists()
    assert ReconciliationReport.objects.filter(deal=closed_checked).count() == 1


def test_pruning_deletes_reports_past_retention_but_each_deals_newest(settings):
    settings.RECONCILIATION_RETENTION_DAYS = 7
    busy, idle, old = make_deal(load=False), make_deal(load=False), make_deal(load=False)
    busy_reports = {d: _report(busy, age=timedelta(days=d)) for d in (10, 8, 6, 1)}
    idle_only = _report(idle, age=timedelta(days=30))  # its newest: kept whatever its age
    old_reports = {d: _report(old, age=timedelta(days=d)) for d in (9, 8)}

    deleted = reconciliation_reports_prune(now=timezone.now())

    assert deleted == 3
    kept = set(ReconciliationReport.objects.values_list("pk", flat=True))
    assert kept == {
        busy_reports[6].pk, busy_reports[1].pk, idle_only.pk, old_reports[8].pk,
    }  # fmt: skip
    assert reconciliation_reports_prune(now=timezone.now()) == 0


def test_pruning_is_bounded_and_takes_the_oldest_first(settings):
    settings.RECONCILIATION_RETENTION_DAYS = 7
    deal = make_deal(load=False)
    reports = {d: _report(deal, age=timedelta(days=d)) for d in (12, 11, 10, 9, 1)}

    deleted = reconciliation_reports_prune(now=timezone.now(), batch=2, max_batches=1)

    assert deleted == 2
    kept = set(ReconciliationReport.objects.values_list("pk", flat=True))
    assert kept == {reports[10].pk, reports[9].pk, reports[1].pk}
    assert reconciliation_reports_prune(now=timezone.now(), batch=1, max_batches=5) == 2
    assert set(ReconciliationReport.objects.values_list("pk", flat=True)) == {reports[1].pk}
