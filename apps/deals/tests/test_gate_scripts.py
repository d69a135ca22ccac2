"""The gate's Lua scripts at their edges: what a script error, a stop, a late release or a
test-only switch leaves in Redis (docs/reliability.md, "What a reliability review found", cases 3
and 7). Each test names
what the script left behind before its fix."""

import pytest
import redis
from django.utils import timezone

from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.models import Deal
from apps.deals.services import deal_end
from apps.deals.tests.gate_faults import (
    forget_counters,
    idempotency_fields,
    is_released,
    keys_without_ttl,
    release_raw,
    reserve_raw,
    set_remaining,
)
from apps.orders.services.gate_state import deal_books, deal_state_ensure
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db(transaction=True)  # the gate is told on commit


def _reservation(user, *, key: str | None = None) -> Reservation:
    return Reservation.new(
        user_id=user.id, quantity=1, created_at=timezone.now(), request_hash="h",
        idempotency_key=key, shipping=None,
    )  # fmt: skip


def _reserve(deal: Deal, user) -> Reservation:
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=_reservation(user), mode="sync"
    )
    assert result.outcome == Outcome.OK and result.reservation is not None
    return result.reservation


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


def test_a_release_the_script_cannot_read_leaves_nothing_behind(user):
    """Before: release.lua marked the order released and dropped its pending copy, then failed
    on a quantity that is not a number: the units never went back, and every later release of
    the order answered ALREADY. Now every argument is checked before the first write."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user)

    with pytest.raises(redis.ResponseError):
        release_raw(deal.id, user_id=user.id, quantity="one", order_id=reservation.order_id)

    assert not is_released(deal.id, reservation.order_id)
    assert gate.deal_backlog(deal.id) == 1
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=2, users={str(user.id): 1})
    assert gate.deal_release(
        deal_id=deal.id, user_id=user.id, quantity=1, order_id=reservation.order_id
    )
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    assert gate.deal_backlog(deal.id) == 0


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


def test_a_release_landing_after_the_close_leaves_no_key_that_never_expires(user, settings):
    """A cancel committed just before the close; its release (run on commit) lands after the
    close dropped the deal's keys. Before: release.lua marked the order in a new `released`
    set with no expiry, left in Redis for ever. The close keeps the dead letters on purpose
    (the operator still replays or discards them): that hash is the one key meant to stay."""
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=3, per_user_limit=2)
    gate.dead_letter_park(deal.id, _reserve(deal, user), reason="WRITE_FAILED: test")
    sold = bearer_client(user).post("/orders", deal_line(deal), format="json")
    assert sold.status_code == 201
    deal_end(deal_id=deal.id)  # closes at once on commit: nothing is pending
    assert Deal.objects.get(pk=deal.pk).closed_at is not None

    released = gate.deal_release(
        deal_id=deal.id, user_id=user.id, quantity=1, order_id=sold.json()["id"]
    )

    assert released is False
    assert keys_without_ttl(deal.id) == {"dead"}


def test_a_rebuild_keeps_the_release_marks_made_while_the_state_was_missing(user):
    """A release with the state missing marks the order with an expiry (the state may never
    come back); the rebuild makes the set part of the live state again, so the mark (a second
    release of the order gives nothing back) lasts as long as the deal."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user)
    forget_counters(deal.id)
    gate.deal_release(deal_id=deal.id, user_id=user.id, quantity=1, order_id=reservation.order_id)
    assert "released" not in keys_without_ttl(deal.id)

    assert deal_state_ensure(Deal.objects.select_related("product").get(pk=deal.pk)) is True

    assert "released" in keys_without_ttl(deal.id)
    again = gate.deal_release(
        deal_id=deal.id, user_id=user.id, quantity=1, order_id=reservation.order_id
    )
    assert again is True  # ALREADY: nothing given back twice
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})


def test_sales_stopped_while_the_state_was_missing_stay_stopped_after_a_rebuild(user):
    """The close stops sales while Redis has lost the deal's state; a rebuild that read the
    deal before the stop then installs it, and a web server whose clock is still before the end
    reserves. Before: deal_sales_stop checked for the state, found none and marked nothing (and
    a state installed between its check and its write got no mark either): the purchase was
    accepted after the close had counted nothing pending, and stranded once the close dropped
    the keys. Now the stop is one script that marks the deal ended whatever is loaded, and
    load.lua keeps the mark."""
    deal = make_deal(deal_stock=3)
    stale = Deal.objects.select_related("product").get(pk=deal.pk)  # the rebuild's read
    forget_counters(deal.id)

    assert gate.deal_sales_stop(deal.id) == 0
    assert gate.deal_state_load(stale, pending={}, holdings=gate.Holdings()) is True
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=_reservation(user), mode="async"
    )

    assert result.outcome == Outcome.ENDED
    assert gate.deal_state_read(deal.id)["ended"] == "1"
    assert gate.deal_backlog(deal.id) == 0


def test_a_stop_racing_the_close_recreates_nothing(user):
    """Two closers: one has dropped the deal's keys (tombstone set) when the other stops
    sales. The stop's mark must not bring back a state hash, which nothing would ever delete."""
    deal = make_deal(deal_stock=3)
    gate.dead_letter_park(deal.id, _reserve(deal, user), reason="WRITE_FAILED: test")
    gate.deal_state_close(deal.id)

    assert gate.deal_sales_stop(deal.id) == 0

    assert gate.deal_state_read(deal.id) == {}
    assert keys_without_ttl(deal.id) == {"dead"}


def test_a_release_landing_between_a_rebuilds_snapshot_and_its_load_is_given_back(user):
    """A rebuild snapshots `pending`, reads PostgreSQL, then installs. A reservation released in
    between (its write refused, or its order dead-lettered, while the state was missing: the
    release marks it released and drops its copy, giving nothing back as there is no state) was
    still counted as sold by the rebuild. Before: its unit stayed withheld from sale for good.
    Now load.lua leaves out the unwritten reservations already marked released."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user)
    forget_counters(deal.id)
    deal = Deal.objects.select_related("product").get(pk=deal.pk)
    pending = gate.pending_snapshot(deal.id)  # the rebuild's first step
    books = deal_books(deal, pending)  # ... and its read of PostgreSQL

    gate.deal_release(deal_id=deal.id, user_id=user.id, quantity=1, order_id=reservation.order_id)
    installed = gate.deal_state_load(
        deal, pending=pending, holdings=gate.Holdings(
            units=books.held, accepted=books.accepted,
            unwritten=[(r.order_id, r.user_id, r.quantity) for r in books.unwritten],
        ),
    )  # fmt: skip

    assert installed is True
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
