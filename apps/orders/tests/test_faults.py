"""Invariants under injected faults: a worker SIGKILLed mid-batch, Redis restarted or emptied
during a deal, a web process killed right after the Lua step, an entry that keeps failing."""

import os
import signal
import time

import pytest

from apps.core.redis import get_redis
from apps.core.tests.celery_worker import CeleryWorker
from apps.core.tests.forking import close_connections_before_fork
from apps.core.tests.redis_server import RedisServer
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.tests.gate_faults import dead_letter_count, forget_counters
from apps.orders.models import Order
from apps.orders.services.drain import pending_sweep, stream_drain, stream_reclaim, streams_maintain
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.helpers import deal_line, make_deal, reserve_unwritten
from apps.orders.tests.test_concurrency import make_users, units_sold
from conftest import bearer_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(condition, *, timeout: float = 60, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def reserve_directly(deal: Deal, user_ids: list, *, mode: str = "async") -> list[str]:
    """Accepted purchases, as the web tier would make them (no kick: no writer runs yet)."""
    return [reserve_unwritten(deal, user_id, mode=mode).order_id for user_id in user_ids]


def assert_books_balance(deal: Deal, *, sold: int) -> None:
    deal.refresh_from_db()
    assert units_sold(deal) == sold
    assert deal.remaining_stock == deal.deal_stock - sold
    assert gate.deal_backlog(deal.id) == 0
    report = deal_reconcile(deal_id=deal.id)
    assert report.ok, report.findings
    assert report.redis_remaining == deal.deal_stock - sold


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(settings):
    # given: 2,000 accepted reservations waiting in the stream
    settings.ORDER_PIPELINE = "redis_async"
    users = make_users(200)
    deal = make_deal(deal_stock=2000, per_user_limit=10)
    accepted = reserve_directly(deal, [u.id for u in users] * 10)
    slow_batches = {"ORDER_STREAM_BATCH": "10", "ORDER_STREAM_RECLAIM_IDLE_MS": "500"}

    # when: a worker starts draining and is SIGKILLed part-way through
    from apps.orders.tasks import drain_deal_stream_task, streams_maintain_task

    first = CeleryWorker(name="doomed", extra_env=slow_batches).start()
    drain_deal_stream_task.delay(str(deal.id))
    wait_for(lambda: Order.objects.count() >= 100, what="the first batches")
    first.kill()
    written_before_kill = Order.objects.count()
    assert written_before_kill < 2000, "the kill must land mid-drain"

    # ... and a new worker takes over through the maintenance beat
    second = CeleryWorker(name="heir", extra_env=slow_batches).start()
    try:

        def caught_up() -> bool:
            streams_maintain_task.delay()
            return Order.objects.count() == 2000 and gate.deal_backlog(deal.id) == 0

        wait_for(caught_up, timeout=90, every=0.5, what="the heir to write everything")
    finally:
        second.stop()

    # then: every accepted purchase is exactly one order
    assert sorted(str(i) for i in Order.objects.values_list("id", flat=True)) == sorted(accepted)
    assert dead_letter_count(deal.id) == 0
    assert_books_balance(deal, sold=2000)


@pytest.mark.single_gate_server
def test_redis_restart_during_a_deal_keeps_every_reservation(settings, tmp_path):
    settings.ORDER_PIPELINE = "redis_async"
    server = RedisServer(tmp_path / "redis").start()  # AOF on, fsync always
    original_url = settings.REDIS_URL
    settings.REDIS_URL = server.url
    _reset_redis_clients()
    try:
        users = make_users(70)
        clients = [bearer_client(u) for u in users]
        deal = make_deal(deal_stock=60)
        first = [c.post("/orders", deal_line(deal), format="json") for c in clients[:40]]
        assert [r.status_code for r in first] == [202] * 40

        # when: Redis dies; purchases fail closed
        server.stop(kill=True)
        down = clients[40].post("/orders", deal_line(deal), format="json")
        assert down.status_code == 503 and down["Retry-After"] == "1"

        # ... and comes back from its AOF: sales resume where they stopped
        server.start()
        rest = [c.post("/orders", deal_line(deal), format="json") for c in clients[40:]]
        codes = [r.status_code for r in rest]
        assert codes == [202] * 20 + [400] * 10
        assert {r.json()["error"] for r in rest[20:]} == {"DEAL_SOLD_OUT"}

        stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
        accepted = {r.json()["id"] for r in first + rest[:20]}
        assert {str(i) for i in Order.objects.values_list("id", flat=True)} == accepted
        assert_books_balance(deal, sold=60)
    finally:
        server.stop()
        settings.REDIS_URL = original_url
        _reset_redis_clients()


def _reset_redis_clients() -> None:
    get_redis.cache_clear()


def test_lost_deal_state_is_rebuilt_before_sales_resume(settings):
    # given: a deal with 3 units sold (2 written, 1 still pending), then Redis loses the state
    settings.ORDER_PIPELINE = "redis_async"
    buyers = make_users(6)
    deal = make_deal(deal_stock=5, per_user_limit=1)
    clients = [bearer_client(u) for u in buyers]
    for client in clients[:2]:
        assert client.post("/orders", deal_line(deal), format="json").status_code == 202
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert clients[2].post("/orders", deal_line(deal), format="json").status_code == 202
    forget_counters(deal.id)  # the counters are gone

    # when: a rebuild is already running elsewhere, purchases fail closed
    assert gate.rebuild_lock(deal.id)
    busy = clients[3].post("/orders", deal_line(deal), format="json")
    assert busy.status_code == 503
    gate.rebuild_unlock(deal.id)

    # then: the next purchase rebuilds from PostgreSQL + pending; limits and stock still hold
    again = clients[0].post("/orders", deal_line(deal), format="json")
    assert again.status_code == 400 and again.json()["error"] == "DEAL_LIMIT_EXCEEDED"
    pending_buyer = clients[2].post("/orders", deal_line(deal), format="json")
    assert pending_buyer.json()["error"] == "DEAL_LIMIT_EXCEEDED"
    last_two = [c.post("/orders", deal_line(deal), format="json") for c in clients[3:]]
    assert [r.status_code for r in last_two] == [202, 202, 400]
    assert last_two[2].json()["error"] == "DEAL_SOLD_OUT"
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert_books_balance(deal, sold=5)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_web_process_killed_right_after_the_lua_step(settings, mode):
    settings.ORDER_PIPELINE = "redis" if mode == "sync" else "redis_async"
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    user = make_users(1)[0]
    deal = make_deal(deal_stock=3)

    # when: a "web process" reserves and dies before writing the order or starting a writer
    close_connections_before_fork()
    pid = os.fork()
    if pid == 0:  # child
        try:
            get_redis().connection_pool.reset()
            order_id = reserve_directly(deal, [user.id], mode=mode)[0]
            get_redis().set("fault-test:order", order_id)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    order_id = get_redis().get("fault-test:order")
    assert not Order.objects.filter(pk=order_id).exists()
    shopper = bearer_client(user)
    assert shopper.get(f"/orders/{order_id}").json()["status"] == "pending"

    # then: the maintenance sweep writes it, exactly once
    assert pending_sweep(deal_id=str(deal.id)) == 1
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)  # the async copy: a no-op now
    assert pending_sweep(deal_id=str(deal.id)) == 0
    assert Order.objects.filter(pk=order_id, status="confirmed").count() == 1
    assert shopper.get(f"/orders/{order_id}").json()["status"] == "confirmed"
    assert_books_balance(deal, sold=1)


def test_entry_that_keeps_failing_is_dead_lettered_with_its_units_returned(settings, user):
    """A write that fails for a reason that might pass (WRITE_FAILED) is retried up to
    ORDER_STREAM_MAX_DELIVERIES, then parked with its units back. The poison: 11 units on one
    line, which PostgreSQL's CHECK refuses (reserve.lua leaves quantities to the API's
    validation, which this reservation skipped)."""
    settings.ORDER_STREAM_RECLAIM_IDLE_MS = 0
    settings.ORDER_STREAM_MAX_DELIVERIES = 3
    deal = make_deal(deal_stock=20, per_user_limit=20)
    reservation = reserve_unwritten(deal, user.id, quantity=11)

    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)  # delivery 1
    stream_reclaim(deal_id=str(deal.id))  # delivery 2
    assert gate.deal_backlog(deal.id) == 1
    stream_reclaim(deal_id=str(deal.id))  # delivery 3: dead-lettered

    failed = bearer_client(user).get(f"/orders/{reservation.order_id}").json()
    assert (failed["status"], failed["failure_reason"]) == (
        "failed",
        "WRITE_FAILED: the order could not be recorded.",
    )
    assert not Order.objects.exists()
    assert gate.deal_backlog(deal.id) == 0
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=20, users={})


def test_units_postgresql_does_not_have_fail_at_once_and_rebuild_the_gate(settings):
    """The gate sold a unit PostgreSQL's counter does not have (here the counter is poisoned;
    in life, a gate restored behind PostgreSQL): no retry can help, so the reservation fails at
    the first delivery with its units back, and the gate is rebuilt from PostgreSQL."""
    settings.ORDER_PIPELINE = "redis_async"
    user = make_users(1)[0]
    shopper = bearer_client(user)
    deal = make_deal(deal_stock=5)
    accepted = shopper.post("/orders", deal_line(deal), format="json").json()
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)

    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)  # delivery 1: failed for good

    failed = shopper.get(f"/orders/{accepted['id']}").json()
    assert (failed["status"], failed["failure_reason"]) == (
        "failed",
        "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold.",
    )
    assert not Order.objects.exists()
    assert gate.deal_backlog(deal.id) == 0
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=5, users={})


def test_one_poisoned_deal_does_not_stop_the_maintenance_of_the_others(settings):
    settings.ORDER_PIPELINE = "redis"
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    users = make_users(2)
    poisoned, healthy = make_deal(), make_deal()
    reserve_directly(poisoned, [users[0].id], mode="sync")  # orphaned by a "dead" web process
    healthy_order = reserve_directly(healthy, [users[1].id], mode="sync")[0]
    Deal.objects.filter(pk=poisoned.pk).update(remaining_stock=0)  # its write will be refused

    streams_maintain()

    assert Order.objects.filter(pk=healthy_order).exists()
    assert gate.deal_backlog(healthy.id) == 0
    assert gate.deal_backlog(poisoned.id) == 0
    assert dead_letter_count(poisoned.id) == 1  # refused for good: parked as failed, not dropped


def test_a_retry_after_the_deal_state_is_lost_returns_the_written_order(settings):
    settings.ORDER_PIPELINE = "redis_async"
    shopper = bearer_client(make_users(1)[0])
    deal = make_deal(deal_stock=5, per_user_limit=2)
    key = {"HTTP_IDEMPOTENCY_KEY": "before-the-flush"}
    first = shopper.post("/orders", deal_line(deal), format="json", **key).json()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    forget_counters(deal.id)

    retry = shopper.post("/orders", deal_line(deal), format="json", **key)

    assert retry.status_code == 201  # the written order, answered like the original
    assert retry.json()["id"] == first["id"]
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert Order.objects.count() == 1
    assert_books_balance(deal, sold=1)
