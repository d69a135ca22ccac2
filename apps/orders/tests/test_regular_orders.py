import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import Product
from apps.orders.errors import InsufficientStock
from apps.orders.models import Order, OrderItem
from apps.orders.services import LineInput, OrderInput, order_place
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


# --- the write in one round trip (apps/orders/services/regular.py) ----------------------------


def place_counting_queries(client, body: dict, **headers) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/orders", body, format="json", **headers)
    assert response.status_code == 201, response.json()
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)  # as served: autocommit, no test transaction around it
@pytest.mark.parametrize("n_lines", [1, 5, 20])
def test_a_regular_order_is_one_statement_whatever_its_lines(shopper_client, n_lines):
    """Django's log would count a BEGIN and a COMMIT too: there are none, the statement is its
    own transaction. (As of b770395: BEGIN, SELECT, an UPDATE per line, 2 INSERTs, COMMIT.)"""
    products = [make_product(price=1_000 + i, stock=3) for i in range(n_lines)]

    sql = place_counting_queries(shopper_client, lines(*((p, 2) for p in products)))

    assert len(sql) == 1
    assert sql[0].lstrip().startswith("WITH wanted AS")
    order = Order.objects.get()
    assert order.total_amount == sum(2 * (1_000 + i) for i in range(n_lines))
    assert OrderItem.objects.filter(order=order).count() == n_lines
    assert set(Product.objects.values_list("stock", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_with_an_idempotency_key_the_earlier_order_is_looked_up_first(shopper_client):
    a, b = make_product(stock=3), make_product(stock=3)

    sql = place_counting_queries(
        shopper_client, lines((a, 1), (b, 1)), HTTP_IDEMPOTENCY_KEY="cart-1"
    )

    assert len(sql) == 2
    assert 'FROM "orders_order"' in sql[0] and sql[1].lstrip().startswith("WITH wanted AS")


def test_the_answer_is_the_order_as_written(shopper_client, user):
    a = make_product(price=12_000, stock=5, name="Kettle")
    b = make_product(price=3_500, stock=2, name="Mug")
    shipping = {
        "recipient_name": "Kim",
        "phone": "010-1234-5678",
        "address": "1 Main St",
        "postal_code": "04524",
    }

    response = shopper_client.post(
        "/orders", {**lines((b, 1), (a, 2)), "shipping_address": shipping}, format="json"
    )

    assert response.status_code == 201
    answered = response.json()
    written = shopper_client.get(f"/orders/{answered['id']}").json()
    by_id = sorted(written.pop("items"), key=lambda i: i["id"])  # GET lists items by id
    assert {**answered, "items": sorted(answered["items"], key=lambda i: i["id"])} == {
        **written,
        "items": by_id,
    }
    assert written["shipping_address"] == {**shipping, "address_detail": ""}
    assert written["user_id"] == str(user.id)
    assert [i["product_id"] for i in answered["items"]] == sorted([str(a.id), str(b.id)])


def test_insufficient_stock_names_the_first_short_product_in_id_order(shopper_client):
    short = sorted([make_product(stock=1), make_product(stock=0)], key=lambda p: p.id)
    plenty = make_product(stock=9)

    response = shopper_client.post(
        "/orders", lines((plenty, 2), (short[1], 2), (short[0], 2)), format="json"
    )

    assert response.status_code == 400
    assert response.json()["details"] == {
        "product_id": str(short[0].id),
        "requested": 2,
        "available": short[0].stock,
    }
    assert sorted(Product.objects.values_list("stock", flat=True)) == sorted(
        [short[0].stock, short[1].stock, 9]
    )


def test_unknown_products_are_listed_in_id_order_before_any_stock_check(shopper_client):
    empty = make_product(stock=0)
    unknown = ["00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000a"]
    body = lines((empty, 1))
    body["items"] += [{"product_id": pid, "quantity": 1} for pid in unknown]

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 404
    assert response.json()["details"] == {"product_ids": sorted(unknown)}


def test_lines_of_one_product_from_a_service_caller_take_their_sum(user):
    """The API refuses a product twice (422); a service caller may send it, and its lines
    are added up against the stock (a single UPDATE per product could not see the second)."""
    a = make_product(price=1_000, stock=5)
    twice = OrderInput(items=(LineInput(a.id, 3), LineInput(a.id, 2)))
    again = OrderInput(items=(LineInput(a.id, 1), LineInput(a.id, 1)))

    placed = order_place(user_id=user.id, data=twice)
    with pytest.raises(InsufficientStock) as refused:
        order_place(user_id=user.id, data=again)

    assert placed.order.total_amount == 5_000
    assert sorted(i.quantity for i in placed.items) == [2, 3]
    assert refused.value.details == {"product_id": str(a.id), "requested": 2, "available": 0}
    a.refresh_from_db()
    assert a.stock == 0
