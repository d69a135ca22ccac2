"""An Idempotency-Key is bound to one request body across all of a shopper's orders
(docs/reliability.md, "What a reliability review found", case 5): another body under the key is 409
IDEMPOTENCY_KEY_REUSED up front, on another deal, between a regular order and a deal order, in every
pipeline and under concurrency; never a 202 that later turns `failed`. The claim lives in the gate
(apps.deals.gate.idempotency); PostgreSQL's unique key is the backstop when Redis lost it."""

from collections import Counter

import pytest

from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product
from apps.core.redis import get_redis
from apps.core.tests.redis_server import free_port
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.tests.gate_faults import forget_idempotency_claim
from apps.orders.models import Order
from apps.orders.services.drain import stream_drain
from apps.orders.tests.concurrency import answer_of, start_purchases
from apps.orders.tests.helpers import deal_line, make_deal, make_product
from conftest import assert_error, bearer_client

pytestmark = pytest.mark.django_db

REUSED = {
    "error": "IDEMPOTENCY_KEY_REUSED",
    "message": "This Idempotency-Key was already used with a different request body.",
    "details": None,
}


def settle(*deals) -> None:
    """Writes what the async pipeline accepted (a no-op for the synchronous ones)."""
    for deal in deals:
        stream_drain(deal_id=str(deal.id), idle_exit_ms=0)


def order_rows() -> list[tuple[str, str]]:
    return [
        (str(order_id), status) for order_id, status in Order.objects.values_list("id", "status")
    ]


def regular_line(product: Product, quantity: int = 1) -> dict:
    return {"items": [{"product_id": str(product.id), "quantity": quantity}]}


def post(client, body: dict, key: str):
    return client.post("/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_key_reused_on_another_deal_is_409_up_front(shopper_client, pipeline, accepted_status):
    first_deal, second_deal = make_deal(), make_deal()

    first = post(shopper_client, deal_line(first_deal), "reused-key")
    other = post(shopper_client, deal_line(second_deal), "reused-key")
    settle(first_deal, second_deal)

    assert first.status_code == accepted_status
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert other.json() == REUSED
    assert order_rows() == [(first.json()["id"], "confirmed")]
    second_deal.refresh_from_db()
    assert second_deal.remaining_stock == 10
    assert gate.deal_counters(second_deal.id) == gate.Counters(remaining=10, users={})
    counts = gate.deal_live_counts(second_deal.id, now=0, seconds=1, dead_limit=1)
    assert counts["outcomes"] == {  # the refusal is counted for the console, as the gate's are
        "accepted": 0,
        "rejected": {"sold_out": 0, "limit": 0, "not_active": 0, "not_admitted": 0,
                     "rate_limited": 0,
                     "unavailable": 0, "other": 1},
    }  # fmt: skip


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"], indirect=True)
def test_in_the_redis_pipelines_the_claim_rides_in_the_reservations_round_trip(
    shopper_client, pipeline, accepted_status, monkeypatch
):
    """With appendfsync always every write round trip costs the gate's server an fsync: a
    claim of its own (MULTI; SET; GET; EXEC) before the reservation doubled the fsyncs of a
    keyed purchase and cost a quarter of redis_async's throughput in deal-order-latency. In the
    Redis pipelines reserve.lua takes the claim itself: the separate claim is never called,
    and the key is still bound to its first body."""

    def separate_claim(**_):
        raise AssertionError("the Redis pipelines took the claim in a round trip of its own")

    monkeypatch.setattr(gate, "idempotency_claim", separate_claim)
    first_deal, second_deal = make_deal(), make_deal()

    first = post(shopper_client, deal_line(first_deal), "one-trip")
    retry = post(shopper_client, deal_line(first_deal), "one-trip")
    other = post(shopper_client, deal_line(second_deal), "one-trip")

    assert (first.status_code, retry.status_code) == (accepted_status, accepted_status)
    assert retry.json()["id"] == first.json()["id"]
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert other.json() == REUSED


def test_a_regular_orders_key_reused_for_a_deal_is_409(shopper_client, pipeline, accepted_status):
    product, deal = make_product(stock=5), make_deal()

    regular = post(shopper_client, regular_line(product), "cart-1")
    other = post(shopper_client, deal_line(deal), "cart-1")
    settle(deal)

    assert regular.status_code == 201
    assert other.status_code == 409
    assert other.json() == REUSED
    assert order_rows() == [(regular.json()["id"], "confirmed")]
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=10, users={})
    deal.refresh_from_db()
    assert deal.remaining_stock == 10


def test_a_deal_orders_key_reused_for_a_regular_order_is_409(
    shopper_client, pipeline, accepted_status
):
    """Before, in redis_async: the regular order found no row for the key (the deal order was
    still pending in Redis), answered 201, and the deal order then ended `failed`."""
    product, deal = make_product(stock=5), make_deal()

    first = post(shopper_client, deal_line(deal), "cart-2")
    other = post(shopper_client, regular_line(product), "cart-2")
    settle(deal)

    assert first.status_code == accepted_status
    assert other.status_code == 409
    assert other.json() == REUSED
    assert order_rows() == [(first.json()["id"], "confirmed")]
    product.refresh_from_db()
    assert product.stock == 5


def test_the_same_body_under_the_key_is_still_the_same_order(
    shopper_client, pipeline, accepted_status
):
    deal = make_deal(per_user_limit=3)

    first = post(shopper_client, deal_line(deal), "same-body")
    settle(deal)
    again = post(shopper_client, deal_line(deal), "same-body")

    assert first.status_code == accepted_status
    assert again.status_code == 201  # written by now: a replay answers like the order it finds
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


def test_a_key_is_one_shoppers_another_shopper_may_use_it(pipeline, accepted_status, user):
    first_deal, second_deal = make_deal(), make_deal()

    a = post(bearer_client(user), deal_line(first_deal), "shared")
    b = post(bearer_client(UserFactory()), deal_line(second_deal), "shared")

    assert (a.status_code, b.status_code) == (accepted_status, accepted_status)


def test_without_its_claim_postgresql_is_the_backstop(shopper_client, user, pipeline):
    """The claim expired (24 h) or Redis lost it: the unique (user, key) constraint still
    refuses a second order. The synchronous pipelines answer 409 (with the order that holds
    the key); redis_async has answered 202 before PostgreSQL can say no, so that purchase ends
    as a visible `failed` order with its unit given back."""
    first_deal, second_deal = make_deal(), make_deal()
    first = post(shopper_client, deal_line(first_deal), "old-key")
    settle(first_deal)
    forget_idempotency_claim(user.id, "old-key")

    other = post(shopper_client, deal_line(second_deal), "old-key")
    settle(second_deal)

    if pipeline == "redis_async":
        assert other.status_code == 202
        failed = shopper_client.get(f"/orders/{other.json()['id']}").json()
        assert (failed["status"], failed["failure_reason"]) == (
            "failed",
            "IDEMPOTENCY_KEY_REUSED: the key belongs to another of your orders.",
        )
    else:
        assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED", {"order_id": first.json()["id"]})
    assert gate.deal_counters(second_deal.id) == gate.Counters(remaining=10, users={})
    second_deal.refresh_from_db()
    assert second_deal.remaining_stock == 10
    assert Order.objects.count() == 1


@pytest.mark.single_gate_server
def test_the_claim_failing_is_503_and_nothing_is_taken(shopper_client, settings):
    """A keyed order can't be checked against the shopper's other orders while Redis is down:
    it fails closed like the gate, never 500, never an unchecked order."""
    product = make_product(stock=5)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        response = post(shopper_client, regular_line(product), "while-down")
    finally:
        get_redis.cache_clear()

    assert response.json() == {
        "error": "SERVICE_UNAVAILABLE",
        "message": "The order service is unavailable; retry shortly.",
        "details": None,
    }
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 0
    product.refresh_from_db()
    assert product.stock == 5


# --- under concurrency -----------------------------------------------------------------------

RACERS = 8


def race_one_key_over_many_deals(token: str) -> tuple[Counter, list, list]:
    """RACERS purchases by one shopper with one Idempotency-Key, each of another deal (so each
    a different body), released together by a barrier. Returns the answers, the deals and the
    responses, after the async writer wrote what was accepted."""
    deals = [make_deal() for _ in range(RACERS)]
    finish = start_purchases(
        token, [deal_line(deal) for deal in deals], RACERS, HTTP_IDEMPOTENCY_KEY="one-key"
    )
    responses = finish()
    settle(*deals)
    return Counter(answer_of(r) for r in responses), deals, responses


def remaining_in_postgres(deals) -> int:
    return sum(
        Deal.objects.filter(pk__in=[d.pk for d in deals]).values_list("remaining_stock", flat=True)
    )


def remaining_in_the_gate(deals) -> int:
    return sum(gate.deal_counters(deal.id).remaining for deal in deals)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_key_many_deals_at_once_makes_exactly_one_order(user, pipeline, accepted_status):
    answers, deals, responses = race_one_key_over_many_deals(token_pair_for(user).access_token)

    assert answers == {accepted_status: 1, "409 IDEMPOTENCY_KEY_REUSED": RACERS - 1}
    assert all(r.json() == REUSED for r in responses if r.status_code == 409)
    (winner,) = [r.json()["id"] for r in responses if r.status_code < 300]
    assert order_rows() == [(winner, "confirmed")]
    assert remaining_in_postgres(deals) == 10 * RACERS - 1
    if pipeline in gate.REDIS_PIPELINES:  # the database pipelines sell in PostgreSQL only
        assert remaining_in_the_gate(deals) == 10 * RACERS - 1
        assert sum(gate.deal_backlog(deal.id) for deal in deals) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pipeline", ["redis_async"], indirect=True)
def test_negative_control_without_the_claim_one_key_is_accepted_on_every_deal(
    user, pipeline, accepted_status, settings
):
    # given: order_place skips the claim (the test-only setting); each deal's gate knows only
    # the keys used on that deal
    settings.ORDER_UNSAFE_SKIP_IDEMPOTENCY_CLAIM = True

    # when
    answers, deals, responses = race_one_key_over_many_deals(token_pair_for(user).access_token)

    # then: every purchase was accepted, and PostgreSQL's unique key then failed all but one
    assert answers == {202: RACERS}
    assert Order.objects.count() == 1
    shopper = bearer_client(user)
    ends = Counter(
        (body["status"], body["failure_reason"])
        for body in (shopper.get(f"/orders/{r.json()['id']}").json() for r in responses)
    )
    assert ends == {
        ("confirmed", None): 1,
        ("failed", "IDEMPOTENCY_KEY_REUSED: the key belongs to another of your orders."): RACERS
        - 1,
    }
    assert remaining_in_the_gate(deals) == remaining_in_postgres(deals) == 10 * RACERS - 1
