"""Nothing strands (docs/reliability.md, "What a reliability review found", case 4): an accepted
reservation ends as an order or a visible failure even when part of the gate's state is gone. Each
test fails on the code before the fix with the exact leftover named in its docstring."""

import logging
import uuid

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.models import Deal
from apps.deals.services import deal_close, deal_end, deal_pause
from apps.deals.tests.gate_faults import (
    close_interrupted_before_the_live_set,
    dead_letter_count,
    deal_snapshot,
    deal_snapshot_restore,
    forget_counters,
    forget_live,
    forget_pending,
    forget_state,
    park_interrupted,
)
from apps.orders.models import Order
from apps.orders.selectors import deal_orders_written
from apps.orders.services.dead_letters import dead_letter_discard
from apps.orders.services.drain import pending_sweep, stream_drain, streams_maintain
from apps.orders.services.gate_state import deal_state_ensure
from apps.orders.services.lifecycle import deals_prepare
from apps.orders.tests.helpers import deal_line, make_deal
from apps.orders.tests.test_concurrency import make_users
from conftest import bearer_client

pytestmark = pytest.mark.django_db(transaction=True)


def _reserve(deal, user, *, mode: str) -> Reservation:
    """An accepted purchase whose web process died before writing it (no writer started)."""
    reservation = Reservation.new(
        user_id=user.id, quantity=1, created_at=timezone.now(), request_hash="",
        idempotency_key=None, shipping=None,
    )  # fmt: skip
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=reservation, mode=mode
    )
    assert result.outcome == Outcome.OK
    return result.reservation


def test_a_release_with_the_state_gone_still_drops_the_pending_copy(user):
    """Before: release.lua answered NOT_LOADED first and left the copy in `pending`, where the
    sweep later wrote a cancelled purchase as a confirmed order."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    forget_state(deal.id)

    released = gate.deal_release(
        deal_id=deal.id, user_id=user.id, quantity=1, order_id=reservation.order_id
    )

    assert released is False  # no state: PostgreSQL alone takes the units back
    assert gate.deal_backlog(deal.id) == 0


def test_a_dead_letter_with_the_state_gone_is_failed_not_pending(user):
    """Before: parking released through release.lua, which answered NOT_LOADED before dropping
    `pending`: the order showed `pending` forever while sitting in the dead-letter list."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    forget_state(deal.id)

    gate.dead_letter_park(deal.id, reservation, reason="DealCounterMismatch: test")

    assert gate.deal_backlog(deal.id) == 0
    body = bearer_client(user).get(f"/orders/{reservation.order_id}").json()
    assert (body["status"], body["failure_reason"]) == ("failed", "DealCounterMismatch: test")


def test_the_maintenance_beat_puts_a_lost_live_deal_back_and_sweeps_it(user, settings):
    """Before: once the live set lost a deal nothing re-added it, so its orphan was never swept
    and GET /orders/{id} answered 404 for an accepted purchase."""
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    forget_live(deal.id)

    report = streams_maintain()

    assert report == {str(deal.id): 1}
    assert Order.objects.get(pk=reservation.order_id).status == "confirmed"
    assert gate.deal_backlog(deal.id) == 0


def test_an_orphan_postgresql_refuses_for_good_is_parked_and_the_deal_closes(user, settings):
    """Before: the sweep left it in `pending` for ever, so deal_close waited for ever and the
    unsold units never went back to the product."""
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)  # PostgreSQL will refuse it

    assert pending_sweep(deal_id=str(deal.id)) == 0

    assert gate.deal_backlog(deal.id) == 0
    body = bearer_client(user).get(f"/orders/{reservation.order_id}").json()
    assert (body["status"], body["failure_reason"]) == (
        "failed",
        "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold.",
    )
    assert gate.deal_counters(deal.id).remaining == 3
    Deal.objects.filter(pk=deal.pk).update(ended_at=timezone.now())
    assert deal_close(deal_id=deal.id) is not None


def test_the_stream_copy_of_a_parked_orphan_is_not_written(user, settings):
    """An async orphan parked by the sweep still has its stream entry; writing that entry later
    would confirm an order whose units are back on sale (and a replay would take them twice)."""
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="async")
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)
    pending_sweep(deal_id=str(deal.id))
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=3)  # the cause is gone meanwhile

    assert stream_drain(deal_id=str(deal.id), idle_exit_ms=0) == 0

    assert not Order.objects.filter(pk=reservation.order_id).exists()
    assert gate.dead_letters_among(deal.id, [reservation.order_id]) == {reservation.order_id}
    assert gate.deal_live_counts(deal.id, now=0, seconds=1, dead_limit=1)["stream_length"] == 0


def test_a_gate_restored_to_an_older_state_is_caught_and_rebuilt(user, settings):
    """Redis came back from a moment earlier (a crash before its last second was on disk, a
    restore, a failover to a lagging replica): it has forgotten a purchase PostgreSQL already
    wrote. Before: nothing noticed; the gate offered the unit again and let the shopper buy
    past the limit. Now the maintenance beat sees PostgreSQL ahead of the gate's count of
    accepted purchases and rebuilds it."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    shopper = bearer_client(user)
    assert shopper.post("/orders", deal_line(deal), format="json").status_code == 202
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    forget_counters(deal.id)  # the older state: as installed before anything was sold
    gate.deal_state_load(
        Deal.objects.select_related("product").get(pk=deal.pk), pending={},
        holdings=gate.Holdings(),
    )  # fmt: skip

    streams_maintain()

    assert gate.deal_counters(deal.id) == gate.Counters(remaining=2, users={str(user.id): 1})
    again = shopper.post("/orders", deal_line(deal), format="json")
    assert (again.status_code, again.json()["error"]) == (400, "DEAL_LIMIT_EXCEEDED")


@pytest.mark.single_gate_server
def test_a_closed_deal_a_restore_brings_back_is_closed_again_in_the_gate(user, settings):
    """The gate came back from a copy taken before the deal closed (found by the chaos suite,
    seed 18): the deal's state, its pending copies and its live-set entry were back, the closed
    tombstone gone. Before: the maintenance beat rebuilt and kept that state for ever (a gate
    selling a closed deal, every purchase then failing in the writer) and its backlog never
    emptied. Now the beat stops its sales, resolves the backlog and closes it again."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    shopper = bearer_client(user)
    assert shopper.post("/orders", deal_line(deal), format="json").status_code == 202
    copy = deal_snapshot(deal.id)  # taken while the order is still pending
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    deal_end(deal_id=deal.id)  # closes it on commit
    assert Deal.objects.get(pk=deal.pk).closed_at is not None
    deal_snapshot_restore(deal.id, copy)
    assert gate.deal_state_loaded(deal.id) and gate.deal_backlog(deal.id) == 1

    settings.ORDER_PENDING_SWEEP_AGE_MS = 0  # the restored copy's reservation is old already
    streams_maintain()

    assert not gate.deal_state_loaded(deal.id)
    assert gate.deal_backlog(deal.id) == 0
    assert str(deal.id) not in gate.live_deal_ids()
    assert Order.objects.filter(deal=deal).count() == 1  # written once, not twice
    other = bearer_client(UserFactory())
    refused = other.post("/orders", deal_line(deal), format="json")
    assert refused.status_code != 202, refused.json()


def test_a_close_interrupted_before_the_live_set_is_finished_without_an_alarm(settings, caplog):
    """On a cluster the close leaves the live set after its transaction (another slot). A
    process that dies between the two leaves a closed deal in the set: the beat finishes the
    close, and says so at INFO (nothing came back to life, unlike a restore)."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    deal_end(deal_id=deal.id)  # closes it on commit
    assert Deal.objects.get(pk=deal.pk).closed_at is not None
    close_interrupted_before_the_live_set(deal.id)

    with caplog.at_level(logging.INFO, logger="apps.orders.services.drain"):
        streams_maintain()

    assert str(deal.id) not in gate.live_deal_ids()
    assert not gate.deal_state_loaded(deal.id)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [("INFO", f"deal {deal.id} is closed; its live-set entry outlived the close")]


def test_a_deal_that_lost_its_pending_copies_does_not_close_over_its_stream(user, settings):
    """The `pending` hash was lost while the stream still held accepted, unwritten
    reservations (found by the chaos suite, seeds 70 and 135: no writer ran, a broker outage
    or a killed worker). Before: the close counted only `pending`, found nothing unwritten,
    returned the units to the product and its unload deleted the stream: the accepted
    purchases were gone. Now the stream counts as backlog: the close waits, the closing beat
    drains the stream, then closes."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    bought = bearer_client(user).post("/orders", deal_line(deal), format="json")
    assert bought.status_code == 202  # no worker runs here: it waits in the stream
    forget_pending(deal.id)

    deal_end(deal_id=deal.id)  # tries to close on commit

    assert Deal.objects.get(pk=deal.pk).closed_at is None
    assert gate.deal_backlog(deal.id) == 1
    deals_prepare()  # the closing beat
    assert Order.objects.filter(pk=bought.json()["id"], status="confirmed").exists()
    deal.refresh_from_db()
    assert deal.closed_at is not None
    assert Product.objects.get(pk=deal.product_id).stock == 100 + 2  # the 2 unsold units


def test_a_rebuild_from_a_stale_read_keeps_the_operators_pause(user, settings):
    """The rebuild read the deal, the operator paused it while the gate had no state (its sync
    had nothing to update), then the rebuild installed what it read. Before: sales reopened."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    forget_counters(deal.id)
    stale = Deal.objects.select_related("product").get(pk=deal.pk)

    deal_pause(deal_id=deal.id)
    deal_state_ensure(stale)

    assert gate.deal_state_read(deal.id)["paused"] == "1"
    refused = bearer_client(user).post("/orders", deal_line(deal), format="json")
    assert (refused.status_code, refused.json()["error"]) == (400, "DEAL_NOT_ACTIVE")


def test_a_discarded_dead_letter_after_a_rebuild_does_not_look_like_lost_writes(user):
    """The rebuild's count of accepted purchases includes parked ones: discarding one writes a
    `failed` row, which must not make the gate look behind PostgreSQL (before: it was dropped
    and rebuilt, purchases answering 503 meanwhile)."""
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    gate.dead_letter_park(deal.id, reservation, reason="WRITE_FAILED: test")
    forget_counters(deal.id)
    deal_state_ensure(Deal.objects.select_related("product").get(pk=deal.pk))

    dead_letter_discard(deal_id=deal.id, order_id=uuid.UUID(reservation.order_id))

    assert deal_orders_written(deal_id=deal.id) == 1
    assert gate.deal_state_behind(deal.id, written=1) is False
    assert gate.deal_state_loaded(deal.id)


def test_the_sweep_neither_writes_nor_parks_again_a_parked_reservation(user, settings):
    """A park interrupted before its release (its process was killed between the two) leaves
    the reservation both in the dead letters and in `pending`. Before: the sweep's snapshot did
    not leave parked reservations out and wrote it as a confirmed order while the operator saw
    a dead letter (replaying it would take its units twice); a refused write parked it again.
    Now the sweep only finishes the park: units back once, pending copy dropped."""
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="sync")
    park_interrupted(deal.id, reservation, reason="WRITE_FAILED: test")

    assert pending_sweep(deal_id=str(deal.id)) == 0

    assert not Order.objects.filter(pk=reservation.order_id).exists()
    assert dead_letter_count(deal.id) == 1
    assert gate.deal_backlog(deal.id) == 0
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    body = bearer_client(user).get(f"/orders/{reservation.order_id}").json()
    assert (body["status"], body["failure_reason"]) == ("failed", "WRITE_FAILED: test")
    assert pending_sweep(deal_id=str(deal.id)) == 0  # again: nothing left to do
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})


def _restore_older_state(deal) -> None:
    """The gate came back as it was before anything was sold (a restore, a failover to a
    replica that had not caught up)."""
    forget_counters(deal.id)
    gate.deal_state_load(
        Deal.objects.select_related("product").get(pk=deal.pk), pending={},
        holdings=gate.Holdings(),
    )  # fmt: skip


def test_the_first_unit_postgresql_refuses_rebuilds_a_gate_behind_it(settings):
    """A gate restored behind PostgreSQL sells the last unit again. Before: the writer retried
    the refused reservation and the gate went on answering 202 until the next maintenance beat.
    Now the writer's refusal rebuilds it at once: the extra purchase fails visibly with its
    unit back, and the next shopper hears "sold out" straight away."""
    settings.ORDER_PIPELINE = "redis_async"
    first, second, third = make_users(3)
    deal = make_deal(deal_stock=1, per_user_limit=1)
    assert bearer_client(first).post("/orders", deal_line(deal), format="json").status_code == 202
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    _restore_older_state(deal)

    extra = bearer_client(second).post("/orders", deal_line(deal), format="json")
    assert extra.status_code == 202  # the stale gate still thinks one unit is left
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    failed = bearer_client(second).get(f"/orders/{extra.json()['id']}").json()
    assert (failed["status"], failed["failure_reason"].split(":")[0]) == (
        "failed",
        "DEAL_COUNTER_MISMATCH",
    )
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=0, users={str(first.id): 1})
    late = bearer_client(third).post("/orders", deal_line(deal), format="json")
    assert (late.status_code, late.json()["error"]) == (400, "DEAL_SOLD_OUT")
    assert Order.objects.filter(deal=deal, status="confirmed").count() == 1


def test_a_gate_dropped_for_being_behind_keeps_its_sales_stop(user, settings):
    """The close stopped sales (stop.lua's mark), then the beat found the gate behind
    PostgreSQL and dropped its counters. Before: the mark went with them, and the rebuild, reading
    a deal row that a natural end does not change, reopened sales the close had counted as
    finished. Now forget.lua keeps the mark through the drop and the rebuild."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    assert bearer_client(user).post("/orders", deal_line(deal), format="json").status_code == 202
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    _restore_older_state(deal)
    assert gate.deal_sales_stop(deal.id) == 0

    streams_maintain()  # behind: dropped and rebuilt

    assert gate.deal_counters(deal.id) == gate.Counters(remaining=2, users={str(user.id): 1})
    assert gate.deal_state_read(deal.id)["ended"] == "1"
    other = bearer_client(make_users(1)[0]).post("/orders", deal_line(deal), format="json")
    assert (other.status_code, other.json()["error"]) == (400, "DEAL_NOT_ACTIVE")


def test_a_pending_order_of_a_deal_the_live_set_lost_can_be_read_and_cancelled_again(
    user, settings, django_capture_on_commit_callbacks
):
    """Order lookups visit the live set's deals only. Before: once the set lost a deal, GET and
    cancel of its pending orders answered 404 for good. The maintenance beat puts it back (the
    reservation is younger than the sweep age here: it stays pending, not written)."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    reservation = _reserve(deal, user, mode="async")
    forget_live(deal.id)
    shopper = bearer_client(user)
    assert shopper.get(f"/orders/{reservation.order_id}").status_code == 404  # the loss

    assert streams_maintain() == {str(deal.id): 0}

    assert shopper.get(f"/orders/{reservation.order_id}").json()["status"] == "pending"
    with django_capture_on_commit_callbacks(execute=True):  # the release runs on commit
        cancelled = shopper.post(f"/orders/{reservation.order_id}/cancel", {}, format="json")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)  # its stream copy: written already
    assert gate.deal_backlog(deal.id) == 0  # (it counts until a drain has read it)
    assert Order.objects.filter(pk=reservation.order_id).count() == 1
