"""Operator actions win over background work (docs/reliability.md, "What a reliability review
found", case 2). Each test replays an exact interleaving: a background task (the preparing beat, a
rebuild) read the deal row, an operator changed the deal, then the task wrote what it had read into
the gate."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.tests.factories import ProductFactory
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.services import deal_create, deal_end, deal_pause
from conftest import bearer_client

pytestmark = pytest.mark.django_db(transaction=True)  # the gate is told on commit


def _live_deal() -> Deal:
    now = timezone.now()
    deal = deal_create(
        product_id=ProductFactory(price=10_000, stock=100).id, deal_price=9_000, deal_stock=5,
        starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1), publish=True,
    )  # fmt: skip
    assert gate.deal_state_loaded(deal.id)
    return Deal.objects.select_related("product").get(pk=deal.pk)


def _buy(deal: Deal, user) -> tuple[int, str | None]:
    body = {"items": [{"product_id": str(deal.product_id), "deal_id": str(deal.id), "quantity": 1}]}
    response = bearer_client(user).post("/orders", body, format="json")
    return response.status_code, response.json().get("error")


def test_a_stale_sync_cannot_reopen_a_deal_whose_sales_were_stopped(user, settings):
    """deal_close stops sales (ended=1), then counts nothing pending and returns the unsold
    units; a beat that read the deal before the end must not set ended=0 in between."""
    settings.ORDER_PIPELINE = "redis_async"
    stale = _live_deal()  # the beat's read

    gate.deal_sales_stop(stale.id)  # the close's first step
    gate.deal_state_sync(stale)  # the beat writes what it read (same version: ended is sticky)

    assert gate.deal_state_read(stale.id)["ended"] == "1"
    assert _buy(stale, user) == (400, "DEAL_NOT_ACTIVE")
    assert gate.deal_backlog(stale.id) == 0


def test_a_stale_sync_cannot_undo_a_pause(user, settings):
    settings.ORDER_PIPELINE = "redis_async"
    stale = _live_deal()

    deal_pause(deal_id=stale.id)
    applied = gate.deal_state_sync(stale)

    assert applied is False
    assert gate.deal_state_read(stale.id)["paused"] == "1"
    assert _buy(stale, user) == (400, "DEAL_NOT_ACTIVE")


def test_a_sync_from_the_current_row_applies(user, settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = _live_deal()
    Deal.objects.filter(pk=deal.pk).update(per_user_limit=3)  # not an operator transition
    deal.refresh_from_db()

    assert gate.deal_state_sync(deal) is True
    assert gate.deal_state_read(deal.id)["per_user_limit"] == "3"


def test_a_stale_loader_cannot_bring_back_the_gate_of_a_closed_deal(user, settings):
    """A rebuild read the deal while it was open; the operator ended it (closed at once: nothing
    pending); the rebuild then installs what it read. The tombstone refuses it."""
    settings.ORDER_PIPELINE = "redis_async"
    stale = _live_deal()
    gate.deal_state_unload(stale.id)  # Redis lost the state; a rebuild reads the deal...

    closed = deal_end(deal_id=stale.id)  # ...the operator ends it, it closes at once...
    installed = gate.deal_state_load(stale, pending={}, holdings=gate.Holdings())  # ...rebuild

    assert closed.closed_at is not None
    assert installed is False
    assert not gate.deal_state_loaded(stale.id)
    assert _buy(stale, user) == (400, "DEAL_NOT_ACTIVE")
    assert gate.deal_backlog(stale.id) == 0
