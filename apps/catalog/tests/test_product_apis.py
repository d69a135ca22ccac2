"""Product endpoints: CRUD, permissions, field bounds, bad ids, page bounds, query counts."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import Product
from apps.catalog.tests.factories import ProductFactory
from conftest import assert_error

pytestmark = pytest.mark.django_db

PRODUCT_KEYS = [
    "id",
    "name",
    "description",
    "price",
    "stock",
    "category",
    "image_url",
    "created_at",
    "updated_at",
]
VALID = {
    "name": "Galaxy Buds",
    "description": "Wireless earbuds",
    "price": 199_000,
    "stock": 50,
    "category": "electronics",
    "image_url": "https://img.example.com/buds.png",
}


def _products_newest_first(n: int, **kwargs) -> list[Product]:
    base = timezone.now() - timedelta(days=1)
    products = [ProductFactory(**kwargs) for _ in range(n)]
    for i, product in enumerate(products):  # distinct, known creation times
        Product.objects.filter(pk=product.pk).update(created_at=base + timedelta(minutes=i))
    return list(reversed(products))


# --- create ------------------------------------------------------------------------------------


def test_staff_creates_product(staff_client):
    response = staff_client.post("/products", VALID, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert list(body) == PRODUCT_KEYS
    product = Product.objects.get()
    assert body["id"] == str(product.id)
    assert {k: body[k] for k in VALID} == VALID
    assert body["created_at"] == timezone.localtime(product.created_at).isoformat()
    assert body["created_at"].endswith("+09:00")


def test_create_defaults_optional_fields(staff_client):
    response = staff_client.post("/products", {"name": "Mug", "price": 0}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["stock"], body["description"], body["category"], body["image_url"]) == (
        0,
        "",
        "",
        "",
    )


def test_anonymous_cannot_create(api_client):
    assert_error(api_client.post("/products", VALID, format="json"), 401, "UNAUTHORIZED")
    assert Product.objects.count() == 0


def test_shopper_cannot_create(shopper_client):
    assert_error(shopper_client.post("/products", VALID, format="json"), 403, "FORBIDDEN")
    assert Product.objects.count() == 0


def test_demoted_operator_loses_write_access_with_a_valid_token(staff_client, staff_user):
    staff_user.is_staff = False
    staff_user.save()

    assert_error(staff_client.post("/products", VALID, format="json"), 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 201),
        ("name", None),
        ("price", -1),
        ("price", 1_000_000_000_001),
        ("price", "abc"),
        ("price", 1.5),
        ("stock", -1),
        ("stock", 2_147_483_648),
        ("category", "c" * 51),
        ("image_url", "not a url"),
        ("image_url", "https://x.example.com/" + "a" * 500),
        ("description", "d" * 5001),
        ("unexpected", 1),
    ],
)
def test_create_rejects_out_of_bounds_field(staff_client, field, value):
    body = assert_error(
        staff_client.post("/products", {**VALID, field: value}, format="json"),
        422,
        "VALIDATION_ERROR",
    )
    assert list(body["details"]) == [field]
    assert Product.objects.count() == 0


@pytest.mark.parametrize("field", ["name", "price"])
def test_create_requires_field(staff_client, field):
    data = {k: v for k, v in VALID.items() if k != field}
    body = assert_error(
        staff_client.post("/products", data, format="json"), 422, "VALIDATION_ERROR"
    )
    assert body["details"] == {field: ["This field is required."]}


def test_create_accepts_bounds(staff_client):
    data = {**VALID, "name": "x" * 200, "price": 1_000_000_000_000, "stock": 2_147_483_647}
    assert staff_client.post("/products", data, format="json").status_code == 201


def test_create_rejects_non_object_and_bad_json(staff_client):
    assert_error(staff_client.post("/products", [1, 2], format="json"), 422, "VALIDATION_ERROR")
    bad = staff_client.post("/products", "{nope", content_type="application/json")
    assert_error(bad, 422, "VALIDATION_ERROR")


# --- read --------------------------------------------------------------------------------------


def test_detail(api_client):
    product = ProductFactory(name="Kettle", price=39_000, stock=7)

    body = api_client.get(f"/products/{product.id}").json()

    assert body["id"] == str(product.id)
    assert (body["name"], body["price"], body["stock"]) == ("Kettle", 39_000, 7)


def test_detail_unknown_and_malformed_ids_are_404(api_client):
    assert_error(api_client.get(f"/products/{uuid.uuid4()}"), 404, "NOT_FOUND", details=None)
    assert_error(api_client.get("/products/not-a-uuid"), 404, "NOT_FOUND")
    assert_error(api_client.get("/products/123"), 404, "NOT_FOUND")
    assert_error(api_client.get("/products/not-a-uuid/stock"), 404, "NOT_FOUND")


def test_list_newest_first_with_pages(api_client):
    products = _products_newest_first(5)

    first = api_client.get("/products?page=1&size=2").json()
    last = api_client.get("/products?page=3&size=2").json()
    past = api_client.get("/products?page=4&size=2").json()

    assert [p["id"] for p in first["items"]] == [str(p.id) for p in products[:2]]
    assert (first["total"], first["page"], first["size"]) == (5, 1, 2)
    assert [p["id"] for p in last["items"]] == [str(products[4].id)]
    assert past == {"items": [], "total": 5, "page": 4, "size": 2}


def test_list_defaults(api_client):
    _products_newest_first(3)

    body = api_client.get("/products").json()

    assert (body["total"], body["page"], body["size"], len(body["items"])) == (3, 1, 20, 3)
    assert list(body["items"][0]) == PRODUCT_KEYS


def test_list_filters_by_category(api_client):
    food = _products_newest_first(2, category="food")
    _products_newest_first(3, category="beauty")

    body = api_client.get("/products?category=food").json()

    assert body["total"] == 2
    assert [p["id"] for p in body["items"]] == [str(p.id) for p in food]


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "size=0", "size=101", "size=x", "category=" + "c" * 51],
)
def test_list_rejects_bad_query(api_client, query):
    body = assert_error(api_client.get(f"/products?{query}"), 422, "VALIDATION_ERROR")
    assert list(body["details"]) == [query.split("=")[0]]


@pytest.mark.parametrize("size", [1, 20, 100])
@pytest.mark.parametrize("cached", [False, True])
def test_list_query_count_is_constant_in_page_size(
    api_client, django_assert_num_queries, settings, size, cached
):
    settings.CATALOG_CACHE_ENABLED = cached
    _products_newest_first(100)

    with django_assert_num_queries(2):  # count + page (a cold cache computes the same two)
        body = api_client.get(f"/products?size={size}").json()
    assert len(body["items"]) == size
    if cached:
        with django_assert_num_queries(0):
            assert api_client.get(f"/products?size={size}").json() == body


def test_list_past_the_end_skips_the_page_query(api_client, django_assert_num_queries, cache_off):
    _products_newest_first(3)
    with django_assert_num_queries(1):
        assert api_client.get("/products?page=9").json()["items"] == []


# --- update ------------------------------------------------------------------------------------


def test_staff_patches_some_fields(staff_client):
    product = ProductFactory(name="Old", description="keep me", price=10_000, stock=3)

    response = staff_client.patch(
        f"/products/{product.id}", {"name": "New", "price": 12_000}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["price"], body["description"], body["stock"]) == (
        "New",
        12_000,
        "keep me",
        3,
    )
    product.refresh_from_db()
    assert (product.name, product.price, product.description) == ("New", 12_000, "keep me")


def test_patch_refuses_stock_and_bounds(staff_client):
    product = ProductFactory(name="Same", price=10_000, stock=3)
    before = Product.objects.values().get(pk=product.pk)

    for data, field in [
        ({"stock": 100}, "stock"),
        ({"price": -5}, "price"),
        ({"name": ""}, "name"),
        ({"image_url": "ftp:/x"}, "image_url"),
    ]:
        body = assert_error(
            staff_client.patch(f"/products/{product.id}", data, format="json"),
            422,
            "VALIDATION_ERROR",
        )
        assert list(body["details"]) == [field]
    assert Product.objects.values().get(pk=product.pk) == before


def test_patch_permissions_and_404(api_client, shopper_client, staff_client):
    product = ProductFactory(name="Same")
    url = f"/products/{product.id}"

    assert_error(api_client.patch(url, {"name": "X"}, format="json"), 401, "UNAUTHORIZED")
    assert_error(shopper_client.patch(url, {"name": "X"}, format="json"), 403, "FORBIDDEN")
    assert_error(
        staff_client.patch(f"/products/{uuid.uuid4()}", {"name": "X"}, format="json"),
        404,
        "NOT_FOUND",
    )
    assert_error(
        staff_client.patch("/products/zzz", {"name": "X"}, format="json"), 404, "NOT_FOUND"
    )
    assert Product.objects.get().name == "Same"


def test_unsupported_method_is_405(staff_client):
    product = ProductFactory()
    assert_error(staff_client.delete(f"/products/{product.id}"), 405, "METHOD_NOT_ALLOWED")
    assert Product.objects.count() == 1


# --- stock -------------------------------------------------------------------------------------


def test_stock_get_and_adjust(api_client, staff_client):
    product = ProductFactory(stock=10)
    url = f"/products/{product.id}/stock"

    assert api_client.get(url).json()["stock"] == 10
    taken = staff_client.patch(url, {"delta": -4}, format="json")
    added = staff_client.patch(url, {"delta": 7}, format="json")

    assert taken.status_code == 200
    assert list(taken.json()) == ["product_id", "stock", "updated_at"]
    assert (taken.json()["product_id"], taken.json()["stock"]) == (str(product.id), 6)
    assert added.json()["stock"] == 13
    assert api_client.get(url).json()["stock"] == 13


def test_stock_never_below_zero(staff_client):
    product = ProductFactory(stock=3)
    before = Product.objects.values().get(pk=product.pk)

    response = staff_client.patch(f"/products/{product.id}/stock", {"delta": -4}, format="json")

    assert_error(
        response,
        400,
        "INSUFFICIENT_STOCK",
        details={"product_id": str(product.id), "stock": 3, "delta": -4},
    )
    assert Product.objects.values().get(pk=product.pk) == before


def test_stock_to_exactly_zero(staff_client):
    product = ProductFactory(stock=3)
    response = staff_client.patch(f"/products/{product.id}/stock", {"delta": -3}, format="json")
    assert response.json()["stock"] == 0


def test_stock_never_above_column_range(staff_client):
    product = ProductFactory(stock=2_147_483_000)
    response = staff_client.patch(f"/products/{product.id}/stock", {"delta": 1000}, format="json")
    assert_error(response, 422, "VALIDATION_ERROR")
    assert Product.objects.get().stock == 2_147_483_000


@pytest.mark.parametrize("data", [{}, {"delta": "x"}, {"delta": 1.5}, {"delta": 2_147_483_648}])
def test_stock_adjust_validates(staff_client, data):
    product = ProductFactory(stock=3)
    response = staff_client.patch(f"/products/{product.id}/stock", data, format="json")
    assert list(assert_error(response, 422, "VALIDATION_ERROR")["details"]) == ["delta"]
    assert Product.objects.get().stock == 3


def test_stock_adjust_permissions_and_404(api_client, shopper_client, staff_client):
    product = ProductFactory(stock=3)
    url = f"/products/{product.id}/stock"

    assert_error(api_client.patch(url, {"delta": 1}, format="json"), 401, "UNAUTHORIZED")
    assert_error(shopper_client.patch(url, {"delta": 1}, format="json"), 403, "FORBIDDEN")
    missing = f"/products/{uuid.uuid4()}/stock"
    assert_error(staff_client.patch(missing, {"delta": 1}, format="json"), 404, "NOT_FOUND")
    assert_error(api_client.get(missing), 404, "NOT_FOUND")
    assert Product.objects.get().stock == 3


def test_stock_read_is_never_cached(api_client, cache_on, django_assert_num_queries):
    product = ProductFactory(stock=5)
    url = f"/products/{product.id}/stock"
    api_client.get(url)

    Product.objects.filter(pk=product.pk).update(stock=99)  # behind every cache's back

    with django_assert_num_queries(1):
        assert api_client.get(url).json()["stock"] == 99
