"""OrderInput holds the contract's rules for every caller of the services, not only the API:
a deal order has exactly one line."""

import uuid

import pytest

from apps.core.errors import ValidationFailed
from apps.orders.services import LineInput, OrderInput

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
