import pytest

from apps.orders.models import Order
from apps.orders.services.stream import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal

pytestmark = pytest.mark.django_db


def test_buy_one(shopper_client, pipeline):
    deal = make_deal(deal_stock=3)
    response = shopper_client.post("/orders", deal_line(deal), format="json")
    print(response.status_code, response.json())
    if pipeline == "redis_async":
        assert response.status_code == 202
        assert shopper_client.get(response["Location"]).json()["status"] == "pending"
        assert stream_drain(deal_id=str(deal.id), idle_exit_ms=0) == 1
    else:
        assert response.status_code == 201
    order = Order.objects.get()
    assert order.status == "confirmed"
    deal.refresh_from_db()
    assert deal.remaining_stock == 2
