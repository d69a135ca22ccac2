"""The waiting room against the real gate: joins, polls, admission at the configured rate,
the admission bound to the purchase, lapses and sell-out (issue 16; invariant 9)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.deals.models import Deal
from apps.orders.services.gate_state import deal_state_ensure
from conftest import bearer_client

from .helpers import deal_line, make_deal

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clock(monkeypatch):
    """The web server's clock, moved by the test: the room and the purchase both read it."""
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(seconds: float = 0.0):
        now[0] += timedelta(seconds=seconds)
        return now[0]

    return advance


def room_deal(*, stock=10, rate=5, admit=60, overbook="1.00", starts_in=-timedelta(seconds=1),
              prequeue=600, limit=1) -> Deal:  # fmt: skip
    deal = make_deal(deal_stock=stock, per_user_limit=limit, starts_in=starts_in, load=False)
    Deal.objects.filter(pk=deal.pk).update(
        room_enabled=True, room_rate=rate, room_admission_seconds=admit,
        room_overbooking=overbook, room_prequeue_seconds=prequeue,
    )  # fmt: skip
    deal.refresh_from_db()
    deal_state_ensure(deal)
    return deal


def test_join_poll_buy(clock, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(rate=1)
    api_client = bearer_client(UserFactory())
    refused = api_client.post("/orders", deal_line(deal), format="json")
    assert refused.status_code == 403, refused.json()
    assert refused.json()["error"] == "NOT_ADMITTED"
    joined = api_client.post(f"/products/deals/{deal.id}/queue")
    assert joined.status_code == 201, joined.json()
    ticket = joined.json()
    assert ticket["state"] == "admitted", ticket
    bought = api_client.post(
        "/orders", deal_line(deal), format="json", HTTP_ADMISSION=ticket["admission"]
    )
    assert bought.status_code == 201, bought.json()
    again = api_client.post(
        "/orders", deal_line(deal), format="json", HTTP_ADMISSION=ticket["admission"]
    )
    assert again.status_code == 400, again.json()
