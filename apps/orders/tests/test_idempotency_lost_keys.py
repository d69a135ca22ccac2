"""A keyed retry gets its order even when the deal's `idem` hash lost the key (docs/reliability.md,
"the deal's idem hash lost a key"). Found by the chaos suite (seed 3, fault `lost:idem#0`): a
purchase accepted (order A), the hash lost, the shopper's retry with the same key and body was
accepted again (order B, 202) and the writer then parked B on PostgreSQL's unique (user, key)
constraint: two accepted orders for one key. The shopper's Idempotency-Key claim, which
reserve.lua takes in the same step, now also names the order it accepted; a retry the hash no
longer knows gets that order.

The claim rides inside reserve.lua only where the gate is one server (on a cluster it is taken
before the script and names no order: PostgreSQL's constraint stays the backstop there), hence
`single_gate_server`."""

import uuid

import pytest

from apps.deals import gate
from apps.deals.tests.gate_faults import dead_letter_count, forget_idem, set_remaining
from apps.orders.models import Order
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.single_gate_server]

KEY = {"HTTP_IDEMPOTENCY_KEY": "lost-idem"}


def buy(client, deal):
    return client.post("/orders", deal_line(deal), format="json", **KEY)


def settle(deal) -> None:
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)


@pytest.mark.parametrize(
    ("pipeline", "written", "retry_status"),
    [
        ("redis", True, 201),
        ("redis_async", True, 201),  # written by the retry: it answers like the order it finds
        ("redis_async", False, 202),  # still pending in the gate: the reservation, as accepted
    ],
    indirect=["pipeline"],
)
def test_a_retry_after_the_deal_lost_its_keys_gets_the_same_order(
    shopper_client, user, pipeline, accepted_status, written, retry_status
):
    deal = make_deal(per_user_limit=2)
    first = buy(shopper_client, deal)
    if written:
        settle(deal)
    forget_idem(deal.id)  # the chaos suite's `lost:idem`: the deal's hash alone

    retry = buy(shopper_client, deal)
    settle(deal)

    assert first.status_code == accepted_status
    assert retry.status_code == retry_status
    assert retry.json()["id"] == first.json()["id"]
    assert list(Order.objects.values_list("id", "status")) == [
        (uuid.UUID(first.json()["id"]), "confirmed")
    ]
    assert dead_letter_count(deal.id) == 0
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=9, users={str(user.id): 1})


@pytest.mark.parametrize("pipeline", ["redis_async"], indirect=True)
def test_a_key_first_refused_then_accepted_still_names_its_order(shopper_client, user, pipeline):
    """The claim binds the key to its body on the first request whatever its answer: a refusal
    leaves the body without an order, and the purchase accepted later with that key records its
    order then."""
    deal = make_deal(per_user_limit=2)
    set_remaining(deal.id, 0)
    refused = buy(shopper_client, deal)
    set_remaining(deal.id, 10)  # units came back (as a release would)
    gate.sold_out_forget(deal.id)  # and this process forgets the sell-out, as after a release

    accepted = buy(shopper_client, deal)
    forget_idem(deal.id)
    retry = buy(shopper_client, deal)
    settle(deal)

    assert_error(refused, 400, "DEAL_SOLD_OUT")
    assert (accepted.status_code, retry.status_code) == (202, 202)
    assert retry.json()["id"] == accepted.json()["id"]
    assert Order.objects.count() == 1
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=9, users={str(user.id): 1})


@pytest.mark.parametrize("pipeline", ["redis_async"], indirect=True)
def test_negative_control_without_the_claims_order_the_retry_is_a_second_order(
    shopper_client, pipeline, settings
):
    """The test-only GATE_UNSAFE_SKIP_CLAIM_ORDER runs reserve.lua with its "claim order" block
    cut out (the script before the fix): the retry is accepted as order B, 202, and the writer
    then fails B on the unique (user, key) constraint. `redis` answers this retry with order A
    even so (its own write meets the constraint in the request and answers the order holding
    the key), so only redis_async shows the split to the shopper."""
    settings.GATE_UNSAFE_SKIP_CLAIM_ORDER = True
    deal = make_deal(per_user_limit=2)
    first = buy(shopper_client, deal)
    settle(deal)
    forget_idem(deal.id)

    retry = buy(shopper_client, deal)
    settle(deal)

    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json()["id"] != first.json()["id"]  # two accepted orders for one key
    failed = shopper_client.get(f"/orders/{retry.json()['id']}").json()
    assert (failed["status"], failed["failure_reason"]) == (
        "failed",
        "IDEMPOTENCY_KEY_REUSED: the key belongs to another of your orders.",
    )
    assert dead_letter_count(deal.id) == 1
