"""The batch writer's column-wise rows (`deal_order_columns`) against the model rows every other
path builds (`deal_order_rows`): one reservation must become the same order either way; and the
array literals it sends them in must reach PostgreSQL unchanged."""

import uuid
from datetime import datetime

import pytest
from django.db import connection
from django.utils import timezone

from apps.deals.gate import Reservation
from apps.orders.models import OrderStatus
from apps.orders.services.rows import (
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    deal_order_columns,
    deal_order_rows,
)
from apps.orders.services.writer import array_literal

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


@pytest.mark.django_db
def test_array_literals_reach_postgresql_unchanged():
    # given: text a shopper can type, and the other column types the writer sends
    texts = ['a "quoted" name', "back\\slash\\", "comma, {brace}", "NULL", "", " padded ",
             "line\nbreak\ttab", "Ünïcødé 한글", None]  # fmt: skip
    uuids = [str(uuid.uuid4()), None]
    numbers = [0, -7, 9_000_000_000]
    moments = [timezone.now().isoformat()]

    # when
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text::text[], %s::text::uuid[], %s::text::bigint[], "
            "%s::text::timestamptz[]",
            [array_literal(texts), array_literal(uuids), array_literal(numbers),
             array_literal(moments)],
        )  # fmt: skip
        got_texts, got_uuids, got_numbers, got_moments = cursor.fetchone()

    # then
    assert got_texts == texts
    assert got_uuids == [uuid.UUID(uuids[0]), None]
    assert got_numbers == numbers
    assert got_moments == [datetime.fromisoformat(moments[0])]
