from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.orders.models import Order
from apps.orders.tests.helpers import make_product
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def place(client, product, quantity: int = 1) -> dict:
    body = {"items": [{"product_id": str(product.id), "quantity": quantity}]}
    response = client.post("/orders", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_list_is_newest_first_with_items(shopper_client):
    product = make_product()
    ids = [place(shopper_client, product)["id"] for _ in range(3)]
    # make creation times distinct and known
    for offset, order_id in enumerate(ids):
        Order.objects.filter(pk=order_id).update(
            created_at=timezone.now() - timedelta(minutes=10 - offset)
        )

    body = shopper_client.get("/orders?page=1&size=2").json()

    assert body["total"] == 3 and body["page"] == 1 and body["size"] == 2
    assert [o["id"] for o in body["items"]] == [ids[2], ids[1]]
    assert body["items"][0]["items"][0]["product_id"] == str(product.id)
    second = shopper_client.get("/orders?page=2&size=2").json()
    assert [o["id"] for o in second["items"]] == [ids[0]]


def test_list_shows_only_my_orders_and_filters_by_status(shopper_client):
    product = make_product()
    mine = place(shopper_client, product)
    place(bearer_client(UserFactory()), product)
    Order.objects.filter(pk=mine["id"]).update(status="shipped")

    assert [o["id"] for o in shopper_client.get("/orders").json()["items"]] == [mine["id"]]
    assert shopper_client.get("/orders?status=confirmed").json()["total"] == 0
    assert shopper_client.get("/orders?status=shipped").json()["total"] == 1


@pytest.mark.parametrize("query", ["status=lost", "page=0", "size=101", "size=x"])
def test_bad_list_queries_are_422(shopper_client, query):
    response = shopper_client.get(f"/orders?{query}")
    assert response.status_code == 422
    assert response.json()["error"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("size", [1, 20, 100])
def test_list_runs_three_queries_whatever_the_page_size(
    shopper_client, django_assert_num_queries, size
):
    products = [make_product() for _ in range(3)]
    for _ in range(8):
        place(shopper_client, products[0])
    # count, page of orders, items of the page
    with django_assert_num_queries(3):
        response = shopper_client.get(f"/orders?size={size}")
    assert len(response.json()["items"]) == min(size, 8)


def test_naive_list_is_the_n_plus_one_before(shopper_client, settings, django_assert_num_queries):
    settings.ORDER_LIST_PREFETCH = False
    product = make_product()
    for _ in range(5):
        place(shopper_client, product)

    with django_assert_num_queries(2 + 5):  # count, page, then one items query per order
        response = shopper_client.get("/orders?size=5")
    assert len(response.json()["items"]) == 5


def test_another_users_order_is_404(shopper_client):
    product = make_product()
    theirs = place(bearer_client(UserFactory()), product)

    response = shopper_client.get(f"/orders/{theirs['id']}")

    assert response.status_code == 404
    assert response.json()["error"] == "NOT_FOUND"
    cancel = shopper_client.post(f"/orders/{theirs['id']}/cancel", {}, format="json")
    assert cancel.status_code == 404


def test_bad_order_id_is_404(shopper_client):
    assert shopper_client.get("/orders/not-a-uuid").status_code == 404
    assert shopper_client.get("/orders/00000000-0000-4000-8000-000000000000").status_code == 404
