"""Deal endpoints: creation carves the quota, list of open deals, detail with live stock."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import Product
from apps.catalog.tests.factories import ProductFactory
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.tests.factories import DealFactory
from apps.deals.tests.gate_faults import set_remaining
from conftest import assert_error

pytestmark = pytest.mark.django_db

DEAL_KEYS = [
    "id",
    "product_id",
    "product",
    "deal_price",
    "original_price",
    "deal_stock",
    "remaining_stock",
    "per_user_limit",
    "starts_at",
    "ends_at",
    "status",
    "waiting_room",
    "queue_seed",
    "created_at",
]


def _iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


def _payload(product, **overrides) -> dict:
    return {
        "product_id": str(product.id),
        "deal_price": 29_000,
        "deal_stock": 30,
        "per_user_limit": 2,
        "starts_at": _iso(-timedelta(minutes=1)),
        "ends_at": _iso(timedelta(hours=2)),
    } | overrides


def _unchanged(product) -> tuple:
    stock = Product.objects.values_list("stock", "updated_at").get(pk=product.pk)
    return stock, Deal.objects.count()


# --- create ------------------------------------------------------------------------------------


def test_staff_creates_and_publishes_a_deal_carving_the_quota(staff_client):
    product = ProductFactory(price=50_000, stock=100)

    response = staff_client.post("/products/deals", _payload(product), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert list(body) == DEAL_KEYS
    deal = Deal.objects.get()
    assert body["id"] == str(deal.id)
    assert (body["deal_price"], body["original_price"], body["deal_stock"]) == (29_000, 50_000, 30)
    assert (body["remaining_stock"], body["per_user_limit"], body["status"]) == (30, 2, "active")
    assert body["product"]["stock"] == 70
    assert deal.published_at is not None
    assert Product.objects.get(pk=product.pk).stock == 70


def test_create_scheduled_deal_and_default_limit(staff_client):
    product = ProductFactory(price=50_000, stock=100)
    data = _payload(product, starts_at=_iso(timedelta(days=1)), ends_at=_iso(timedelta(days=2)))
    del data["per_user_limit"]

    body = staff_client.post("/products/deals", data, format="json").json()

    assert (body["status"], body["per_user_limit"]) == ("scheduled", 1)


def test_create_takes_the_whole_stock(staff_client):
    product = ProductFactory(price=50_000, stock=30)
    response = staff_client.post("/products/deals", _payload(product), format="json")
    assert response.status_code == 201
    assert Product.objects.get(pk=product.pk).stock == 0


def test_create_insufficient_stock_changes_nothing(staff_client):
    product = ProductFactory(price=50_000, stock=29)
    before = _unchanged(product)

    response = staff_client.post("/products/deals", _payload(product), format="json")

    assert_error(
        response,
        400,
        "INSUFFICIENT_STOCK",
        details={"product_id": str(product.id), "stock": 29, "delta": -30},
    )
    assert _unchanged(product) == before


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (timedelta(hours=2), timedelta(hours=1)),  # starts after it ends
        (timedelta(hours=1), timedelta(hours=1)),  # empty window
        (-timedelta(hours=2), -timedelta(hours=1)),  # entirely in the past
    ],
)
def test_create_invalid_period_changes_nothing(staff_client, starts, ends):
    product = ProductFactory(price=50_000, stock=100)
    before = _unchanged(product)
    now = timezone.now()
    data = _payload(product, starts_at=(now + starts).isoformat(), ends_at=(now + ends).isoformat())

    assert_error(staff_client.post("/products/deals", data, format="json"), 400, "INVALID_PERIOD")
    assert _unchanged(product) == before


def test_create_unknown_product_is_404(staff_client):
    product_id = str(uuid.uuid4())
    response = staff_client.post(
        "/products/deals", _payload(ProductFactory.build(), product_id=product_id), format="json"
    )
    assert_error(response, 404, "PRODUCT_NOT_FOUND", details={"product_id": product_id})
    assert Deal.objects.count() == 0


@pytest.mark.parametrize("price", [50_000, 60_000])
def test_create_deal_price_must_be_below_list_price(staff_client, price):
    product = ProductFactory(price=50_000, stock=100)
    before = _unchanged(product)

    response = staff_client.post(
        "/products/deals", _payload(product, deal_price=price), format="json"
    )

    assert_error(
        response,
        422,
        "VALIDATION_ERROR",
        details={"deal_price": ["Must be below the product's price (50000)."]},
    )
    assert _unchanged(product) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product_id", "not-a-uuid"),
        ("product_id", None),
        ("deal_price", -1),
        ("deal_price", "cheap"),
        ("deal_stock", 0),
        ("deal_stock", -3),
        ("deal_stock", 2_147_483_648),
        ("per_user_limit", 0),
        ("per_user_limit", 1001),
        ("starts_at", "yesterday"),
        ("starts_at", "2026-13-40T00:00:00+09:00"),
        ("ends_at", ""),
        ("ends_at", 12345),
        # Found by the fuzzer: year 404 was accepted and came back as "...+08:27:52" (Seoul's
        # 1908 offset), not an RFC 3339 time; an id sent as a number was read as UUID(int=n).
        ("starts_at", "0404-04-20T23:29:09Z"),
        ("starts_at", "1999-12-31T23:59:59Z"),
        ("ends_at", "9999-12-31T23:59:59-12:00"),
        ("ends_at", "2100-01-01T09:00:00+09:00"),
        ("product_id", 1),
    ],
)
def test_create_validates_every_field(staff_client, field, value):
    product = ProductFactory(price=50_000, stock=100)
    before = _unchanged(product)

    response = staff_client.post(
        "/products/deals", _payload(product, **{field: value}), format="json"
    )

    assert list(assert_error(response, 422, "VALIDATION_ERROR")["details"]) == [field]
    assert _unchanged(product) == before


def test_create_free_deal_is_allowed(staff_client):
    product = ProductFactory(price=50_000, stock=100)
    response = staff_client.post("/products/deals", _payload(product, deal_price=0), format="json")
    assert response.status_code == 201


def test_create_permissions(api_client, shopper_client):
    product = ProductFactory(price=50_000, stock=100)
    before = _unchanged(product)

    unauth = api_client.post("/products/deals", _payload(product), format="json")
    assert_error(unauth, 401, "UNAUTHORIZED")
    forbidden = shopper_client.post("/products/deals", _payload(product), format="json")
    assert_error(forbidden, 403, "FORBIDDEN")
    assert _unchanged(product) == before


# --- list --------------------------------------------------------------------------------------


def test_list_shows_deals_with_an_open_window_soonest_ending_first(api_client):
    now = timezone.now()
    later = DealFactory(ends_at=now + timedelta(hours=5))
    sooner = DealFactory(ends_at=now + timedelta(hours=1))
    paused = DealFactory(ends_at=now + timedelta(hours=3), paused_at=now)
    sold_out = DealFactory(ends_at=now + timedelta(hours=4), remaining_stock=0)
    DealFactory(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))  # upcoming
    DealFactory(starts_at=now - timedelta(hours=2), ends_at=now - timedelta(minutes=1))  # over
    DealFactory(ended_at=now)  # ended early
    DealFactory(published_at=None)  # draft

    body = api_client.get("/products/deals").json()

    assert (body["total"], body["page"], body["size"]) == (4, 1, 20)
    assert [d["id"] for d in body["items"]] == [
        str(d.id) for d in (sooner, paused, sold_out, later)
    ]
    assert [d["status"] for d in body["items"]] == ["active", "paused", "sold_out", "active"]
    assert list(body["items"][0]) == DEAL_KEYS


def test_list_pages(api_client):
    now = timezone.now()
    deals = [DealFactory(ends_at=now + timedelta(hours=i + 1)) for i in range(3)]

    second = api_client.get("/products/deals?page=2&size=2").json()

    assert [d["id"] for d in second["items"]] == [str(deals[2].id)]
    assert (second["total"], second["page"], second["size"]) == (3, 2, 2)


@pytest.mark.parametrize("query", ["page=0", "size=0", "size=101", "page=x"])
def test_list_rejects_bad_page(api_client, query):
    assert_error(api_client.get(f"/products/deals?{query}"), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("size", [1, 10, 100])
@pytest.mark.parametrize("in_gate", [True, False])
def test_list_query_count_is_constant_in_page_size(
    api_client, django_assert_num_queries, settings, size, in_gate
):
    deals = [DealFactory() for _ in range(100)]
    if in_gate:  # live deals of a Redis pipeline: remaining comes from Redis (the real gate)
        for deal in deals:
            gate.deal_state_load(deal, pending={}, holdings=gate.Holdings())
    live = 0 if in_gate else 1  # else one query for the live remaining of the whole page

    settings.CATALOG_CACHE_ENABLED = False
    with django_assert_num_queries(2 + live):  # count + page with products (select_related)
        assert len(api_client.get(f"/products/deals?size={size}").json()["items"]) == size

    settings.CATALOG_CACHE_ENABLED = True
    with django_assert_num_queries(3 + live):  # cold: + when the open set next changes (TTL)
        cold = api_client.get(f"/products/deals?size={size}").json()
    with django_assert_num_queries(0 + live):
        assert api_client.get(f"/products/deals?size={size}").json() == cold


def test_remaining_is_live_from_the_database_when_the_gate_does_not_hold_the_deal(
    api_client, cache_on
):
    deal = DealFactory(deal_stock=10, remaining_stock=10)
    api_client.get("/products/deals")  # cached with remaining 10
    api_client.get(f"/products/deals/{deal.id}")

    # A database pipeline (db_lock/db_update) sells 3 units: no cache invalidation involved.
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=7)

    assert api_client.get("/products/deals").json()["items"][0]["remaining_stock"] == 7
    assert api_client.get(f"/products/deals/{deal.id}").json()["remaining_stock"] == 7


def test_list_and_detail_take_remaining_from_the_gate(api_client, cache_on):
    live = DealFactory(deal_stock=10, remaining_stock=10)
    not_loaded = DealFactory(deal_stock=10, remaining_stock=4)
    api_client.get("/products/deals")  # warm the cache with the database values
    api_client.get(f"/products/deals/{live.id}")

    # The gate (Redis) holds only `live`, which has sold out there.
    gate.deal_state_load(live, pending={}, holdings=gate.Holdings())
    set_remaining(live.id, 0)

    items = {d["id"]: d for d in api_client.get("/products/deals").json()["items"]}
    detail = api_client.get(f"/products/deals/{live.id}").json()

    assert (items[str(live.id)]["remaining_stock"], items[str(live.id)]["status"]) == (
        0,
        "sold_out",
    )
    assert (detail["remaining_stock"], detail["status"]) == (0, "sold_out")
    assert (items[str(not_loaded.id)]["remaining_stock"], items[str(not_loaded.id)]["status"]) == (
        4,
        "active",
    )


# --- detail ------------------------------------------------------------------------------------


def test_detail_embeds_the_product(api_client):
    deal = DealFactory(product__name="Blender", product__price=80_000, deal_price=49_000)

    body = api_client.get(f"/products/deals/{deal.id}").json()

    assert body["id"] == str(deal.id)
    assert body["product"]["name"] == "Blender"
    assert (body["original_price"], body["deal_price"]) == (80_000, 49_000)
    assert body["product_id"] == body["product"]["id"] == str(deal.product_id)


def test_detail_of_ended_deal_says_ended(api_client):
    deal = DealFactory(ended_at=timezone.now())
    assert api_client.get(f"/products/deals/{deal.id}").json()["status"] == "ended"


def test_detail_status_follows_the_clock_even_when_cached(api_client, cache_on, monkeypatch):
    deal = DealFactory(
        starts_at=timezone.now() - timedelta(hours=2),
        ends_at=timezone.now() + timedelta(seconds=2),
    )
    assert api_client.get(f"/products/deals/{deal.id}").json()["status"] == "active"
    # Five seconds later, served from the same cached body: status comes from the clock.
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=5))
    assert api_client.get(f"/products/deals/{deal.id}").json()["status"] == "ended"


def test_detail_404s(api_client):
    draft = DealFactory(published_at=None)
    assert_error(api_client.get(f"/products/deals/{uuid.uuid4()}"), 404, "NOT_FOUND")
    assert_error(api_client.get(f"/products/deals/{draft.id}"), 404, "NOT_FOUND")
    assert_error(api_client.get("/products/deals/not-a-uuid"), 404, "NOT_FOUND")
    assert_error(api_client.get("/products/deals/123/extra"), 404, "NOT_FOUND")
