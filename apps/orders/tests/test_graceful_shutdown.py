"""Graceful shutdown of real nodes: SIGTERM to a web node (gunicorn) while purchases are in
flight, and to a Celery worker while its batch writer holds an unwritten batch. In both the
work in hand is held at a PostgreSQL row lock the test owns, so the signal lands mid-request and
mid-batch by construction (pg_locks shows the waiters), not by timing.

A SIGKILLed worker is test_faults.py::test_worker_killed_mid_batch_loses_and_duplicates_nothing:
its drain goes back to the queue, the entries it had read are re-claimed by streams_maintain's
XAUTOCLAIM."""

import http.client
import json
import threading

import pytest
from django.db import connection, transaction

from apps.accounts.services import token_pair_for
from apps.core.tests.celery_worker import CeleryWorker
from apps.core.tests.gunicorn_server import Gunicorn
from apps.deals import gate
from apps.orders.models import Order
from apps.orders.tasks import drain_deal_stream_task
from apps.orders.tests.concurrency import wait_for_lock_waiters
from apps.orders.tests.helpers import deal_line, make_deal, reserve_unwritten
from apps.orders.tests.test_concurrency import make_users
from apps.orders.tests.test_faults import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WEB_WORKERS = 3


def _post_order(web: Gunicorn, token: str, body: dict, answers: list) -> None:
    """One purchase over a fresh connection; records (status, body) or the exception (a reset
    or a cut-off answer) instead of the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("POST", "/orders", json.dumps(body), headers)
        response = conn.getresponse()
        answers.append((response.status, json.loads(response.read())))
    except Exception as exc:  # noqa: BLE001 - the test asserts there is none
        answers.append(exc)
    finally:
        conn.close()


def test_a_sigtermed_web_node_answers_every_purchase_in_flight_before_it_exits(settings):
    # given: a web node whose every worker is in the middle of a purchase, each waiting for the
    # deal's row lock (db_lock pipeline), which the test holds
    settings.ORDER_PIPELINE = "db_lock"
    users = make_users(WEB_WORKERS)
    deal = make_deal(deal_stock=10, per_user_limit=1)
    web = Gunicorn(workers=WEB_WORKERS).start()
    answers: list = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM deals_deal WHERE id = %s FOR UPDATE", [deal.id])
            buyers = [
                threading.Thread(
                    target=_post_order,
                    args=(web, token_pair_for(user).access_token, deal_line(deal), answers),
                )
                for user in users
            ]
            for buyer in buyers:
                buyer.start()
            wait_for_lock_waiters(cursor, WEB_WORKERS)

            # when: the node is told to stop, and has begun to (its master closed the listener
            # and signalled the workers)
            web.terminate()
            wait_for(lambda: not web.master_listens(), timeout=5, every=0.01, what="the stop")
            assert web.process.poll() is None  # waiting for its workers' requests
        # (the lock is released here: the purchases go on)
        for buyer in buyers:
            buyer.join(timeout=30)

        # then: every purchase in flight got its whole answer, and was placed
        assert [a if isinstance(a, Exception) else a[0] for a in answers] == [201] * WEB_WORKERS
        assert sorted(body["id"] for _, body in answers) == sorted(
            str(i) for i in Order.objects.values_list("id", flat=True)
        )
        # ... and the node exited cleanly, within gunicorn's graceful_timeout (10 s)
        assert web.process.wait(timeout=10) == 0
    finally:
        web.stop()
    deal.refresh_from_db()
    assert deal.remaining_stock == 10 - WEB_WORKERS


def test_a_sigtermed_worker_writes_the_batch_in_hand_before_it_exits(settings):
    # given: 20 accepted purchases in a deal's stream, and a worker whose writer has read them
    # all as one batch and waits to write it (for the deal's row lock, which the test holds)
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=20)
    accepted = [reserve_unwritten(deal, user.id).order_id for user in make_users(20)]

    worker = CeleryWorker(name="warm").start()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM deals_deal WHERE id = %s FOR UPDATE", [deal.id])
            drain_deal_stream_task.delay(str(deal.id))
            wait_for_lock_waiters(cursor, 1)
            assert (gate.stream_undelivered(deal.id), gate.deal_backlog(deal.id)) == (0, 20)

            # when: the worker is told to stop, and has begun to (it no longer consumes)
            worker.shut_down_warm()
            wait_for(lambda: not worker.answers_ping(), timeout=10, what="the warm shutdown")
            assert worker.process.poll() is None  # waiting for its task
        # (the lock is released here: the batch goes on)

        # then: the worker exits cleanly once the batch is written and acknowledged
        assert worker.process.wait(timeout=30) == 0
    finally:
        worker.kill()
    assert sorted(str(i) for i in Order.objects.values_list("id", flat=True)) == sorted(accepted)
    assert (gate.stream_undelivered(deal.id), gate.deal_backlog(deal.id)) == (0, 0)
