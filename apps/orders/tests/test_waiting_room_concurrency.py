"""No purchase without an admission, under real concurrency (the admission invariant):
shoppers' threads, released together by a barrier, POST /orders on a deal behind its waiting
room. The negative control switches the room's own protection off (the test-only setting
WAITING_ROOM_UNSAFE_SKIP_ADMISSION, reserve.lua with its admission block cut out) and runs the
same race: non-admitted shoppers then buy."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum

from apps.deals import gate
from apps.orders.models import Order, OrderItem
from apps.orders.services.drain import stream_drain

from .concurrency import answer_of, race_purchases
from .helpers import deal_line
from .room import Shopper, assert_within_cap, room_deal, shoppers, state_of

pytestmark = [pytest.mark.django_db(transaction=True)]

ACCEPTED = {"redis": 201, "redis_async": 202}
ADMITTED, OTHERS = 5, 25


def units_sold(deal) -> int:
    sold = OrderItem.objects.filter(deal=deal).exclude(order__status__in=["cancelled", "failed"])
    return sold.aggregate(n=Sum("quantity"))["n"] or 0


def race(deal, clock) -> tuple[list[Shopper], list[Shopper], list[Shopper], Counter]:
    """30 shoppers join; after 1 s at 5 a second the first 5 are admitted. Then, all at once:
    each admitted shopper buys twice with their admission (their limit is 2: only the admission
    stops the second), 5 others show an admitted shopper's admission, 20 show none. Returns
    (admitted, the others, who bought, answers)."""
    line = shoppers(ADMITTED + OTHERS)
    for shopper in line:
        assert shopper.join(deal).status_code == 201
    clock(1)
    admitted, others = line[:ADMITTED], line[ADMITTED:]
    admissions = [s.admission(deal) for s in admitted]
    assert state_of(others[0].ticket(deal)) == ("waiting", 1)
    assert_within_cap(deal)

    attempts: list[tuple[Shopper, dict[str, str]]] = []
    for shopper, admission in zip(admitted, admissions, strict=True):
        attempts += [(shopper, {"HTTP_ADMISSION": admission})] * 2
    for shopper, stolen in zip(others, admissions, strict=False):
        attempts.append((shopper, {"HTTP_ADMISSION": stolen}))
    attempts += [(shopper, {}) for shopper in others[ADMITTED:]]
    responses = race_purchases([(s.token, deal_line(deal), h) for s, h in attempts])
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    buyers = [s for (s, _), r in zip(attempts, responses, strict=True) if r.status_code < 300]
    return admitted, others, buyers, Counter(answer_of(r) for r in responses)


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"])
def test_only_admitted_shoppers_buy_each_once(clock, settings, pipeline):
    # given: 40 units, the room on, its protection on
    settings.ORDER_PIPELINE = pipeline
    settings.WAITING_ROOM_UNSAFE_SKIP_ADMISSION = False
    deal = room_deal(stock=40, rate=5, limit=2, starts_in=timedelta(0))

    # when
    admitted, _, buyers, answers = race(deal, clock)

    # then: each admitted shopper bought exactly once, nobody else did
    assert answers == {ACCEPTED[pipeline]: ADMITTED, "403 NOT_ADMITTED": ADMITTED + OTHERS}
    assert sorted(s.id for s in buyers) == sorted(s.id for s in admitted)
    assert Order.objects.count() == units_sold(deal) == ADMITTED
    figures = assert_within_cap(deal)
    assert (figures.admitted, figures.admitted_now, figures.waiting) == (ADMITTED, 0, OTHERS)
    assert gate.deal_remaining([deal.id]) == {deal.id: 40 - ADMITTED}


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"])
def test_negative_control_without_the_admission_check_anyone_buys(clock, settings, pipeline):
    # given: the same race with the room's admission check cut out of reserve.lua
    settings.ORDER_PIPELINE = pipeline
    settings.WAITING_ROOM_UNSAFE_SKIP_ADMISSION = True
    deal = room_deal(stock=40, rate=5, limit=2, starts_in=timedelta(0))

    # when
    admitted, others, buyers, answers = race(deal, clock)

    # then: every attempt bought, admitted or not, and the admitted bought twice
    assert answers == {ACCEPTED[pipeline]: 2 * ADMITTED + OTHERS}
    assert Counter(s.id for s in buyers) == {s.id: 2 for s in admitted} | {s.id: 1 for s in others}
    assert units_sold(deal) == 2 * ADMITTED + OTHERS


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"])
def test_overbooked_admissions_race_for_the_last_units(clock, settings, pipeline):
    # given: 5 units, factor 2: 10 admitted shoppers and 10 waiting
    settings.ORDER_PIPELINE = pipeline
    deal = room_deal(stock=5, rate=10, overbook="2.00", starts_in=timedelta(0))
    line = shoppers(20)
    for shopper in line:
        shopper.join(deal)
    clock(1)
    admitted = line[:10]
    admissions = [s.admission(deal) for s in admitted]
    assert assert_within_cap(deal).admitted_now == 10

    # when: all 10 buy at once
    attempts = zip(admitted, admissions, strict=True)
    responses = race_purchases(
        [(s.token, deal_line(deal), {"HTTP_ADMISSION": a}) for s, a in attempts]
    )
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    # then: 5 sold; each sale sent the newest admission over the new cap back to the line,
    # so the other 5 were refused: revoked (403) or, after the last unit, sold out (400)
    answers = Counter(answer_of(r) for r in responses)
    assert answers[ACCEPTED[pipeline]] == 5
    assert set(answers) - {ACCEPTED[pipeline]} <= {"403 NOT_ADMITTED", "400 DEAL_SOLD_OUT"}
    assert units_sold(deal) == Order.objects.count() == 5
    figures = assert_within_cap(deal)
    assert (figures.admitted_now, figures.revoked, figures.waiting) == (0, 5, 15)
    assert [state_of(s.ticket(deal))[0] for s in line] == ["sold_out"] * 20
