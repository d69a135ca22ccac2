"""Purchase rate limits on POST /orders (docs/security.md, "Rate limits"): per shopper and per
client address, checked before the body is parsed or the gate is asked, in the limiter's one atomic
step. Limits are on here explicitly (the test settings exempt every address)."""

import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from limits.storage import redis as limits_redis
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis
from apps.deals import gate
from apps.orders.tests.concurrency import answer_of, start_purchases
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import assert_error, bearer_client

pytestmark = pytest.mark.django_db

SHOPPER_REFUSED = {
    "error": "RATE_LIMITED",
    "message": "Too many purchases from this shopper; retry later.",
    "details": {"rule": "purchase_shopper"},
}
ADDRESS = "198.51.100.7"


@pytest.fixture
def limits(settings):
    """Limits on, nobody exempt, the redis_async pipeline (202); returns a setter for the rules
    a test tightens (the others stay far out of reach)."""
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    settings.ORDER_PIPELINE = "redis_async"

    def set_limits(**rules: str) -> None:
        settings.RATE_LIMITS = {
            **settings.RATE_LIMITS,
            "purchase_shopper": "1000/minute",
            "purchase_address": "1000/minute",
            **rules,
        }

    return set_limits


def buy(client: APIClient, body: dict, address: str = ADDRESS):
    return client.post("/orders", body, format="json", REMOTE_ADDR=address)


def test_a_shopper_past_the_limit_gets_429_and_nothing_is_reserved(limits, shopper_client):
    # given: 2 purchases a minute per shopper, both used
    limits(purchase_shopper="2/minute")
    deal = make_deal(deal_stock=10, per_user_limit=10)
    assert [buy(shopper_client, deal_line(deal)).status_code for _ in range(2)] == [202, 202]

    # when
    refused = buy(shopper_client, deal_line(deal))

    # then: the contract's 429, the wait until the window's oldest purchase leaves it
    assert_error(refused, 429, "RATE_LIMITED")
    assert refused.json() == SHOPPER_REFUSED
    assert refused["Retry-After"] == "60"
    assert gate.deal_counters(deal.id).remaining == 8  # the gate never saw it
    # another shopper, from the same address, is not affected
    assert buy(bearer_client(UserFactory()), deal_line(deal)).status_code == 202


def test_the_limit_is_checked_before_the_body(limits, shopper_client):
    limits(purchase_shopper="1/minute")
    deal = make_deal()
    assert buy(shopper_client, {"items": "not a list"}).status_code == 422  # counted anyway

    refused = buy(shopper_client, deal_line(deal))
    garbage = buy(shopper_client, {"items": "not a list"})

    assert_error(refused, 429, "RATE_LIMITED", {"rule": "purchase_shopper"})
    assert_error(garbage, 429, "RATE_LIMITED", {"rule": "purchase_shopper"})
    assert gate.deal_counters(deal.id).remaining == 10


def test_retry_after_is_the_real_wait(limits, shopper_client, monkeypatch):
    # given: one purchase a second, used; the refusal says how long to wait
    limits(purchase_shopper="1/second")
    deal = make_deal(deal_stock=10, per_user_limit=10)
    assert buy(shopper_client, deal_line(deal)).status_code == 202
    refused = buy(shopper_client, deal_line(deal))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"

    # when: the shopper waits exactly that long, on the limiter's own clock (it stamps each hit
    # with the web process's time.time(); the moving window is judged by those stamps)
    later = time.time() + int(refused["Retry-After"])
    monkeypatch.setattr(limits_redis, "time", SimpleNamespace(time=lambda: later))

    # then
    assert buy(shopper_client, deal_line(deal)).status_code == 202


def test_many_shoppers_from_one_address_share_its_limit(limits):
    # given: 3 purchases a minute per address, used by 3 shoppers behind it
    limits(purchase_shopper="5/minute", purchase_address="3/minute")
    deal = make_deal(deal_stock=10)
    for _ in range(3):
        assert buy(bearer_client(UserFactory()), deal_line(deal)).status_code == 202

    # when: a fourth shopper from the same address
    refused = buy(bearer_client(UserFactory()), deal_line(deal))

    # then
    assert_error(refused, 429, "RATE_LIMITED", {"rule": "purchase_address"})
    assert refused.json()["message"] == "Too many purchases from this address; retry later."
    assert refused["Retry-After"] == "60"
    assert buy(bearer_client(UserFactory()), deal_line(deal), "198.51.100.8").status_code == 202


def test_a_shopper_refused_by_their_own_limit_leaves_the_address_budget(limits):
    # The shopper's rule is counted first: one noisy shopper behind a NAT can't use up the
    # neighbours' budget with purchases that are refused anyway.
    limits(purchase_shopper="1/minute", purchase_address="3/minute")
    deal = make_deal(deal_stock=10)
    noisy = bearer_client(UserFactory())
    codes = [buy(noisy, deal_line(deal)).status_code for _ in range(5)]

    neighbours = [buy(bearer_client(UserFactory()), deal_line(deal)).status_code for _ in range(2)]

    assert codes == [202, 429, 429, 429, 429]
    assert neighbours == [202, 202]


def test_an_exempt_address_is_not_limited_and_not_counted(limits, settings, shopper_client):
    limits(purchase_shopper="1/minute", purchase_address="1/minute")
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = ["198.51.100.0/24"]
    deal = make_deal(deal_stock=10, per_user_limit=10)

    codes = [buy(shopper_client, deal_line(deal)).status_code for _ in range(3)]

    assert codes == [202, 202, 202]
    assert get_redis().keys("fdtest:ratelimit:*") == []  # no Redis call for the limits at all


# --- the limit holds under concurrency ---------------------------------------------------------

RACERS = 200
LIMIT = 7


def race_one_shopper(settings, monkeypatch) -> tuple[Counter, int]:
    """RACERS purchases by one shopper through POST /orders on threads released together by a
    barrier, against a deal that could sell them all. With the read-then-write control on, each
    also stops between the shopper rule's read and its write until all have read.

    All RACERS run in this one process, far more requests at once than a worker's threads: its
    Redis pool (redis-py's default cap is 100 connections) is widened to hold them, or the
    limiter would fail open and the gate closed for want of a connection."""
    monkeypatch.setattr(get_redis().connection_pool, "max_connections", RACERS + 10)
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    settings.ORDER_PIPELINE = "redis_async"
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "purchase_shopper": f"{LIMIT}/minute",
        "purchase_address": "100000/minute",
    }
    every_read_done = threading.Barrier(RACERS, timeout=60)
    settings.RATE_LIMIT_UNSAFE_AFTER_READ = lambda rule: (
        every_read_done.wait() if rule == "purchase_shopper" else None
    )
    deal = make_deal(deal_stock=RACERS, per_user_limit=RACERS)
    token = token_pair_for(UserFactory()).access_token

    responses = start_purchases(token, deal_line(deal), RACERS, REMOTE_ADDR=ADDRESS)()

    return Counter(answer_of(r) for r in responses), gate.deal_counters(deal.id).remaining


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_purchase_limit_is_exact_under_200_concurrent_requests(settings, monkeypatch):
    # given: the limiter's atomic check-and-record (the default)
    settings.RATE_LIMIT_UNSAFE_READ_THEN_WRITE = False

    answers, remaining = race_one_shopper(settings, monkeypatch)

    # then: exactly LIMIT purchases reached the gate
    assert answers == {202: LIMIT, "429 RATE_LIMITED": RACERS - LIMIT}
    assert remaining == RACERS - LIMIT


@pytest.mark.single_gate_server
@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_negative_control_read_then_write_lets_every_purchase_through(settings, monkeypatch):
    # given: DRF's throttle shape (read the window, decide, write) in the limiter's own path
    settings.RATE_LIMIT_UNSAFE_READ_THEN_WRITE = True

    answers, remaining = race_one_shopper(settings, monkeypatch)

    # then: all read an empty window before any wrote, so all 200 reached the gate
    assert answers == {202: RACERS}
    assert remaining == 0
