"""The gate's Lua scripts at their edges: what a script error, a stop, a late release or a
test-only switch leaves in Redis (issue 10, "Nothing lost, nothing oversold"). Each test names
what the script left behind before its fix."""

import pytest
import redis
from django.utils import timezone

from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.tests.gate_faults import idempotency_fields, reserve_raw, set_remaining
from apps.orders.tests.helpers import make_deal

pytestmark = pytest.mark.django_db(transaction=True)  # the gate is told on commit


def _reservation(user, *, key: str | None = None) -> Reservation:
    return Reservation.new(
        user_id=user.id, quantity=1, created_at=timezone.now(), request_hash="h",
        idempotency_key=key, shipping=None,
    )  # fmt: skip


def test_a_reservation_the_script_cannot_decode_leaves_nothing_behind(user):
    """Before: reserve.lua decremented the stock, counted the shopper's unit and stored the
    Idempotency-Key, then failed decoding the reservation: a unit gone with no reservation,
    and every retry with the key answered with an order that never existed."""
    deal = make_deal(deal_stock=3)
    reservation = _reservation(user, key="k-1")

    with pytest.raises(redis.ResponseError):
        reserve_raw(deal.id, deal.product_id, reservation, payload='{"order_id":')

    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    assert idempotency_fields(deal.id) == {}
    assert gate.deal_backlog(deal.id) == 0
    assert gate.deal_state_read(deal.id)["accepted"] == "0"
    retry = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=reservation, mode="sync"
    )
    assert (retry.outcome, retry.remaining) == (Outcome.OK, 2)


def test_the_production_reserve_script_has_no_split_mode(user):
    """Before: reserve.lua skipped its stock and limit checks when a 13th argument said "split"
    (the negative control's switch, GATE_UNSAFE_SPLIT_RESERVE), so one argument too many on
    the production path sold a unit the deal did not have. The control now runs a variant of
    the script built from the same file; the script production loads has no such mode."""
    deal = make_deal(deal_stock=1)
    set_remaining(deal.id, 0)

    reply = reserve_raw(deal.id, deal.product_id, _reservation(user), extra_args=["split"])

    assert reply == ["SOLD_OUT"]
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=0, users={})
    assert gate.deal_backlog(deal.id) == 0
