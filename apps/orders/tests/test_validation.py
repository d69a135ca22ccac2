"""order_input_from: its hand-written fast path for plain order bodies agrees with the serializers
it shortcuts. Tested through the public function only: a body with a key the fast path does not
know (DRF ignores it) takes the serializer path, the same body without it the fast path."""

import uuid

import pytest
from rest_framework.exceptions import ValidationError

from apps.core.errors import ValidationFailed
from apps.orders import validation
from apps.orders.services import LineInput
from apps.orders.validation import order_input_from

P1, P2, D1 = (str(uuid.uuid4()) for _ in range(3))


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"product_id": P1, "deal_id": D1, "quantity": 1}]},
        {"items": [{"product_id": P1, "deal_id": None, "quantity": 10}]},
        {"items": [{"product_id": P1, "quantity": 2}, {"product_id": P2, "quantity": 3}]},
    ],
)
def test_fast_path_and_serializer_read_valid_bodies_alike(body, monkeypatch):
    slow = order_input_from({**body, "note": "x"}, None)  # the serializer path
    # the plain body must never reach the serializer: the fast path alone reads it
    monkeypatch.setattr(validation, "OrderCreateInputSerializer", None)
    fast = order_input_from(body, None)

    assert fast == slow
    assert fast.items == tuple(
        LineInput(
            product_id=uuid.UUID(line["product_id"]),
            quantity=line["quantity"],
            deal_id=uuid.UUID(line["deal_id"]) if line.get("deal_id") else None,
        )
        for line in body["items"]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"product_id": P1, "quantity": True}]},  # bool is not a quantity
        {"items": [{"product_id": P1, "quantity": 0}]},
        {"items": [{"product_id": "nope", "quantity": 1}]},
        {
            "items": [
                {"product_id": P1, "deal_id": D1, "quantity": 1},
                {"product_id": P2, "quantity": 1},
            ]
        },
        {"items": [{"product_id": P1, "quantity": 1}, {"product_id": P1, "quantity": 1}]},
        {"items": []},
        {"items": "x"},
        [1, 2],
    ],
)
def test_fast_path_accepts_nothing_the_serializers_refuse(body):
    # every one of these is invalid, so the fast path must decline it: had it accepted one,
    # order_input_from would return instead of raising the serializers' errors
    with pytest.raises(ValidationError):
        order_input_from(body, None)


def test_declined_invalid_bodies_get_the_serializers_field_errors():
    with pytest.raises(ValidationError) as caught:
        order_input_from({"items": [{"product_id": P1, "quantity": 0}]}, None)
    assert "quantity" in caught.value.detail["items"][0]


def test_bad_idempotency_key_is_refused_before_anything_else():
    with pytest.raises(ValidationFailed) as caught:
        order_input_from({"items": []}, "has space")
    assert list(caught.value.details) == ["Idempotency-Key"]
