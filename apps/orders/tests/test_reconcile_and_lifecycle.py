from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import StockMovement, StockMovementKind
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.tests.gate_faults import forget_counters, forget_state, forget_user, set_remaining
from apps.orders.models import ReconciliationReport
from apps.orders.services import order_cancel
from apps.orders.services.drain import stream_drain
from apps.orders.services.gate_state import deal_state_ensure
from apps.orders.services.lifecycle import deals_prepare
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold_two(shopper_client, settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=5, per_user_limit=2)
    shopper_client.post("/orders", deal_line(deal, quantity=2), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    return deal


def test_balanced_books_report_ok(sold_two):
    report = deal_reconcile(deal_id=sold_two.id)

    assert report.ok
    assert (report.deal_stock, report.sold_units, report.db_remaining) == (5, 2, 3)
    assert report.redis_remaining == 3
    assert report.findings == [] and report.repairs == []


def test_pending_reservations_count_as_sold(sold_two, settings):
    bearer_client(UserFactory()).post("/orders", deal_line(sold_two), format="json")

    report = deal_reconcile(deal_id=sold_two.id)

    assert report.ok, report.findings
    assert (report.sold_units, report.pending_units, report.redis_remaining) == (2, 1, 2)


def test_redis_drift_is_found_and_repaired(sold_two, user):
    set_remaining(sold_two.id, 1)  # a lost release: two units stuck
    forget_user(sold_two.id, user.id)

    report = deal_reconcile(deal_id=sold_two.id)

    assert not report.ok
    assert report.findings[0]["check"] == "redis"
    assert report.findings[0]["remaining"] == [1, 3]
    assert report.repairs == [{"redis_remaining": [1, 3]}]
    assert gate.deal_counters(sold_two.id) == gate.Counters(remaining=3, users={str(user.id): 2})
    assert deal_reconcile(deal_id=sold_two.id).ok


def test_database_counter_drift_is_repaired_under_the_row_lock(sold_two):
    Deal.objects.filter(pk=sold_two.pk).update(remaining_stock=5)

    report = deal_reconcile(deal_id=sold_two.id)

    assert report.findings == [{"check": "db_remaining", "found": 5, "expected": 3}]
    sold_two.refresh_from_db()
    assert sold_two.remaining_stock == 3
    assert ReconciliationReport.objects.count() == 1


def test_prepare_loads_deals_about_to_start_and_rebuilds_lost_state():
    soon = make_deal(starts_in=timedelta(minutes=5), load=False)
    later = make_deal(starts_in=timedelta(hours=2), load=False)
    live = make_deal()
    forget_state(live.id)

    result = deals_prepare()

    assert sorted(result["loaded"]) == sorted([str(soon.id), str(live.id)])
    assert gate.deal_state_loaded(soon.id) and gate.deal_state_loaded(live.id)
    assert not gate.deal_state_loaded(later.id)


def test_prepare_closes_ended_deals_and_returns_unsold_units(
    sold_two, django_capture_on_commit_callbacks
):
    product_stock = sold_two.product.stock
    Deal.objects.filter(pk=sold_two.pk).update(
        starts_at=timezone.now() - timedelta(hours=2), ends_at=timezone.now() - timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):  # the gate unloads on commit
        result = deals_prepare()

    assert result["closed"] == [str(sold_two.id)]
    sold_two.refresh_from_db()
    sold_two.product.refresh_from_db()
    assert sold_two.closed_at is not None
    assert sold_two.remaining_stock == 0
    assert sold_two.product.stock == product_stock + 3
    assert not gate.deal_state_loaded(sold_two.id)
    assert deals_prepare()["closed"] == []  # exactly once


def test_reconcile_between_a_cancel_and_its_release_gives_nothing_back_twice(settings):
    """The cancel commits, reconciliation runs, and only then does the Redis release land."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    a, b = UserFactory(), UserFactory()
    order_a = bearer_client(a).post("/orders", deal_line(deal), format="json").json()
    bearer_client(b).post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    # when: the cancel commits; its release is deferred (on_commit does not run in this test)
    order_cancel(order_id=order_a["id"], user_id=a.id)
    report = deal_reconcile(deal_id=deal.id)
    gate.deal_release(deal_id=deal.id, user_id=a.id, quantity=1, order_id=order_a["id"])
    gate.deal_release(deal_id=deal.id, user_id=a.id, quantity=1, order_id=order_a["id"])

    # then: reconciliation saw the unit as still held in Redis; the release counted once
    assert report.ok, report.findings
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=2, users={str(b.id): 1})
    assert deal_reconcile(deal_id=deal.id).ok


def test_a_check_without_repair_reports_drift_and_changes_nothing(sold_two, user):
    """The lab's invariant check runs deal_reconcile(repair=False): it must only look."""
    set_remaining(sold_two.id, 1)
    forget_user(sold_two.id, user.id)
    Deal.objects.filter(pk=sold_two.pk).update(remaining_stock=5)
    movements = StockMovement.objects.count()

    report = deal_reconcile(deal_id=sold_two.id, repair=False)

    assert [finding["check"] for finding in report.findings] == ["db_remaining", "redis"]
    assert report.repairs == []
    assert gate.deal_counters(sold_two.id) == gate.Counters(remaining=1, users={})
    sold_two.refresh_from_db()
    assert sold_two.remaining_stock == 5
    assert StockMovement.objects.count() == movements


def test_a_cancels_release_landing_after_a_rebuild_gives_nothing_back_twice(settings):
    """The cancel commits; Redis loses the deal's counters; a rebuild counts from PostgreSQL
    (the cancelled unit is not held); only then does the cancel's release land. Before: the
    release gave the unit back again, so the gate offered one unit more than was unsold."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=10)
    a, b = UserFactory(), UserFactory()
    order_a = bearer_client(a).post("/orders", deal_line(deal), format="json").json()
    bearer_client(b).post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    order_cancel(order_id=order_a["id"], user_id=a.id)  # its release is deferred (on_commit)
    forget_counters(deal.id)
    deal_state_ensure(Deal.objects.select_related("product").get(pk=deal.pk))
    gate.deal_release(deal_id=deal.id, user_id=a.id, quantity=1, order_id=order_a["id"])

    assert gate.deal_counters(deal.id) == gate.Counters(remaining=9, users={str(b.id): 1})
    assert deal_reconcile(deal_id=deal.id).ok


def test_the_redis_check_reads_postgresql_in_one_statement(sold_two):
    """Holdings, written rows and recent cancellations come from one statement, so a cancel (or
    a write) committing mid-check is in all of them or in none. Before: three statements, and a
    cancel between them was counted twice and 'repaired' as drift."""
    with CaptureQueriesContext(connection) as queries:
        report = deal_reconcile(deal_id=sold_two.id)

    assert report.ok
    reads = [q["sql"] for q in queries.captured_queries if "orders_orderitem" in q["sql"]]
    assert len(reads) == 2  # the database counter's count (under the row lock) + the snapshot
    assert "'cancelled'" in reads[1] and "'held'" in reads[1] and "'rows'" in reads[1]


def test_a_shopper_who_cancelled_while_the_state_was_missing_can_buy_again(
    settings, django_capture_on_commit_callbacks
):
    """The cancel's release lands while Redis has lost the deal's state (a failover to an empty
    replica), the state is rebuilt, reconciliation runs. Before: release.lua answered NOT_LOADED
    without marking the order, the rebuild did not know it was released, and reconciliation
    counted the recent cancellation as still held: it "repaired" the gate, withheld the unit and
    refused the shopper as over the limit for the next 10 minutes."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    a = UserFactory()
    shopper = bearer_client(a)
    order = shopper.post("/orders", deal_line(deal), format="json").json()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    forget_counters(deal.id)

    with django_capture_on_commit_callbacks(execute=True):  # its release runs, state missing
        order_cancel(order_id=order["id"], user_id=a.id)
    deal_state_ensure(Deal.objects.select_related("product").get(pk=deal.pk))
    report = deal_reconcile(deal_id=deal.id)

    assert (report.ok, report.findings, report.repairs) == (True, [], [])
    assert not StockMovement.objects.filter(kind=StockMovementKind.RECONCILE_REPAIR).exists()
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    again = shopper.post("/orders", deal_line(deal), format="json")
    assert again.status_code == 202
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=2, users={str(a.id): 1})
