import pytest

from apps.catalog.models import Product
from apps.orders.models import Order, OrderItem
from apps.orders.tests.helpers import make_product

pytestmark = pytest.mark.django_db


def lines(*pairs) -> dict:
    return {"items": [{"product_id": str(p.id), "quantity": q} for p, q in pairs]}


def test_regular_order_takes_stock_and_prices_from_the_server(shopper_client, user):
    a = make_product(price=12_000, stock=5, name="Kettle")
    b = make_product(price=3_500, stock=2, name="Mug")

    response = shopper_client.post("/orders", lines((a, 2), (b, 2)), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["total_amount"] == 2 * 12_000 + 2 * 3_500
    assert sorted((i["product_name"], i["quantity"], i["unit_price"]) for i in body["items"]) == [
        ("Kettle", 2, 12_000),
        ("Mug", 2, 3_500),
    ]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stock, b.stock) == (3, 0)


def test_insufficient_stock_on_one_line_writes_nothing(shopper_client):
    a = make_product(stock=5)
    b = make_product(stock=1)

    response = shopper_client.post("/orders", lines((a, 2), (b, 2)), format="json")

    assert response.status_code == 400
    assert response.json()["error"] == "INSUFFICIENT_STOCK"
    assert response.json()["details"]["product_id"] == str(b.id)
    assert Order.objects.count() == 0 and OrderItem.objects.count() == 0
    assert list(Product.objects.order_by("stock").values_list("stock", flat=True)) == [1, 5]


def test_unknown_product_is_404_product_not_found(shopper_client):
    a = make_product()
    body = lines((a, 1))
    body["items"].append({"product_id": "00000000-0000-4000-8000-000000000001", "quantity": 1})

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 404
    assert response.json()["error"] == "PRODUCT_NOT_FOUND"
    a.refresh_from_db()
    assert a.stock == 100


def test_duplicate_product_lines_are_422(shopper_client):
    a = make_product()

    response = shopper_client.post("/orders", lines((a, 1), (a, 2)), format="json")

    assert response.status_code == 422
    assert "items" in response.json()["details"]


def test_regular_order_is_idempotent(shopper_client):
    a = make_product(stock=5)
    key = {"HTTP_IDEMPOTENCY_KEY": "cart-7"}

    first = shopper_client.post("/orders", lines((a, 1)), format="json", **key)
    again = shopper_client.post("/orders", lines((a, 1)), format="json", **key)
    other = shopper_client.post("/orders", lines((a, 2)), format="json", **key)

    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 409
    assert other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    a.refresh_from_db()
    assert a.stock == 4
