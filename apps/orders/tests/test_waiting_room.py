"""The waiting room against the real gate, through the HTTP API a shopper uses: joins, polls,
admission at the configured rate, fairness, the admission bound to one purchase, lapses,
overbooking, sell-out and the end (the admission invariant). The clock (`clock`, conftest)
is pinned and moved by the tests: the room and the purchase both read it. The purchase races
are in test_waiting_room_concurrency.py."""

import random
import re
from datetime import timedelta
from pathlib import Path

import pytest

from apps.core.redis import get_redis
from apps.deals import gate
from apps.deals.gate.scripts import SCRIPT_DIR, epoch_ms
from apps.deals.tests.gate_faults import room_fill
from apps.orders.services.drain import stream_drain
from conftest import assert_error

from .helpers import make_deal
from .room import Shopper, assert_within_cap, room_deal, shoppers, state_of

pytestmark = [pytest.mark.django_db(transaction=True)]


def admitted_in_steps(deals, line: list[Shopper], clock, *, step: float) -> list[list[str]]:
    """Moves the clock by `step` and polls every shopper still waiting in each of `deals` (in
    lockstep, so no room saves up time while another is polled) until all are admitted; the
    step is one admission's interval, so each step admits exactly one per deal. Returns who
    was admitted, in order, per deal."""
    orders: list[list[str]] = [[] for _ in deals]
    waiting = [list(line) for _ in deals]
    for _ in line:
        clock(step)
        for deal, order, left in zip(deals, orders, waiting, strict=True):
            now_admitted = [s for s in left if state_of(s.ticket(deal))[0] == "admitted"]
            assert len(now_admitted) == 1, [s.id for s in now_admitted]
            order.append(now_admitted[0].id)
            left.remove(now_admitted[0])
    return orders


def test_join_poll_buy(clock, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(rate=1)
    (shopper,) = shoppers(1)
    assert_error(shopper.buy(deal), 403, "NOT_ADMITTED")
    joined = shopper.join(deal)
    assert joined.status_code == 201, joined.json()
    ticket = joined.json()
    assert ticket["state"] == "admitted", ticket
    assert shopper.buy(deal, ticket["admission"]).status_code == 201
    assert_error(shopper.buy(deal, ticket["admission"]), 400, "DEAL_LIMIT_EXCEEDED")


# --- 1. Exact admissions per window --------------------------------------------------------------


@pytest.mark.parametrize("rate", [5, 6])
def test_admits_exactly_the_rate_per_second_and_saves_at_most_one_second(clock, settings, rate):
    """Rate 6 is 166.67 ms an admission, not a whole number of microseconds (see the fix in
    room_lib.lua's room_advance)."""
    # given: 6R shoppers in line at the start instant, nobody admitted yet
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(stock=1000, rate=rate, starts_in=timedelta(0))
    line = shoppers(6 * rate)
    for shopper in line:
        assert state_of(shopper.join(deal))[0] == "waiting"
    assert gate.room_figures(deal.id).admitted == 0
    last = line[-1]

    # when: the clock moves 0.1 s at a time for 3 s, the last in line polling after each step
    for step in range(1, 31):
        clock(0.1)
        assert state_of(last.ticket(deal)) == ("waiting", 6 * rate - step * rate // 10)
        # then: floor(elapsed x R) admitted at every step, exactly R x window at each whole one
        assert gate.room_figures(deal.id).admitted == step * rate // 10
    assert gate.room_figures(deal.id).admitted == 3 * rate

    # when: 10 quiet seconds with nobody polling
    clock(10)
    last.ticket(deal)
    # then: one second's worth, not ten
    assert gate.room_figures(deal.id).admitted == 4 * rate
    for step in range(1, 11):
        clock(0.1)
        last.ticket(deal)
        assert gate.room_figures(deal.id).admitted == 4 * rate + step * rate // 10
    figures = assert_within_cap(deal)
    assert (figures.waiting, figures.admitted_now, figures.lapsed) == (rate, 5 * rate, 0)


# --- 2. Fairness ---------------------------------------------------------------------------------


def test_after_the_start_the_room_admits_in_join_order(clock, settings):
    # given: shoppers joining in a shuffled order at the start instant
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(stock=100, rate=5, starts_in=timedelta(0))
    line = shoppers(8)
    random.Random(16).shuffle(line)
    for place, shopper in enumerate(line, start=1):
        joined = shopper.join(deal)
        assert joined.status_code == 201
        assert state_of(joined) == ("waiting", place)
        assert joined.json()["waiting"] == place

    # when / then: one admission per 0.2 s, first come first served
    assert admitted_in_steps([deal], line, clock, step=0.2) == [[s.id for s in line]]


def test_prequeue_order_is_the_published_draw_whatever_the_join_order(clock, settings):
    # given: two deals with the same seed, starting in 30 s; the same shoppers join both, in
    # opposite orders, in the pre-queue window
    settings.ORDER_PIPELINE = "redis"
    seed = "5eed" * 8
    deals = [room_deal(stock=100, rate=5, starts_in=timedelta(seconds=30), seed=seed)
             for _ in range(2)]  # fmt: skip
    line = shoppers(8)
    late = shoppers(1)[0]
    for index, (deal, order) in enumerate(zip(deals, (line, line[::-1]), strict=True)):
        for shopper in order:
            joined = shopper.join(deal)
            assert joined.status_code == 201
            ticket = joined.json()
            # then: no position before the start (the draw places them then)
            assert (ticket["state"], ticket["position"]) == ("waiting", None)
            assert ticket["estimated_wait_s"] == 30 - index  # seconds to the start
        clock(1)
    expected = gate.prequeue_order(seed, [s.id for s in line])
    assert expected != [s.id for s in line]  # the draw, not the join order, decides
    clock(28)  # the start instant

    for deal in deals:
        # a shopper arriving after the start queues behind every pre-queue shopper
        assert state_of(late.join(deal)) == ("waiting", 9)
        by_id = {s.id: s for s in line}
        positions = [state_of(by_id[user_id].ticket(deal))[1] for user_id in expected]
        assert positions == list(range(1, 9))

    # when / then: both rooms admit in the draw's order, then the late arrival
    order_a, order_b = admitted_in_steps(deals, [*line, late], clock, step=0.2)
    assert order_a == order_b == [*expected, late.id]


def test_joining_before_the_prequeue_window_is_refused(clock, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(starts_in=timedelta(seconds=601), prequeue=600)
    (shopper,) = shoppers(1)
    assert_error(shopper.join(deal), 400, "QUEUE_NOT_OPEN",
                 {"deal_id": str(deal.id), "reason": "not_open_yet"})  # fmt: skip
    clock(0.999)
    assert_error(shopper.join(deal), 400, "QUEUE_NOT_OPEN",
                 {"deal_id": str(deal.id), "reason": "not_open_yet"})  # fmt: skip
    assert_error(shopper.ticket(deal), 404, "NOT_QUEUED")
    clock(0.001)  # the window opens exactly prequeue seconds before the start
    joined = shopper.join(deal)
    assert joined.status_code == 201
    assert state_of(joined) == ("waiting", None)
    assert gate.room_figures(deal.id).joins == 1


# --- 4. The admission: forged, another deal's or shopper's, replayed, expired ---------------------


def test_an_admission_buys_once_for_its_shopper_and_deal(clock, settings):
    # given: X admitted on deals A and B, Y on A, all at the same instant (same times in every
    # admission: only the signature tells them apart). Limit 2, so the admission decides.
    settings.ORDER_PIPELINE = "redis"
    deal_a, deal_b = (room_deal(rate=100, limit=2, starts_in=timedelta(0)) for _ in range(2))
    x, y = shoppers(2)
    for shopper, deal in ((x, deal_a), (y, deal_a), (x, deal_b)):
        assert shopper.join(deal).status_code == 201
    clock(0.1)
    x_on_a, y_on_a, x_on_b = (
        s.ticket(d).json() for s, d in ((x, deal_a), (y, deal_a), (x, deal_b))
    )
    assert x_on_a["state"] == y_on_a["state"] == x_on_b["state"] == "admitted"
    assert x_on_a["admission"].split(".")[:2] == y_on_a["admission"].split(".")[:2]
    token = x_on_a["admission"]
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")

    # when / then: none of these buys, and none uses anything up
    assert_error(x.buy(deal_a, altered), 403, "NOT_ADMITTED")
    assert_error(x.buy(deal_b, token), 403, "NOT_ADMITTED")  # deal A's on deal B
    assert_error(y.buy(deal_a, token), 403, "NOT_ADMITTED")  # X's, shown by Y
    assert_error(x.buy(deal_a, "not.an.admission"), 403, "NOT_ADMITTED")
    assert gate.room_figures(deal_a.id).admitted_now == 2
    assert gate.deal_remaining([deal_a.id]) == {deal_a.id: 10}

    # the real one buys once
    bought = x.buy(deal_a, token, key="k1")
    assert bought.status_code == 201, bought.json()
    # replayed with another key: used up
    assert_error(x.buy(deal_a, token, key="k2"), 403, "NOT_ADMITTED")
    # retried with the same key: the same order, nothing sold twice
    retried = x.buy(deal_a, token, key="k1")
    assert retried.status_code == 201, retried.json()
    assert retried.json()["id"] == bought.json()["id"]
    assert_error(x.ticket(deal_a), 404, "NOT_QUEUED")  # bought: no place left

    assert y.buy(deal_a, y_on_a["admission"]).status_code == 201
    assert x.buy(deal_b, x_on_b["admission"]).status_code == 201
    assert gate.deal_remaining([deal_a.id, deal_b.id]) == {deal_a.id: 8, deal_b.id: 9}
    figures = assert_within_cap(deal_a)
    assert (figures.admitted, figures.admitted_now) == (2, 0)


@pytest.mark.parametrize("first", ["poll", "join"])
def test_a_lapsed_admission_frees_its_slot_and_its_shopper_joins_at_the_back(
    clock, settings, first
):
    # given: one unit, A admitted (10 s to buy), B and C waiting
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(stock=1, rate=10, admit=10, starts_in=timedelta(0))
    a, b, c = line = shoppers(3)
    for shopper in line:
        shopper.join(deal)
    clock(0.1)
    ticket = a.ticket(deal).json()
    assert ticket["state"] == "admitted"
    assert int(ticket["admission"].split(".")[1]) == epoch_ms(clock()) + 10_000
    assert state_of(b.ticket(deal)) == ("waiting", 1)

    # when: the admission's time runs out
    clock(10)

    # then: it buys nothing
    assert_error(a.buy(deal, ticket["admission"]), 403, "NOT_ADMITTED")
    # and A has lost the place, whether they poll or join first
    if first == "poll":
        assert_error(a.ticket(deal), 404, "NOT_QUEUED")
    joined = a.join(deal)
    assert joined.status_code == 201, joined.json()
    assert state_of(joined) == ("waiting", 2)  # at the back, behind C
    # the slot went to the next in line
    assert state_of(b.ticket(deal)) == ("admitted", 0)
    assert state_of(c.ticket(deal)) == ("waiting", 1)
    figures = assert_within_cap(deal)
    assert (figures.lapsed, figures.admitted, figures.admitted_now) == (1, 2, 1)
    assert b.buy(deal, b.admission(deal)).status_code == 201


# --- 5. Overbooking ------------------------------------------------------------------------------


def test_overbooking_admits_remaining_times_the_factor_and_revokes_the_newest(clock, settings):
    # given: 3 units, factor 2, 10 shoppers in line; one admission per 0.1 s
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(stock=3, rate=10, overbook="2.00", starts_in=timedelta(0), limit=1)
    line = shoppers(10)
    for shopper in line:
        shopper.join(deal)

    # when: the clock moves 0.8 s (8 admissions' worth)
    for step in range(1, 9):
        clock(0.1)
        line[-1].ticket(deal)
        # then: never more than 3 x 2 outstanding
        assert assert_within_cap(deal).admitted_now == min(step, 6)
    admissions = [s.admission(deal) for s in line[:6]]
    assert [state_of(s.ticket(deal)) for s in line[6:]] == [("waiting", p) for p in (1, 2, 3, 4)]

    # when: the first admitted buys (2 left: cap 4, 5 outstanding)
    assert line[0].buy(deal, admissions[0]).status_code == 201
    # then: the newest admission goes back to the head of the line with its place
    figures = assert_within_cap(deal)
    assert (figures.admitted_now, figures.revoked) == (4, 1)
    assert state_of(line[5].ticket(deal)) == ("waiting", 1)
    assert state_of(line[6].ticket(deal)) == ("waiting", 2)
    assert_error(line[5].buy(deal, admissions[5]), 403, "NOT_ADMITTED")

    # when: the second buys (1 left: cap 2, 3 outstanding)
    assert line[1].buy(deal, admissions[1]).status_code == 201
    figures = assert_within_cap(deal)
    assert (figures.admitted_now, figures.revoked) == (2, 2)
    assert [state_of(s.ticket(deal)) for s in (line[4], line[5], line[6])] == [
        ("waiting", 1), ("waiting", 2), ("waiting", 3)
    ]  # fmt: skip

    # when: the third buys the last unit
    assert line[2].buy(deal, admissions[2]).status_code == 201
    figures = assert_within_cap(deal)
    assert (figures.admitted_now, figures.revoked) == (0, 3)
    assert_error(line[3].buy(deal, admissions[3]), 400, "DEAL_SOLD_OUT")
    assert [state_of(s.ticket(deal))[0] for s in line[3:]] == ["sold_out"] * 7


# --- 6. Sold out closes the room; a cancel reopens it; the end closes it --------------------------


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"])
def test_sold_out_cancel_and_end(clock, settings, pipeline):
    # given: one unit, A admitted, B and C waiting
    settings.ORDER_PIPELINE = pipeline
    deal = room_deal(stock=1, rate=10, starts_in=timedelta(0), lasts=timedelta(seconds=60))
    a, b, c, d = shoppers(4)
    for shopper in (a, b, c):
        shopper.join(deal)
    clock(0.1)
    body = a.client.get(f"/products/deals/{deal.id}").json()
    assert (body["waiting_room"], body["queue_seed"]) == (True, None)

    # when: A buys the last unit
    bought = a.buy(deal, a.admission(deal))
    assert bought.status_code == {"redis": 201, "redis_async": 202}[pipeline], bought.json()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    # then: every waiter's next poll says sold out; joins are refused
    assert [state_of(s.ticket(deal)) for s in (b, c)] == [("sold_out", None)] * 2
    assert_error(d.join(deal), 400, "DEAL_SOLD_OUT")
    assert state_of(a.ticket(deal)) == ("sold_out", None)  # bought, but sold out tells all
    assert_within_cap(deal)

    # when: A cancels: the unit comes back
    cancelled = a.client.post(f"/orders/{bought.json()['id']}/cancel", {}, format="json")
    assert cancelled.status_code == 200, cancelled.json()
    clock(0.1)

    # then: the room admits again, in line order
    assert state_of(b.ticket(deal)) == ("admitted", 0)
    assert state_of(c.ticket(deal)) == ("waiting", 1)
    assert_within_cap(deal)
    admission = b.admission(deal)

    # when: the deal ends
    clock(60)

    # then: polls say closed, joins and purchases are refused, the seed is published
    assert [state_of(s.ticket(deal)) for s in (b, c)] == [("closed", None)] * 2
    assert_error(d.join(deal), 400, "DEAL_NOT_ACTIVE")
    assert_error(b.buy(deal, admission), 400, "DEAL_NOT_ACTIVE")
    body = a.client.get(f"/products/deals/{deal.id}").json()
    assert (body["status"], body["queue_seed"]) == ("ended", deal.room_seed)


# --- 7. Leaving ----------------------------------------------------------------------------------


def test_leaving_frees_the_place_at_once(clock, settings):
    # given: one unit, A admitted, B and C waiting
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(stock=1, rate=10, starts_in=timedelta(0))
    a, b, c = line = shoppers(3)
    for shopper in line:
        shopper.join(deal)
    clock(0.1)
    admission = a.admission(deal)

    # when / then: B leaves; C moves up at once
    assert b.leave(deal).status_code == 204
    assert state_of(c.ticket(deal)) == ("waiting", 1)
    assert c.ticket(deal).json()["waiting"] == 1
    assert_error(b.ticket(deal), 404, "NOT_QUEUED")
    assert_error(b.leave(deal), 404, "NOT_QUEUED")

    # when / then: A gives up the admission: the slot is free at once, the admission void
    assert a.leave(deal).status_code == 204
    assert gate.room_figures(deal.id).admitted_now == 0
    assert_error(a.buy(deal, admission), 403, "NOT_ADMITTED")
    assert_error(a.ticket(deal), 404, "NOT_QUEUED")
    clock(0.1)  # the next admission's interval
    assert state_of(c.ticket(deal)) == ("admitted", 0)
    assert gate.deal_remaining([deal.id]) == {deal.id: 1}


# --- 8. Room off, idempotent join, the cost of a poll -------------------------------------------


def test_without_a_room_there_is_no_line_and_no_admission(clock, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal()
    (shopper,) = shoppers(1)
    assert_error(shopper.join(deal), 400, "QUEUE_NOT_OPEN", {"deal_id": str(deal.id)})
    assert_error(shopper.ticket(deal), 404, "NOT_QUEUED")
    assert shopper.buy(deal).status_code == 201


def test_joining_again_returns_the_same_place(clock, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = room_deal(starts_in=timedelta(0))
    first, second = shoppers(2)
    first.join(deal)
    joined = second.join(deal)
    again = second.join(deal)
    assert (joined.status_code, again.status_code) == (201, 200)
    assert state_of(joined) == state_of(again) == ("waiting", 2)
    assert joined.json()["waiting"] == again.json()["waiting"] == 2
    assert gate.room_figures(deal.id).joins == 2


def _commands_of_a_poll(shopper: Shopper, deal) -> dict[str, int]:
    """Every Redis command the poll's request issues, by name, as the server counts them
    (commands a script runs included)."""
    client = get_redis()
    client.config_resetstat()
    assert state_of(shopper.ticket(deal))[0] == "waiting"
    stats = client.info("commandstats")
    return {name: values["calls"] for name, values in stats.items() if name != "cmdstat_info"}


@pytest.mark.single_gate_server
def test_a_poll_costs_the_same_with_10_or_2000_waiting(clock, settings):
    # given: a shopper in line with 9 others
    settings.ORDER_PIPELINE = "redis"
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 0  # its read at every request, not once a second
    deal = room_deal(stock=1, rate=10, starts_in=timedelta(0))
    (shopper,) = shoppers(1)
    shopper.join(deal)
    room_fill(deal.id, 9, now_ms=epoch_ms(clock()), prefix="first")
    assert gate.room_figures(deal.id).waiting == 10
    with_10 = _commands_of_a_poll(shopper, deal)

    # when: 1,990 more join
    room_fill(deal.id, 1990, now_ms=epoch_ms(clock()), prefix="more")
    assert gate.room_figures(deal.id).waiting == 2000

    # then: the same Redis commands, as many of each
    assert _commands_of_a_poll(shopper, deal) == with_10
    assert with_10["cmdstat_evalsha"] == 1


# --- 9. Every key a script touches comes from KEYS ------------------------------------------------

ROOM_SCRIPTS = ("room_lib", "queue", "reserve")
CALL = re.compile(r"redis\.(?:p?call)\(\s*\"(\w+)\"\s*,\s*([^,)]+)")
KEY_ARG = re.compile(r"^(KEYS\[\d+\]|R\.\w+)$")
R_TABLE = re.compile(r"R\s*=\s*\{([^}]*)\}", re.S)


def test_every_key_the_room_scripts_touch_comes_from_keys():
    # the check itself catches a key built in Lua
    (built,) = CALL.findall('redis.call("GET", "deal:" .. ARGV[1])')
    assert not KEY_ARG.match(built[1].strip())
    calls = 0
    for name in ROOM_SCRIPTS:
        text = Path(SCRIPT_DIR / f"{name}.lua").read_text()
        for command, key in CALL.findall(text):
            calls += 1
            assert KEY_ARG.match(key.strip()), f"{name}.lua: {command} on {key!r}"
        for table in R_TABLE.findall(text):  # R.<name> is an alias of a KEYS entry
            for field in table.split(","):
                if field.strip():
                    alias, _, value = field.partition("=")
                    assert re.fullmatch(r"\s*KEYS\[\d+\]\s*", value), f"{name}.lua: {field!r}"
        assert not re.search(r"redis\.p?call\(\s*[^\"\s]", text), f"{name}.lua: computed command"
    assert calls > 40
