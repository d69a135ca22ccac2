"""The lab's invariant checker knows the admission invariant: it passes a sale through the waiting
room and catches a purchase that no admission let in (the binding switched off)."""

from datetime import timedelta

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.deals.models import Deal
from apps.lab.checks import deal_invariants
from apps.orders.services.gate_state import deal_state_ensure
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db(transaction=True)


def _room_deal() -> Deal:
    deal = make_deal(deal_stock=5, starts_in=-timedelta(seconds=1), load=False)
    Deal.objects.filter(pk=deal.pk).update(room_enabled=True, room_rate=1)
    deal.refresh_from_db()
    deal_state_ensure(deal)
    return deal


def _total_units(deal: Deal) -> int:
    return deal.product.stock + deal.deal_stock


def test_a_sale_through_the_room_passes_the_room_checks(settings):
    settings.ORDER_PIPELINE = "redis"
    deal = _room_deal()
    client = bearer_client(UserFactory())
    ticket = client.post(f"/products/deals/{deal.id}/queue").json()
    bought = client.post("/orders", deal_line(deal), format="json",
                         HTTP_ADMISSION=ticket["admission"])  # fmt: skip
    assert (ticket["state"], bought.status_code) == ("admitted", 201)

    entry = deal_invariants(deal_id=deal.id, total_units=_total_units(deal), accepted=1)

    assert entry["room"] == {
        "admitted_now": 0, "admission_cap": 4, "admitted": 1, "lapsed": 0, "waiting": 0,
    }  # fmt: skip
    assert entry["checks"]["orders_within_admissions"] is True
    assert entry["checks"]["admissions_within_stock"] is True
    assert entry["ok"] is True


def test_a_purchase_no_admission_let_in_fails_the_check(settings):
    settings.ORDER_PIPELINE = "redis"
    settings.WAITING_ROOM_UNSAFE_SKIP_ADMISSION = True  # the binding off, in the app's own path
    deal = _room_deal()
    bought = bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json")
    assert bought.status_code == 201

    entry = deal_invariants(deal_id=deal.id, total_units=_total_units(deal), accepted=1)

    assert entry["room"]["admitted"] == 0
    assert entry["checks"]["orders_within_admissions"] is False
    assert entry["ok"] is False
    assert gate.room_figures(deal.id).admitted_now == 0
