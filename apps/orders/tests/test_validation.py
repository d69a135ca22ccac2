"""The hand-written fast path for order bodies agrees with the serializers it shortcuts."""

import uuid

import pytest
from rest_framework.exceptions import ValidationError

from apps.core.errors import ValidationFailed
from apps.orders.services import LineInput
from apps.orders.validation import _fast_lines, order_input_from

P1, P2, D1 = (str(uuid.uuid4()) for _ in range(3))


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"product_id": P1, "deal_id": D1, "quantity": 1}]},
        {"items": [{"product_id": P1, "deal_id": None, "quantity": 10}]},
        {"items": [{"product_id": P1, "quantity": 2}, {"product_id": P2, "quantity": 3}]},
    ],
)
def test_fast_path_and_serializer_read_valid_bodies_alike(body):
    fast = _fast_lines(body)
    assert fast is not None
    # the serializer path, forced by a body the fast path declines (an unknown top-level key,
    # which DRF ignores)
    slow = order_input_from({**body, "note": "x"}, None).items
    assert fast == slow
    assert all(isinstance(line, LineInput) for line in fast)


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
def test_fast_path_declines_anything_unusual(body):
    assert _fast_lines(body) is None


def test_declined_invalid_bodies_get_the_serializers_field_errors():
    with pytest.raises(ValidationError) as caught:
        order_input_from({"items": [{"product_id": P1, "quantity": 0}]}, None)
    assert "quantity" in caught.value.detail["items"][0]


def test_bad_idempotency_key_is_refused_before_anything_else():
    with pytest.raises(ValidationFailed) as caught:
        order_input_from({"items": []}, "has space")
    assert list(caught.value.details) == ["Idempotency-Key"]
