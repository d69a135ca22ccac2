"""Deal lifecycle services, with the real gate (Redis) told on commit."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.errors import InsufficientStock
from apps.catalog.models import Product
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import ValidationFailed
from apps.deals import gate
from apps.deals.errors import DealNotFound, InvalidDealState, InvalidPeriod
from apps.deals.models import Deal
from apps.deals.services import (
    deal_close,
    deal_create,
    deal_end,
    deal_pause,
    deal_publish,
    deal_resume,
    deal_update,
)
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit hooks (gate, cache) must run


def _draft(product, **overrides) -> Deal:
    now = timezone.now()
    data = {
        "product_id": product.id,
        "deal_price": 9_000,
        "deal_stock": 30,
        "per_user_limit": 2,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(hours=1),
        "publish": False,
    } | overrides
    return deal_create(**data)


def _stock(product) -> int:
    return Product.objects.get(pk=product.pk).stock


def test_draft_carves_nothing_until_published():
    product = ProductFactory(price=10_000, stock=100)

    draft = _draft(product)
    assert (draft.status, _stock(product), gate.deal_remaining([draft.id])) == ("draft", 100, {})

    deal = deal_publish(deal_id=draft.id)

    assert deal.status == "active"
    assert _stock(product) == 70
    assert gate.deal_remaining([deal.id]) == {deal.id: 30}  # loaded into Redis on commit


def test_publish_twice_is_refused_and_carves_once():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_publish(deal_id=_draft(product).id)

    with pytest.raises(InvalidDealState):
        deal_publish(deal_id=deal.id)
    assert _stock(product) == 70


def test_publish_without_enough_stock_leaves_a_draft():
    product = ProductFactory(price=10_000, stock=10)
    draft = _draft(product)

    with pytest.raises(InsufficientStock):
        deal_publish(deal_id=draft.id)

    assert Deal.objects.get(pk=draft.pk).published_at is None
    assert _stock(product) == 10


def test_publish_checks_period_and_price_again():
    product = ProductFactory(price=10_000, stock=100)
    draft = _draft(product)
    Deal.objects.filter(pk=draft.pk).update(
        starts_at=timezone.now() - timedelta(hours=2), ends_at=timezone.now() - timedelta(hours=1)
    )
    with pytest.raises(InvalidPeriod):
        deal_publish(deal_id=draft.id)

    other = _draft(product)
    Product.objects.filter(pk=product.pk).update(price=9_000)
    with pytest.raises(ValidationFailed):
        deal_publish(deal_id=other.id)
    assert _stock(product) == 100


def test_pause_resume_are_idempotent_and_reach_the_gate():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**{**_kwargs(product), "publish": True})

    assert deal_pause(deal_id=deal.id).status == "paused"
    assert deal_pause(deal_id=deal.id).status == "paused"
    assert gate.deal_state_read(deal.id)["paused"] == "1"

    assert deal_resume(deal_id=deal.id).status == "active"
    assert deal_resume(deal_id=deal.id).status == "active"
    assert gate.deal_state_read(deal.id)["paused"] == "0"


def _kwargs(product, **overrides) -> dict:
    now = timezone.now()
    return {
        "product_id": product.id,
        "deal_price": 9_000,
        "deal_stock": 30,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(hours=1),
    } | overrides


def test_end_returns_unsold_units_exactly_once_and_unloads_the_gate():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=12)  # 18 sold and written

    ended = deal_end(deal_id=deal.id)

    assert ended.status == "ended"
    assert (ended.remaining_stock, ended.closed_at is not None) == (0, True)
    assert _stock(product) == 70 + 12
    assert gate.deal_remaining([deal.id]) == {}
    # again, by an operator and by the closing beat: nothing more comes back
    deal_end(deal_id=deal.id)
    assert deal_close(deal_id=deal.id).closed_at == ended.closed_at
    assert _stock(product) == 82


def test_close_waits_for_the_write_backlog_and_stops_sales_first(settings, shopper_client):

    # given: a live deal with one accepted purchase not yet written
    settings.ORDER_PIPELINE = "redis_async"
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    gate.deal_state_load(
        deal, pending={}, holdings=gate.Holdings()
    )  # on_commit does not run in this test
    assert shopper_client.post("/orders", deal_line(deal), format="json").status_code == 202

    # when: the deal ends; closing must wait for the write
    ended = deal_end(deal_id=deal.id)
    assert ended.ended_at is not None and ended.closed_at is None
    assert deal_close(deal_id=deal.id) is None
    assert (_stock(product), Deal.objects.get(pk=deal.pk).remaining_stock) == (70, 30)
    # ... and no purchase can slip in between the backlog check and the close
    late = shopper_client.post("/orders", deal_line(deal), format="json")
    assert late.json()["error"] == "DEAL_NOT_ACTIVE"

    # then: once written, the 29 unsold units go back
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert deal_close(deal_id=deal.id).closed_at is not None
    assert _stock(product) == 99


def test_a_clock_behind_the_end_cannot_sell_after_sales_stopped(settings):
    """The race the close must win: a web server read "now" just before ends_at, its script runs
    after the closer checked the backlog. Stopping sales in Redis first makes it refuse."""
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    gate.deal_state_load(deal, pending={}, holdings=gate.Holdings())

    assert gate.deal_sales_stop(deal.id) == 0
    reservation = gate.Reservation.new(
        user_id=deal.id, quantity=1, created_at=timezone.now(), request_hash="",
        idempotency_key=None, shipping=None,
    )  # fmt: skip
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=product.id, reservation=reservation, mode="async"
    )

    assert result.outcome == gate.Outcome.ENDED
    assert gate.deal_backlog(deal.id) == 0


def test_close_refuses_a_deal_still_on_sale_and_drafts():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    with pytest.raises(InvalidDealState):
        deal_close(deal_id=deal.id)
    with pytest.raises(InvalidDealState):
        deal_close(deal_id=_draft(product).id)
    with pytest.raises(InvalidDealState):
        deal_end(deal_id=_draft(product).id)
    assert _stock(product) == 70


def test_close_after_the_clock_ended_it():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    Deal.objects.filter(pk=deal.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    assert deal_close(deal_id=deal.id).closed_at is not None
    assert _stock(product) == 100


def test_lifecycle_errors_on_unknown_deal():

    for action in (deal_publish, deal_pause, deal_resume, deal_end, deal_close):
        with pytest.raises(DealNotFound):
            action(deal_id=uuid.uuid4())


def test_paused_or_ended_deal_cannot_be_paused_or_resumed():
    product = ProductFactory(price=10_000, stock=100)
    deal = deal_create(**_kwargs(product), publish=True)
    assert deal_resume(deal_id=deal.id).status == "active"  # not paused: a no-op
    deal_end(deal_id=deal.id)
    with pytest.raises(InvalidDealState):
        deal_pause(deal_id=deal.id)
    with pytest.raises(InvalidDealState):
        deal_resume(deal_id=deal.id)
    assert Deal.objects.get(pk=deal.pk).paused_at is None


def test_update_draft_terms_but_not_published_terms():
    product = ProductFactory(price=10_000, stock=100)
    draft = _draft(product)

    changed = deal_update(deal_id=draft.id, deal_stock=40, deal_price=8_000)
    assert (changed.deal_stock, changed.remaining_stock, changed.deal_price) == (40, 40, 8_000)

    deal = deal_publish(deal_id=draft.id)
    assert _stock(product) == 60
    with pytest.raises(InvalidDealState):
        deal_update(deal_id=deal.id, deal_stock=50)
    with pytest.raises(InvalidDealState):
        deal_update(deal_id=deal.id, deal_price=7_000)
    later = deal.ends_at + timedelta(hours=1)
    assert deal_update(deal_id=deal.id, ends_at=later, per_user_limit=3).ends_at == later
    assert gate.deal_state_read(deal.id)["per_user_limit"] == "3"
    unchanged = Deal.objects.get(pk=deal.pk)
    assert (unchanged.deal_stock, unchanged.deal_price, _stock(product)) == (40, 8_000, 60)


def test_update_checks_period_and_price():
    product = ProductFactory(price=10_000, stock=100)
    draft = _draft(product)
    with pytest.raises(InvalidPeriod):
        deal_update(deal_id=draft.id, ends_at=draft.starts_at)
    with pytest.raises(ValidationFailed):
        deal_update(deal_id=draft.id, deal_price=10_000)
    assert Deal.objects.get(pk=draft.pk).deal_price == 9_000
