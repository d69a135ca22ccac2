"""Cloning a deal into a new draft: exactly the offer and the room's tuning, nothing the sale did,
and a period that can't be in the past."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.catalog.models import Product, StockMovement
from apps.catalog.tests.factories import ProductFactory
from apps.deals import gate
from apps.deals.clone import CLONED_FIELDS, clone_period, deal_clone
from apps.deals.models import Deal, DealStatus
from apps.deals.tests.factories import DealFactory

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=SEOUL)


@pytest.mark.parametrize(
    ("starts", "now", "expected_start"),
    [
        (_at(1, 20), _at(10, 15), _at(11, 20)),  # a week-old deal: tomorrow, same time
        (_at(1, 20), _at(10, 21), _at(12, 20)),  # tomorrow's slot is under a day away
        (_at(11, 20), _at(10, 15), _at(12, 20)),  # tomorrow's deal: the day after it
        (_at(10, 20), _at(10, 20), _at(11, 20)),  # exactly a day ahead is enough
    ],
)
def test_the_clone_keeps_the_time_of_day_and_length_at_least_a_day_ahead(
    starts, now, expected_start
):
    starts_at, ends_at = clone_period(
        starts_at=starts, ends_at=starts + timedelta(minutes=30), now=now
    )

    assert (starts_at, ends_at) == (expected_start, expected_start + timedelta(minutes=30))


def test_a_clone_is_a_draft_copying_exactly_the_offer_and_the_room():
    # given a closed, sold-out deal with a tuned waiting room and a history
    product = ProductFactory(price=50_000, stock=7)
    ago = timezone.now() - timedelta(days=2)
    source = DealFactory(
        product=product, deal_price=29_000, deal_stock=40, remaining_stock=0, per_user_limit=3,
        starts_at=ago - timedelta(hours=1), ends_at=ago, ended_at=ago, closed_at=ago,
        paused_at=ago - timedelta(minutes=30),
        state_version=9, room_enabled=True, room_rate=250, room_prequeue_seconds=900,
        room_admission_seconds=45, room_overbooking=Decimal("1.50"),
    )  # fmt: skip

    # when
    clone = deal_clone(deal_id=source.pk)

    # then: the listed fields are the source's, every other one is a new deal's
    clone.refresh_from_db()
    for name in CLONED_FIELDS:
        assert getattr(clone, name) == getattr(source, name), name
    assert clone.status == DealStatus.DRAFT
    fresh = {
        "published_at": None, "paused_at": None, "ended_at": None, "closed_at": None,
        "state_version": 0, "remaining_stock": 40,
    }  # fmt: skip
    assert {name: getattr(clone, name) for name in fresh} == fresh
    assert clone.pk != source.pk and clone.room_seed != source.room_seed
    assert clone.ends_at - clone.starts_at == timedelta(hours=1)
    assert clone.starts_at - source.starts_at == timedelta(days=4)  # tomorrow's slot is 23 h away
    copied_or_fresh = {*CLONED_FIELDS, *fresh, "id", "product", "room_seed", "starts_at"}
    others = {f.name for f in Deal._meta.concrete_fields} - copied_or_fresh
    assert others == {"ends_at", "created_at", "updated_at"}  # nothing left unconsidered
    # nothing of the sale: no orders, no stock moved, nothing in Redis
    assert not clone.orders.exists()
    assert not StockMovement.objects.filter(deal_id=clone.pk).exists()
    assert Product.objects.get(pk=product.pk).stock == 7
    assert not gate.deal_state_loaded(clone.pk)


def test_the_admin_action_opens_the_new_draft(operator_client):
    source = DealFactory()

    response = operator_client.post(
        "/admin/deals/deal/", {"action": "clone", "_selected_action": [str(source.pk)]}
    )

    clone = Deal.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/deals/deal/{clone.pk}/change/"
    assert (clone.published_at, clone.product_id) == (None, source.product_id)


def test_a_clone_whose_price_is_no_longer_below_the_list_price_is_refused(operator_client):
    source = DealFactory(deal_price=30_000)
    Product.objects.filter(pk=source.product_id).update(price=30_000)

    response = operator_client.post(
        "/admin/deals/deal/", {"action": "clone", "_selected_action": [str(source.pk)]},
        follow=True,
    )  # fmt: skip

    assert Deal.objects.count() == 1
    assert "Must be below the product&#x27;s price (30000)" in response.content.decode()
