"""Deal reads are cached, but every deal or product write is visible at once and the open list
expires when the clock opens or closes a deal.

The expiry tests stop the app's clock (`frozen_now`), so the seconds to the next transition are
exact rather than "about 20, minus however long the test took"."""

import math
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.catalog.tests.factories import ProductFactory
from apps.deals.models import Deal
from apps.deals.services import deal_create, deal_pause
from apps.deals.tests.factories import DealFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_deal_and_product_writes_invalidate_deal_reads(api_client, staff_client, cache_on):
    product = ProductFactory(price=10_000, stock=100)
    now = timezone.now()
    deal = deal_create(
        product_id=product.id,
        deal_price=5_000,
        deal_stock=10,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        publish=True,
    )
    assert api_client.get(f"/products/deals/{deal.id}").json()["status"] == "active"
    assert api_client.get("/products/deals").json()["total"] == 1

    deal_pause(deal_id=deal.id)
    assert api_client.get(f"/products/deals/{deal.id}").json()["status"] == "paused"

    staff_client.patch(f"/products/{product.id}", {"name": "Renamed"}, format="json")
    assert api_client.get(f"/products/deals/{deal.id}").json()["product"]["name"] == "Renamed"
    assert api_client.get("/products/deals").json()["items"][0]["product"]["name"] == "Renamed"


@pytest.fixture
def frozen_now(monkeypatch) -> datetime:
    """The app's clock (django.utils.timezone.now) stopped at one instant for the whole test."""
    instant = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant


def test_open_list_expires_when_the_next_deal_opens_or_closes(api_client, cache_on, frozen_now):
    DealFactory(ends_at=frozen_now + timedelta(seconds=40))
    DealFactory(
        starts_at=frozen_now + timedelta(seconds=20), ends_at=frozen_now + timedelta(hours=1)
    )

    api_client.get("/products/deals")

    assert _open_list_ttl() == 20  # the upcoming deal opens in 20 s, before the open one closes


def test_list_without_upcoming_transitions_uses_the_normal_ttl(api_client, settings, frozen_now):
    settings.CATALOG_CACHE_ENABLED = True
    settings.CATALOG_CACHE_TTL = 300
    DealFactory(ends_at=frozen_now + timedelta(days=1))

    api_client.get("/products/deals")

    assert _open_list_ttl() == 300
    assert Deal.objects.count() == 1


def _open_list_ttl() -> int:
    """Seconds the cached open list was stored for. Redis counts a TTL down on its own clock, which
    no test can stop; rounding the remaining milliseconds up gives back the SET's whole seconds
    (the read follows the SET in the same thread, far less than a second later)."""
    raw = cache.client.get_client()
    (key,) = raw.keys("*deals-open*")
    return math.ceil(raw.pttl(key) / 1000)
