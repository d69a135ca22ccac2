"""A price never drops to or below an open deal's price; product-list cache keys are bounded by
the catalog, not by what clients send; paused deals are marked in the public list (docs/security.md,
"Business rules")."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_redis import get_redis_connection

from apps.catalog.models import Product
from apps.deals.models import Deal
from apps.deals.services import deal_pause
from apps.orders.tests.helpers import make_deal, make_product
from conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("price", [5_000, 4_999, 0])
def test_staff_cannot_price_a_product_at_or_below_its_open_deal(staff_client, price):
    deal = make_deal(deal_price=5_000)

    response = staff_client.patch(f"/products/{deal.product_id}", {"price": price}, format="json")

    assert_error(
        response,
        400,
        "PRICE_NOT_ABOVE_DEAL",
        {"price": price, "deal_id": str(deal.id), "deal_price": 5_000},
    )
    assert Product.objects.get(pk=deal.product_id).price == 10_000  # unchanged


def test_the_highest_open_deal_price_is_the_floor(staff_client):
    product = make_product(price=20_000, stock=100)
    make_deal(product=product, deal_price=5_000)
    scheduled = make_deal(product=product, deal_price=9_000, starts_in=timedelta(days=1))

    response = staff_client.patch(f"/products/{product.id}", {"price": 9_000}, format="json")

    assert_error(response, 400, "PRICE_NOT_ABOVE_DEAL")
    assert response.json()["details"]["deal_id"] == str(scheduled.id)
    ok = staff_client.patch(f"/products/{product.id}", {"price": 9_001}, format="json")
    assert (ok.status_code, ok.json()["price"]) == (200, 9_001)


def test_ended_closed_and_draft_deals_do_not_hold_the_price(staff_client):
    product = make_product(price=20_000, stock=100)
    now = timezone.now()
    make_deal(product=product, deal_price=15_000, published=False)
    past = make_deal(product=product, deal_price=16_000, starts_in=-timedelta(hours=3))
    ended = make_deal(product=product, deal_price=17_000)
    Deal.objects.filter(pk=ended.pk).update(ended_at=now)
    assert past.ends_at < now

    response = staff_client.patch(f"/products/{product.id}", {"price": 1_000}, format="json")

    assert (response.status_code, response.json()["price"]) == (200, 1_000)


def test_the_admin_refuses_the_price_too(operator_client):
    deal = make_deal(deal_price=5_000)
    product = Product.objects.get(pk=deal.product_id)
    form = {
        "name": product.name,
        "description": "",
        "price": 4_000,
        "category": "",
        "image_url": "",
        "stock_delta": "",
    }

    response = operator_client.post(
        f"/admin/catalog/product/{product.id}/change/", form, follow=True
    )

    assert "PRICE_NOT_ABOVE_DEAL" in response.content.decode()
    assert Product.objects.get(pk=product.id).price == 10_000


# --- bounded product-list cache keys -----------------------------------------------------------


def _cache_keys() -> set[bytes]:
    # The cache's own Redis database (not the gate's: settings keep them apart).
    keys = get_redis_connection("default").scan_iter(match="*:c:*")
    return {k for k in keys if b":fill" not in k}


def test_attacker_chosen_list_parameters_add_no_cache_keys(api_client, cache_on):
    make_product(stock=5)
    assert api_client.get("/products").status_code == 200
    baseline = _cache_keys()
    assert baseline  # the real page and its total are cached

    for i in range(30):
        assert api_client.get(f"/products?category=nope-{i}").json()["total"] == 0
        assert api_client.get(f"/products?page={1000 + i}&size={1 + i}").json()["items"] == []

    assert _cache_keys() == baseline


def test_real_categories_and_pages_are_still_cached(
    api_client, cache_on, django_assert_num_queries
):
    product = make_product(stock=5)
    Product.objects.filter(pk=product.pk).update(category="audio")
    api_client.get("/products?category=audio")  # fills

    with django_assert_num_queries(0):
        body = api_client.get("/products?category=audio").json()

    assert body["total"] == 1


# --- paused deals are marked in the public list ---------------------------------------------------


def test_a_paused_deal_is_listed_as_paused(api_client):
    live, paused = make_deal(), make_deal()
    deal_pause(deal_id=paused.id)

    items = {d["id"]: d["status"] for d in api_client.get("/products/deals").json()["items"]}

    assert items == {str(live.id): "active", str(paused.id): "paused"}
