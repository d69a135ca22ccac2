"""The per-user limit holds in PostgreSQL even when Redis forgot what a shopper holds
(docs/reliability.md, "What a reliability review found", case 1: a lost write, a restore, an
eviction of the `users` hash). Before: the writer checked only the deal's remaining units, so
PostgreSQL ended with 2 units for a limit of 1."""

import pytest
from django.db.models import Sum

from apps.deals import gate
from apps.deals.tests.gate_faults import forget_user
from apps.orders.models import HOLDING, OrderItem
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal

pytestmark = pytest.mark.django_db


def _units_held(deal, user) -> int:
    items = OrderItem.objects.filter(deal=deal, order__user=user, order__status__in=HOLDING)
    return items.aggregate(n=Sum("quantity"))["n"]


def test_async_a_purchase_over_the_limit_is_failed_with_its_unit_returned(
    shopper_client, user, settings
):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=5, per_user_limit=1)
    first = shopper_client.post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    forget_user(deal.id, user.id)  # Redis forgets the unit it sold this shopper

    second = shopper_client.post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert (first.status_code, second.status_code) == (202, 202)  # Redis accepted both
    failed = shopper_client.get(f"/orders/{second.json()['id']}").json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == (
        "DEAL_LIMIT_EXCEEDED: it would exceed the deal's per-shopper limit."
    )
    assert _units_held(deal, user) == 1
    assert gate.deal_counters(deal.id).remaining == 4
    deal.refresh_from_db()
    assert deal.remaining_stock == 4


def test_sync_a_purchase_over_the_limit_is_refused_with_its_unit_returned(
    shopper_client, user, settings
):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=5, per_user_limit=1)
    first = shopper_client.post("/orders", deal_line(deal), format="json")
    forget_user(deal.id, user.id)

    second = shopper_client.post("/orders", deal_line(deal), format="json")

    assert first.status_code == 201
    assert second.status_code == 400
    assert second.json()["error"] == "DEAL_LIMIT_EXCEEDED"
    assert second.json()["details"] == {"held": 1, "limit": 1}
    assert _units_held(deal, user) == 1
    assert gate.deal_counters(deal.id).remaining == 4
