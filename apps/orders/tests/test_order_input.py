"""OrderInput holds the contract's rules for every caller of the services, not only the API:
a deal order has exactly one line."""

import uuid

import pytest

from apps.core.errors import ValidationFailed
from apps.orders.services import LineInput, OrderInput
from apps.orders.validation import order_input_from

DEAL_LINE = LineInput(product_id=uuid.uuid4(), quantity=1, deal_id=uuid.uuid4())
OTHER_LINE = LineInput(product_id=uuid.uuid4(), quantity=2)


@pytest.mark.parametrize(
    "items", [(DEAL_LINE, OTHER_LINE), (OTHER_LINE, DEAL_LINE)], ids=["deal-first", "deal-second"]
)
def test_a_deal_line_next_to_other_lines_is_refused(items):
    with pytest.raises(ValidationFailed) as refused:
        OrderInput(items=items)

    assert refused.value.details == {"items": ["An order with a deal item has exactly one item."]}


def test_no_lines_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        OrderInput(items=())

    assert refused.value.details == {"items": ["At least one item."]}


def test_the_deal_line_of_a_deal_order_and_none_for_a_regular_one():
    assert OrderInput(items=(DEAL_LINE,)).deal_line.deal_id == DEAL_LINE.deal_id
    assert OrderInput(items=(OTHER_LINE,)).deal_line is None


# --- request_hash: what tells a retry (same body) from a reused Idempotency-Key ---------------

SHIPPING = {
    "recipient_name": "Kim",
    "phone": "010-1234-5678",
    "address": "Seoul",
    "postal_code": "04524",
}
PRODUCT, DEAL, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def hash_of(body: dict) -> str:
    return order_input_from(body, "key").request_hash


def line(product=PRODUCT, deal=DEAL, quantity=1) -> dict:
    item = {"product_id": str(product), "quantity": quantity}
    if deal is not None:
        item["deal_id"] = str(deal)
    return item


@pytest.mark.parametrize(
    "other",
    [
        {"items": [line(product=OTHER)]},
        {"items": [line(deal=OTHER)]},
        {"items": [line(deal=None)]},  # the same product as a regular order
        {"items": [line(quantity=2)]},
        {"items": [line()], "shipping_address": SHIPPING},
    ],
    ids=["product", "deal", "no-deal", "quantity", "shipping"],
)
def test_every_part_of_the_body_is_in_the_request_hash(other):
    assert hash_of(other) != hash_of({"items": [line()]})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipient_name", "Lee"),
        ("phone", "010-9999-9999"),
        ("address", "Busan"),
        ("address_detail", "Apt 101"),
        ("postal_code", "05000"),
    ],
)
def test_every_shipping_field_is_in_the_request_hash(field, value):
    changed = {**SHIPPING, field: value}

    assert hash_of({"items": [line()], "shipping_address": changed}) != hash_of(
        {"items": [line()], "shipping_address": SHIPPING}
    )


def test_the_same_body_hashes_the_same_whichever_validation_path_reads_it():
    fast = {"items": [line(deal=None), line(product=OTHER, deal=None, quantity=2)]}
    # the serializer path: a null shipping address, lines in another order
    slow = {
        "items": [line(product=OTHER, deal=None, quantity=2), line(deal=None)],
        "shipping_address": None,
    }

    assert hash_of(slow) == hash_of(fast)
