"""Invariants 1-4 under real concurrency, for every pipeline, with negative controls that switch
the app's own protection off (a test-only setting) and race the same API: the per-user limit
breaks exactly as far as the race allows, and the same test with the protection on holds it."""

import threading
import time
from collections import Counter
from typing import NamedTuple

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from apps.accounts.models import User
from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.orders.models import Order, OrderItem
from apps.orders.services import db_pipelines
from apps.orders.services.drain import stream_drain
from apps.orders.tests.concurrency import (
    answer_of,
    run_buyers,
    start_purchases,
    wait_for_lock_waiters,
)
from apps.orders.tests.helpers import deal_line, make_deal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def make_users(n: int) -> list[User]:
    users = User.objects.bulk_create(
        [User(email=f"buyer{i}@example.com", name=f"Buyer {i}", password="!") for i in range(n)]
    )
    return users


def units_sold(deal) -> int:
    return (
        OrderItem.objects.filter(deal=deal)
        .exclude(order__status__in=["cancelled", "failed"])
        .aggregate(n=Sum("quantity"))["n"]
        or 0
    )


def test_one_unit_fifty_buyers_exactly_one_wins(pipeline, accepted_status):
    # given
    deal = make_deal(deal_stock=1)
    tokens = [token_pair_for(u).access_token for u in make_users(50)]
    attempts = [
        [(t, deal_line(deal)) for t in tokens[:25]],
        [(t, deal_line(deal)) for t in tokens[25:]],
    ]

    # when: 50 buyers in 2 processes, released together
    statuses, accepted = run_buyers(attempts)
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    # then
    assert len(accepted) == 1
    assert statuses == {accepted_status: 1, "400 DEAL_SOLD_OUT": 49}
    assert Order.objects.count() == 1
    assert units_sold(deal) == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == 0


def test_hundred_units_thousand_attempts_three_hundred_users(pipeline, accepted_status):
    # given: stock 100, limit 2; 300 shoppers make 1,000 attempts from 4 processes
    deal = make_deal(deal_stock=100, per_user_limit=2)
    tokens = [token_pair_for(u).access_token for u in make_users(300)]
    attempts = [(tokens[i % 300], deal_line(deal)) for i in range(1000)]
    per_process = [attempts[i::4] for i in range(4)]

    # when
    statuses, accepted = run_buyers(per_process)
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    # then: exactly 100 units, every accepted purchase is exactly one order, nobody above 2
    # (which refusal a loser gets, sold out or over its limit, depends on the interleaving)
    assert len(accepted) == statuses[accepted_status] == 100
    assert sum(statuses.values()) == 1000
    assert set(statuses) <= {accepted_status, "400 DEAL_SOLD_OUT", "400 DEAL_LIMIT_EXCEEDED"}
    assert sorted(str(o) for o in Order.objects.values_list("id", flat=True)) == sorted(
        order_id for order_id, _, _ in accepted
    )
    assert units_sold(deal) == 100
    per_user = Counter(OrderItem.objects.filter(deal=deal).values_list("order__user_id", flat=True))
    assert max(per_user.values()) <= 2
    deal.refresh_from_db()
    assert deal.remaining_stock == 0


def test_concurrent_retries_with_one_key_make_one_order(pipeline, accepted_status):
    deal = make_deal(deal_stock=10, per_user_limit=5)
    token = token_pair_for(make_users(1)[0]).access_token

    responses = start_purchases(token, deal_line(deal), 8, HTTP_IDEMPOTENCY_KEY="same")()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert len({r.json()["id"] for r in responses}) == 1
    answers = [(r.status_code, r.json()["status"]) for r in responses]
    # A replay answers as the order it finds (docs/architecture.md): 201 once written, 202 while
    # pending. Under `redis` the first request writes the order itself, and a retry that lands
    # before that write commits finds it still pending in the gate: which ones do is timing.
    if pipeline == "redis":
        assert (accepted_status, "confirmed") in answers
        assert set(answers) <= {(accepted_status, "confirmed"), (202, "pending")}
    else:
        expected = "pending" if pipeline == "redis_async" else "confirmed"
        assert answers == [(accepted_status, expected)] * 8
    assert Order.objects.count() == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == 9


# --- negative controls: the app's protection switched off, the same API race ---------------------
#
# Each protection is raced twice in the same shape: one shopper, per_user_limit=1, deal_stock=10,
# RACERS concurrent purchases of one unit through POST /orders, ordered (by locks or a barrier,
# never by timing) so that every purchase reads the units the shopper holds before any of them
# writes. With the protection off, the negative control, the shopper ends with exactly RACERS
# units; with it on, the positive twin, with exactly one. Stock never runs short here: the
# controls are about the per-user limit. (Stock could not show an oversell through the API
# anyway: PostgreSQL's CHECK remaining_stock >= 0 refuses db_lock's F() decrement below zero,
# and the writer's conditional UPDATE refuses what the Redis gate let through.)

RACERS = 6


class Race(NamedTuple):
    answers: Counter  # answer_of each purchase
    held: int  # the shopper's units, counted in PostgreSQL
    remaining: int  # the deal's remaining_stock in PostgreSQL
    gate: gate.Counters | None  # the deal's counters in Redis
    shopper_id: str
    gate_accepted: int = 0  # purchases reserve.lua (or its split stand-in) accepted


def units_held(deal, user) -> int:
    items = OrderItem.objects.filter(deal=deal, order__user=user)
    held = items.exclude(order__status__in=["cancelled", "failed"])
    return held.aggregate(n=Sum("quantity"))["n"] or 0


def race_db_lock_behind_a_table_lock(monkeypatch) -> Race:
    """RACERS db_lock purchases by one shopper, all queued on locks before any can insert.

    This connection holds `LOCK TABLE orders_order IN EXCLUSIVE MODE` (it blocks INSERTs, not
    SELECTs) until pg_locks shows every request waiting, then commits. With the deal row lock,
    one request holds it while it waits to insert, and the others wait for it *before* reading
    the shopper's units; without it, every request has read "0 held" and waits *after* that
    read (to insert, or for the deal row that a predecessor's F() decrement holds).

    db_pipelines turns a lock wait longer than LOCK_TIMEOUT (2 s) into a 503. The requests here
    wait until the last one has arrived, which on a busy 2-core runner can take longer, so the
    timeout is raised for the race: the answers then depend on the locks, never on speed.
    """
    monkeypatch.setattr(db_pipelines, "LOCK_TIMEOUT", "60s")
    deal = make_deal(deal_stock=10, per_user_limit=1)
    shopper = UserFactory()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE orders_order IN EXCLUSIVE MODE")
        finish = start_purchases(token_pair_for(shopper).access_token, deal_line(deal), RACERS)
        wait_for_lock_waiters(cursor, RACERS)
    # committed: the table lock is gone and the requests go on in the order their locks impose
    answers = Counter(answer_of(r) for r in finish())
    deal.refresh_from_db()
    return Race(answers, units_held(deal, shopper), deal.remaining_stock, None, str(shopper.id))


@pytest.mark.parametrize("pipeline", ["db_lock"], indirect=True)
def test_negative_control_db_lock_without_the_deal_row_lock_breaks_the_per_user_limit(
    pipeline, accepted_status, settings, monkeypatch
):
    # given: db_lock reads the deal without locking its row (the test-only setting)
    settings.ORDER_UNSAFE_SKIP_DEAL_LOCK = True

    # when
    race = race_db_lock_behind_a_table_lock(monkeypatch)

    # then: every purchase read "0 held" before any inserted, so all pass a limit of one
    assert race.answers == {accepted_status: RACERS}
    assert race.held == RACERS
    assert race.remaining == 10 - RACERS  # the F() decrement itself loses no unit


@pytest.mark.parametrize("pipeline", ["db_lock"], indirect=True)
def test_db_lock_holds_the_per_user_limit_in_the_negative_controls_race(
    pipeline, accepted_status, settings, monkeypatch
):
    # given: the positive twin of the control above, with the deal row lock (the default)
    settings.ORDER_UNSAFE_SKIP_DEAL_LOCK = False

    # when
    race = race_db_lock_behind_a_table_lock(monkeypatch)

    # then: the first holder of the row lock buys; each next one reads its unit and is refused
    assert race.answers == {accepted_status: 1, "400 DEAL_LIMIT_EXCEEDED": RACERS - 1}
    assert race.held == 1
    assert race.remaining == 9


def race_reserve_with_every_read_first(settings) -> Race:
    """RACERS purchases by one shopper through the Redis pipeline under test. With the split
    reserve on, each stops between its read and reserve.lua at a barrier (the test-only hook
    GATE_UNSAFE_SPLIT_RESERVE_AFTER_READ) until all have read; without it the hook is never
    called and reserve.lua, one atomic step, decides them one at a time."""
    settings.GATE_UNSAFE_SPLIT_RESERVE_AFTER_READ = threading.Barrier(RACERS, timeout=60).wait
    deal = make_deal(deal_stock=10, per_user_limit=1)
    shopper = UserFactory()

    finish = start_purchases(token_pair_for(shopper).access_token, deal_line(deal), RACERS)
    answers = Counter(answer_of(r) for r in finish())
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)  # redis_async: write what was accepted
    deal.refresh_from_db()
    counts = gate.deal_live_counts(deal.id, now=int(time.time()), seconds=1, dead_limit=1)
    return Race(
        answers,
        units_held(deal, shopper),
        deal.remaining_stock,
        gate.deal_counters(deal.id),
        str(shopper.id),
        counts["outcomes"]["accepted"],
    )


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"], indirect=True)
def test_negative_control_split_reserve_breaks_the_per_user_limit(
    pipeline, accepted_status, settings
):
    # given: deal_reserve checks in a read of its own, then runs reserve.lua without its checks
    settings.GATE_UNSAFE_SPLIT_RESERVE = True

    # when
    race = race_reserve_with_every_read_first(settings)

    # then: all read "0 held" before any script ran, so the gate accepted all of them (the race
    # reserve.lua's atomicity closes); the writer's own limit check in PostgreSQL, the second
    # line, wrote one and gave the others' units back (redis: refused in the request;
    # redis_async: answered 202, then failed)
    assert race.gate_accepted == RACERS
    if pipeline == "redis":
        assert race.answers == {201: 1, "400 DEAL_LIMIT_EXCEEDED": RACERS - 1}
    else:
        assert race.answers == {202: RACERS}
    assert race.gate == gate.Counters(remaining=9, users={race.shopper_id: 1})
    assert race.held == 1
    assert race.remaining == 9


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"], indirect=True)
def test_reserve_holds_the_per_user_limit_in_the_negative_controls_race(
    pipeline, accepted_status, settings
):
    # given: the positive twin of the control above: reserve.lua decides alone (the default)
    settings.GATE_UNSAFE_SPLIT_RESERVE = False

    # when
    race = race_reserve_with_every_read_first(settings)

    # then
    assert race.gate_accepted == 1
    assert race.answers == {accepted_status: 1, "400 DEAL_LIMIT_EXCEEDED": RACERS - 1}
    assert race.gate == gate.Counters(remaining=9, users={race.shopper_id: 1})
    assert race.held == 1
    assert race.remaining == 9


@pytest.mark.parametrize("stock", [10, 1], ids=["units-left", "last-unit"])
@pytest.mark.parametrize("pipeline", ["db_lock", "db_update"], indirect=True)
def test_retries_queued_behind_their_original_get_its_order(pipeline, stock, monkeypatch):
    """RACERS requests with one Idempotency-Key and body, all waiting for the deal row (this
    connection holds it) after finding no order for the key. The first to get the row places
    the order; before the fix the others, next in line, counted it toward the per-user limit
    and answered 400 DEAL_LIMIT_EXCEEDED instead of returning it."""
    monkeypatch.setattr(db_pipelines, "LOCK_TIMEOUT", "60s")  # see race_db_lock_behind_...
    deal = make_deal(deal_stock=stock, per_user_limit=1)
    shopper = UserFactory()
    token = token_pair_for(shopper).access_token

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM deals_deal WHERE id = %s FOR UPDATE", [deal.id])
        finish = start_purchases(
            token, deal_line(deal), RACERS, HTTP_IDEMPOTENCY_KEY="one-purchase"
        )
        wait_for_lock_waiters(cursor, RACERS)
    responses = finish()

    assert Counter(answer_of(r) for r in responses) == {201: RACERS}
    assert len({r.json()["id"] for r in responses}) == 1
    assert units_held(deal, shopper) == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == stock - 1
