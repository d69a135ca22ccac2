"""Reconciliation's view of the gate: counters read under WATCH tell a purchase that landed
meanwhile from drift, and can't be written once they are no longer watched."""

import pytest
from django.utils import timezone

from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.models import Deal
from apps.deals.tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def _loaded_deal() -> Deal:
    deal = Deal.objects.select_related("product").get(pk=DealFactory(deal_stock=5).pk)
    assert gate.deal_state_load(deal, pending={}, holdings=gate.Holdings())
    return deal


def _purchase(deal: Deal) -> None:
    reservation = Reservation.new(
        user_id=deal.id, quantity=1, created_at=timezone.now(), request_hash="",
        idempotency_key=None, shipping=None,
    )  # fmt: skip
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=reservation, mode="sync"
    )
    assert result.outcome == Outcome.OK


def test_a_purchase_while_the_counters_are_watched_is_seen():
    deal = _loaded_deal()

    with gate.counters_watched(deal.id) as counters:
        _purchase(deal)  # on another connection, as a web process would
        assert counters.unchanged() is False

    with gate.counters_watched(deal.id) as counters:
        assert counters.unchanged() is True


def test_counters_no_longer_watched_cannot_be_written():
    deal = _loaded_deal()

    with gate.counters_watched(deal.id) as counters:
        assert counters.remaining == 5
    with pytest.raises(RuntimeError):
        counters.replace(remaining=1, users={})

    assert gate.deal_counters(deal.id).remaining == 5
