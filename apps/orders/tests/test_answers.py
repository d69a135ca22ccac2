"""Every answer is the contract's (docs/reliability.md, "What a reliability review found", case 6):
accepted work is never a 500, a retry after a failure gets a real answer, an outage is a 503 with
Retry-After. Each test fails on the code before the fix with the status named in its docstring."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from kombu.exceptions import OperationalError as BrokerError

from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis
from apps.core.tests.redis_server import free_port
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.tests.gate_faults import forget_state
from apps.orders.models import Order
from apps.orders.services import db_pipelines, redis_pipelines
from apps.orders.services.drain import pending_sweep, stream_drain
from apps.orders.tests.concurrency import start_purchases, wait_for_lock_waiters
from apps.orders.tests.helpers import deal_line, make_deal, reserve_unwritten
from conftest import assert_error

pytestmark = pytest.mark.django_db


def test_a_broker_error_after_the_reservation_still_answers_202(
    shopper_client, settings, monkeypatch
):
    """Before: 500 for a purchase that was accepted and would be written."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)

    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to the broker")

    monkeypatch.setattr(redis_pipelines.drain_deal_stream_task, "delay", broker_down)

    response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert response.status_code == 202
    assert gate.drain_flag_take(deal.id)  # given back: the beat's next run starts a writer
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert Order.objects.get(pk=response.json()["id"]).status == "confirmed"


def test_a_retry_after_a_failed_write_is_a_new_purchase(shopper_client, settings):
    """Before: the key kept pointing at an order that would never exist, so every retry with it
    answered 503 "being written" until the deal ended."""
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=3)
    headers = {"HTTP_IDEMPOTENCY_KEY": "retry-me"}
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)  # PostgreSQL refuses the row

    failed = shopper_client.post("/orders", deal_line(deal), format="json", **headers)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=3)  # the cause is gone
    retried = shopper_client.post("/orders", deal_line(deal), format="json", **headers)

    assert failed.status_code == 503
    assert retried.status_code == 201
    assert Order.objects.get().id == uuid.UUID(retried.json()["id"])
    assert gate.deal_counters(deal.id).remaining == 2


@pytest.mark.single_gate_server
def test_reading_an_order_while_redis_is_down_answers_503(shopper_client, settings):
    """Before: 500. An order not in PostgreSQL may be an accepted one Redis holds: never 404,
    never a traceback, while Redis can't say."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        response = shopper_client.get(f"/orders/{uuid.uuid4()}")
    finally:
        get_redis.cache_clear()

    assert response.status_code == 503
    assert response.json()["error"] == "SERVICE_UNAVAILABLE"
    assert response["Retry-After"] == "1"


def test_a_failed_order_says_why_without_the_database_s_words(settings, user):
    """Before: failure_reason was the exception text, naming tables and constraints (here: a
    row PostgreSQL's CHECK refuses, 11 units on one line; reserve.lua leaves quantities to the
    API's validation, which this reservation skipped)."""
    settings.ORDER_STREAM_MAX_DELIVERIES = 1
    deal = make_deal(deal_stock=20, per_user_limit=20)
    reservation = reserve_unwritten(deal, user.id, quantity=11)

    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    state, parked = gate.reservation_lookup(reservation.order_id)
    assert (state, parked.failure_reason) == (
        "failed",
        "WRITE_FAILED: the order could not be recorded.",
    )
    assert gate.deal_counters(deal.id).remaining == 20


def test_cancelling_a_pending_order_the_writer_refuses_is_a_refusal_not_500(
    shopper_client, settings
):
    """Cancelling an async order not written yet writes it first. Before: when PostgreSQL
    refused that write (here its counter has no unit left), the error escaped as a 500 and the
    reservation stayed pending. Now it is parked as `failed` with its unit back, and the cancel
    is refused for that status."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    order = shopper_client.post("/orders", deal_line(deal), format="json").json()
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)  # PostgreSQL refuses the row

    response = shopper_client.post(f"/orders/{order['id']}/cancel", {}, format="json")

    assert_error(response, 400, "CANNOT_CANCEL", {"status": "failed"})
    failed = shopper_client.get(f"/orders/{order['id']}").json()
    assert (failed["status"], failed["failure_reason"]) == (
        "failed",
        "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold.",
    )
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    assert stream_drain(deal_id=str(deal.id), idle_exit_ms=0) == 0  # its stream copy: parked
    assert gate.deal_backlog(deal.id) == 0  # the stream copy counts until a drain has read it
    assert not Order.objects.exists()


@pytest.mark.single_gate_server
def test_cancelling_an_order_while_redis_is_down_answers_503(shopper_client, settings):
    """An order PostgreSQL does not have may be a pending one only Redis knows: a cancel can't
    say 404 while Redis can't answer, and must not be a 500."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        response = shopper_client.post(f"/orders/{uuid.uuid4()}/cancel", {}, format="json")
    finally:
        get_redis.cache_clear()

    assert_error(response, 503, "SERVICE_UNAVAILABLE", None)
    assert response["Retry-After"] == "1"


# --- a fault at an exact point of the request -----------------------------------------------


@contextmanager
def gate_killed_at(server, statement: str) -> Iterator[list[str]]:
    """SIGKILLs the gate's server when this thread's database connection is about to run the
    first statement containing `statement`: a crash at an exact point of a request, ordered by
    the app's own query (never by timing). Yields the statements it fired on (one at most)."""
    fired: list[str] = []

    def kill_first(execute, sql, params, many, context):
        if not fired and statement in sql:
            server.stop(kill=True)
            fired.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(kill_first):
        yield fired


@pytest.mark.single_gate_server
@pytest.mark.django_db(transaction=True)
def test_redis_lost_before_the_rebuild_lock_is_503(shopper_client, settings, gate_server):
    """The purchase finds the deal's state gone (NOT_LOADED), reads the deal to rebuild it, and
    Redis dies before the rebuild lock is taken. Before: the lock's RedisError was a 500."""
    settings.ORDER_PIPELINE = "redis_async"
    server = gate_server()
    deal = make_deal(deal_stock=3)
    forget_state(deal.id)

    with gate_killed_at(server, 'FROM "deals_deal"') as fired:
        response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert fired
    assert_error(response, 503, "SERVICE_UNAVAILABLE", None)
    assert response["Retry-After"] == "1"
    server.start()  # back: the next purchase rebuilds the state and is accepted
    retried = shopper_client.post("/orders", deal_line(deal), format="json")
    assert retried.status_code == 202
    assert gate.deal_counters(deal.id).remaining == 2


@pytest.mark.single_gate_server
@pytest.mark.django_db(transaction=True)
def test_redis_lost_after_the_redis_pipeline_committed_the_order_answers_it(
    shopper_client, settings, gate_server
):
    """Redis dies while the `redis` pipeline writes the order; PostgreSQL commits it, and only
    forgetting its pending copy fails. Before: that RedisError was a 500 for an order that
    exists. Now the answer is the order (201: PostgreSQL is the record); the copy left in
    `pending` is dropped by the sweep once Redis is back, and nothing is written twice."""
    settings.ORDER_PIPELINE = "redis"
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    server = gate_server()
    deal = make_deal(deal_stock=3)

    with gate_killed_at(server, "INSERT INTO orders_order") as fired:
        response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert fired
    assert response.status_code == 201
    assert Order.objects.get().id == uuid.UUID(response.json()["id"])
    server.start()
    assert gate.deal_backlog(deal.id) == 1  # the copy the request could not drop
    assert pending_sweep(deal_id=str(deal.id)) == 1  # already written: only dropped
    assert gate.deal_backlog(deal.id) == 0
    assert Order.objects.count() == 1
    deal.refresh_from_db()
    assert (deal.remaining_stock, gate.deal_counters(deal.id).remaining) == (2, 2)


@pytest.mark.single_gate_server
@pytest.mark.django_db(transaction=True)
def test_redis_lost_while_the_redis_pipeline_gives_back_a_refused_write_is_503(
    shopper_client, settings, gate_server
):
    """PostgreSQL refuses the row (its counter has no unit left) and Redis dies before the units
    go back. Before: the release's RedisError was a 500. Now 503; the reservation is still
    pending in Redis, and once Redis is back the sweep parks it: a visible `failed` order with
    its unit back."""
    settings.ORDER_PIPELINE = "redis"
    settings.ORDER_PENDING_SWEEP_AGE_MS = 0
    server = gate_server()
    deal = make_deal(deal_stock=3)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)

    with gate_killed_at(server, "INSERT INTO orders_order") as fired:
        response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert fired
    assert_error(response, 503, "SERVICE_UNAVAILABLE", None)
    assert response["Retry-After"] == "1"
    server.start()
    (order_id,) = gate.pending_snapshot(deal.id)  # still accepted, not written, not released
    assert pending_sweep(deal_id=str(deal.id)) == 0
    failed = shopper_client.get(f"/orders/{order_id}").json()
    assert (failed["status"], failed["failure_reason"]) == (
        "failed",
        "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold.",
    )
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=3, users={})
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pipeline", ["db_lock", "db_update"], indirect=True)
def test_a_database_connection_lost_mid_purchase_is_503(pipeline, monkeypatch):
    """The purchase's backend is terminated while it waits for the deal row (a failover, a
    server shutting down): an OperationalError that is not a lock timeout. Before: a 500."""
    monkeypatch.setattr(db_pipelines, "LOCK_TIMEOUT", "60s")  # the wait ends by the kill only
    deal = make_deal(deal_stock=3)
    token = token_pair_for(UserFactory()).access_token

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM deals_deal WHERE id = %s FOR UPDATE", [deal.id])
        finish = start_purchases(token, deal_line(deal), 1)
        wait_for_lock_waiters(cursor, 1)
        cursor.execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a "
            "USING (pid) WHERE NOT l.granted AND a.datname = current_database()"
        )
    (response,) = finish()

    assert_error(response, 503, "SERVICE_UNAVAILABLE", None)
    assert response.json()["message"] == "The order could not be placed; retry shortly."
    assert response["Retry-After"] == "1"
    assert not Order.objects.exists()
    deal.refresh_from_db()
    assert deal.remaining_stock == 3
