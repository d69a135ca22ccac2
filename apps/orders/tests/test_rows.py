"""The batch writer's column-wise rows (`deal_order_columns`) against the model rows every other
path builds (`deal_order_rows`): one reservation must become the same order either way."""

import uuid
from datetime import datetime

import pytest
from django.utils import timezone

from apps.deals.gate import Reservation
from apps.orders.models import OrderStatus
from apps.orders.services.rows import (
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    deal_order_columns,
    deal_order_rows,
)

SHIPPING = {
    "recipient_name": "Kim",
    "phone": "010-1234-5678",
    "address": "1 Main St",
    "address_detail": "Apt 2",
    "postal_code": "12345",
}


def reservation(**fields) -> Reservation:
    return Reservation(
        **{
            "order_id": str(uuid.uuid4()),
            "item_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "quantity": 3,
            "created_at": timezone.now().isoformat(),
            "request_hash": "ab" * 16,
            "deal_id": str(uuid.uuid4()),
            "product_id": str(uuid.uuid4()),
            "product_name": "Widget deal",
            "unit_price": 7_000,
            **fields,
        }
    )


def plain(value: object) -> object:
    """A model attribute as the writer passes it: ids and times as the reservation's strings."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, OrderStatus.CONFIRMED),
        ({"shipping": SHIPPING, "idempotency_key": "key-1"}, OrderStatus.CONFIRMED),
        ({"failure_reason": "WRITE_FAILED: the order could not be recorded."}, OrderStatus.FAILED),
    ],
)
def test_the_columns_hold_the_values_of_the_model_rows(fields, status):
    # given
    first, second = reservation(**fields), reservation(**fields)

    # when
    orders, items = deal_order_columns([first, second], status=status)

    # then
    for n, one in enumerate((first, second)):
        order, item = deal_order_rows(one, status=status)
        assert {c: column[n] for c, column in zip(ORDER_COLUMNS, orders, strict=True)} == {
            c: plain(getattr(order, c)) for c in ORDER_COLUMNS
        }
        assert {c: column[n] for c, column in zip(ITEM_COLUMNS, items, strict=True)} == {
            c: plain(getattr(item, c)) for c in ITEM_COLUMNS
        }
