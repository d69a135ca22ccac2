"""Deal orders through every pipeline: the contract's answers and that failures write nothing."""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis
from apps.core.tests.redis_server import free_port
from apps.deals import gate
from apps.deals.gate import Reservation
from apps.deals.models import Deal
from apps.orders.models import Order, OrderItem
from apps.orders.services.drain import stream_drain
from apps.orders.services.writer import IdempotencyKeyClash, reservations_write
from apps.orders.tests.helpers import deal_line, make_deal, make_product
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def settle(deal: Deal) -> None:
    """Writes what the async pipeline accepted (a no-op for the synchronous ones)."""
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)


def error_code(response) -> str:
    assert set(response.json()) == {"error", "message", "details"}
    return response.json()["error"]


def test_purchase_answers_the_order_and_takes_one_unit(
    shopper_client, user, pipeline, accepted_status
):
    deal = make_deal(deal_stock=5, per_user_limit=2, deal_price=7_000)

    response = shopper_client.post("/orders", deal_line(deal, quantity=2), format="json")

    body = response.json()
    assert response.status_code == accepted_status
    assert body["status"] == ("pending" if pipeline == "redis_async" else "confirmed")
    assert body["user_id"] == str(user.id)
    assert body["total_amount"] == 14_000
    assert [
        (i["deal_id"], i["quantity"], i["unit_price"], i["subtotal"]) for i in body["items"]
    ] == [(str(deal.id), 2, 7_000, 14_000)]
    assert body["items"][0]["product_name"] == deal.product.name
    if pipeline == "redis_async":
        assert response["Location"] == f"/orders/{body['id']}"
    settle(deal)
    order = Order.objects.get()
    assert str(order.id) == body["id"]
    assert order.status == "confirmed"
    assert order.total_amount == 14_000
    deal.refresh_from_db()
    assert deal.remaining_stock == 3
    detail = shopper_client.get(f"/orders/{body['id']}").json()
    assert detail["status"] == "confirmed"
    assert detail["items"][0]["id"] == body["items"][0]["id"]


def test_async_order_is_pending_until_written(shopper_client, settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal()

    accepted = shopper_client.post("/orders", deal_line(deal), format="json").json()
    before = shopper_client.get(f"/orders/{accepted['id']}")
    settle(deal)
    after = shopper_client.get(f"/orders/{accepted['id']}")

    assert before.status_code == 200 and before.json()["status"] == "pending"
    assert after.json()["status"] == "confirmed"
    assert after.json()["created_at"] == before.json()["created_at"]


def test_sold_out_after_the_last_unit(pipeline, accepted_status):
    deal = make_deal(deal_stock=1)
    first, second = bearer_client(UserFactory()), bearer_client(UserFactory())

    ok = first.post("/orders", deal_line(deal), format="json")
    late = second.post("/orders", deal_line(deal), format="json")

    assert ok.status_code == accepted_status
    assert late.status_code == 400
    assert error_code(late) == "DEAL_SOLD_OUT"
    settle(deal)
    assert Order.objects.count() == 1


def test_asking_for_more_than_remains_is_insufficient_stock(shopper_client, pipeline):
    deal = make_deal(deal_stock=2, per_user_limit=5)

    response = shopper_client.post("/orders", deal_line(deal, quantity=3), format="json")

    assert response.status_code == 400
    assert error_code(response) == "INSUFFICIENT_STOCK"
    assert response.json()["details"]["available"] == 2
    settle(deal)
    assert Order.objects.count() == 0


def test_per_user_limit(shopper_client, pipeline, accepted_status):
    deal = make_deal(deal_stock=10, per_user_limit=2)

    first = shopper_client.post("/orders", deal_line(deal, quantity=2), format="json")
    settle(deal)
    again = shopper_client.post("/orders", deal_line(deal, quantity=1), format="json")

    assert first.status_code == accepted_status
    assert again.status_code == 400
    assert error_code(again) == "DEAL_LIMIT_EXCEEDED"
    assert again.json()["details"] == {"held": 2, "limit": 2}
    settle(deal)
    assert OrderItem.objects.get().quantity == 2


@pytest.mark.parametrize(
    "deal_kwargs",
    [
        {"starts_in": timedelta(hours=1)},  # scheduled
        {"starts_in": -timedelta(hours=2), "lasts": timedelta(hours=1)},  # over
    ],
    ids=["scheduled", "ended"],
)
def test_deal_outside_its_window_is_not_active(shopper_client, pipeline, deal_kwargs):
    deal = make_deal(**deal_kwargs)

    response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert response.status_code == 400
    assert error_code(response) == "DEAL_NOT_ACTIVE"


def test_paused_and_ended_early_deals_are_not_active(shopper_client, pipeline):
    paused = make_deal()
    Deal.objects.filter(pk=paused.pk).update(paused_at=timezone.now())
    ended = make_deal()
    Deal.objects.filter(pk=ended.pk).update(ended_at=timezone.now())
    for deal in (paused, ended):
        deal.refresh_from_db()
        gate.deal_state_sync(deal)

    for deal in (paused, ended):
        response = shopper_client.post("/orders", deal_line(deal), format="json")
        assert response.status_code == 400
        assert error_code(response) == "DEAL_NOT_ACTIVE"
    assert Order.objects.count() == 0


def test_unpublished_deal_is_not_active(shopper_client, pipeline):
    deal = make_deal(published=False)

    response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert response.status_code == 400
    assert error_code(response) == "DEAL_NOT_ACTIVE"


def test_deal_of_another_product_is_invalid(shopper_client, pipeline):
    deal = make_deal()
    other = make_product()
    body = {"items": [{"product_id": str(other.id), "deal_id": str(deal.id), "quantity": 1}]}

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 400
    assert error_code(response) == "INVALID_DEAL"
    deal.refresh_from_db()
    assert deal.remaining_stock == 10


def test_unknown_deal_is_404(shopper_client, pipeline):
    product = make_product()
    body = {
        "items": [
            {
                "product_id": str(product.id),
                "deal_id": "00000000-0000-4000-8000-000000000000",
                "quantity": 1,
            }
        ]
    }

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 404
    assert error_code(response) == "DEAL_NOT_FOUND"


def test_idempotent_retry_returns_the_same_order(shopper_client, pipeline):
    deal = make_deal(per_user_limit=3)
    headers = {"HTTP_IDEMPOTENCY_KEY": "checkout-42"}

    first = shopper_client.post("/orders", deal_line(deal), format="json", **headers)
    retry_before_write = shopper_client.post("/orders", deal_line(deal), format="json", **headers)
    settle(deal)
    retry_after_write = shopper_client.post("/orders", deal_line(deal), format="json", **headers)

    ids = {r.json()["id"] for r in (first, retry_before_write, retry_after_write)}
    assert len(ids) == 1
    assert retry_after_write.status_code == 201
    assert Order.objects.count() == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == 9


def test_same_key_with_another_body_is_409(shopper_client, pipeline):
    deal = make_deal(per_user_limit=3)
    headers = {"HTTP_IDEMPOTENCY_KEY": "checkout-43"}
    shopper_client.post("/orders", deal_line(deal), format="json", **headers)

    response = shopper_client.post("/orders", deal_line(deal, quantity=2), format="json", **headers)

    assert response.status_code == 409
    assert error_code(response) == "IDEMPOTENCY_KEY_REUSED"
    settle(deal)
    assert Order.objects.count() == 1


def test_same_key_from_another_user_is_another_order(pipeline):
    deal = make_deal()
    headers = {"HTTP_IDEMPOTENCY_KEY": "shared-key"}

    a = bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json", **headers)
    b = bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json", **headers)

    assert a.json()["id"] != b.json()["id"]
    settle(deal)
    assert Order.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({"items": [{"product_id": "not-a-uuid", "quantity": 1}]}, "items"),
        (
            {"items": [{"product_id": "00000000-0000-4000-8000-000000000000", "quantity": 0}]},
            "items",
        ),
        (
            {"items": [{"product_id": "00000000-0000-4000-8000-000000000000", "quantity": 11}]},
            "items",
        ),
        (
            {"items": [{"product_id": "00000000-0000-4000-8000-000000000000", "quantity": "2x"}]},
            "items",
        ),
    ],
)
def test_malformed_orders_are_422(shopper_client, body, field):
    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert field in response.json()["details"]
    assert Order.objects.count() == 0


def test_deal_order_with_a_second_line_is_422(shopper_client, pipeline):
    deal = make_deal()
    other = make_product()
    body = deal_line(deal)
    body["items"].append({"product_id": str(other.id), "quantity": 1})

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 422
    assert "items" in response.json()["details"]
    deal.refresh_from_db()
    other.refresh_from_db()
    assert (deal.remaining_stock, other.stock) == (10, 100)


@pytest.mark.parametrize(
    ("shipping", "field"),
    [
        (
            {
                "recipient_name": "Kim",
                "phone": "02-123-4567",
                "address": "Seoul",
                "postal_code": "12345",
            },
            "phone",
        ),
        (
            {
                "recipient_name": "Kim",
                "phone": "010-1234-5678",
                "address": "Seoul",
                "postal_code": "1234",
            },
            "postal_code",
        ),
        ({"phone": "010-1234-5678", "address": "Seoul", "postal_code": "12345"}, "recipient_name"),
    ],
)
def test_bad_shipping_address_is_422(shopper_client, shipping, field):
    deal = make_deal()
    body = {**deal_line(deal), "shipping_address": shipping}

    response = shopper_client.post("/orders", body, format="json")

    assert response.status_code == 422
    assert field in response.json()["details"]["shipping_address"]


def test_shipping_address_is_kept(shopper_client, pipeline):
    deal = make_deal()
    shipping = {
        "recipient_name": "Kim Minji",
        "phone": "010-1234-5678",
        "address": "1 Teheran-ro, Gangnam-gu",
        "address_detail": "Apt 101",
        "postal_code": "06236",
    }

    created = shopper_client.post(
        "/orders", {**deal_line(deal), "shipping_address": shipping}, format="json"
    )
    settle(deal)

    assert created.json()["shipping_address"] == shipping
    assert (
        shopper_client.get(f"/orders/{created.json()['id']}").json()["shipping_address"] == shipping
    )


@pytest.mark.parametrize("key", ["", "has space", "k" * 101, "한글"])
def test_bad_idempotency_key_is_422(shopper_client, key):
    deal = make_deal()

    response = shopper_client.post(
        "/orders", deal_line(deal), format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["details"]


def test_orders_need_a_token(api_client):
    response = api_client.post("/orders", {}, format="json")

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


@pytest.mark.single_gate_server
@pytest.mark.parametrize("pipeline_name", ["redis", "redis_async"])
def test_redis_pipelines_fail_closed_when_redis_is_down(shopper_client, settings, pipeline_name):
    deal = make_deal()
    settings.ORDER_PIPELINE = pipeline_name
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        response = shopper_client.post("/orders", deal_line(deal), format="json")
    finally:
        settings.REDIS_URL = settings.REDIS_URL
        get_redis.cache_clear()

    assert response.status_code == 503
    assert error_code(response) == "SERVICE_UNAVAILABLE"
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 0
    deal.refresh_from_db()
    assert deal.remaining_stock == 10


def test_a_reservation_postgres_refuses_is_never_dropped_silently(shopper_client, settings):
    """If a key clash slips past the checks (two deals racing), the writer refuses the batch
    instead of acknowledging a purchase that has no order row."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal()
    accepted = shopper_client.post("/orders", deal_line(deal), format="json").json()
    reservation = Reservation(
        order_id="00000000-0000-4000-8000-00000000000a",
        item_id="00000000-0000-4000-8000-00000000000b",
        user_id=accepted["user_id"],
        deal_id=str(deal.id),
        product_id=str(deal.product_id),
        product_name="x",
        unit_price=1,
        quantity=1,
        idempotency_key="clash",
        created_at=accepted["created_at"],
    )
    reservations_write(str(deal.id), [reservation])  # takes the key

    with pytest.raises(IdempotencyKeyClash):
        reservations_write(str(deal.id), [replace(reservation, order_id=accepted["id"])])


def test_a_failed_write_in_the_redis_pipeline_returns_the_units_and_answers_503(
    shopper_client, settings
):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=3)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)  # PostgreSQL will refuse the row

    response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert response.status_code == 503
    assert error_code(response) == "SERVICE_UNAVAILABLE"
    assert gate.deal_counters(deal.id).remaining == 3
    assert gate.deal_backlog(deal.id) == 0
    assert Order.objects.count() == 0


def test_shipping_digits_must_be_ascii(shopper_client):
    deal = make_deal()
    shipping = {
        "recipient_name": "Kim",
        "phone": "010-١٢٣٤-5678",
        "address": "Seoul",
        "postal_code": "١٢٣٤٥",
    }

    response = shopper_client.post(
        "/orders", {**deal_line(deal), "shipping_address": shipping}, format="json"
    )

    assert response.status_code == 422
    assert set(response.json()["details"]["shipping_address"]) == {"phone", "postal_code"}
