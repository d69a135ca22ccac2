"""An acknowledged purchase is durable (docs/reliability.md, "What a reliability review found", case
1: Redis losing its last second lost accepted orders): reserve.lua is followed, in the same round
trip, by WAITAOF, and no 201/202 leaves before the gate's server says the reservation is fsynced
(and on the replicas asked for).

Before: the shipped server fsynced every second and nothing waited, so a crash, a failover to a
lagging replica or a restore could forget a purchase that had been answered 202. These tests run
the gate on a server of their own (apps.core.tests.redis_server, the shipped persistence)."""

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis
from apps.deals import gate
from apps.orders.models import Order, OrderStatus
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal
from apps.orders.tests.test_concurrency import make_users
from conftest import assert_error, bearer_client

pytestmark = pytest.mark.django_db(transaction=True)

NOT_CONFIRMED = (
    "The purchase was received but could not be confirmed as stored; retry it with the same "
    "Idempotency-Key to see its order."
)


def _buy(client, deal, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/orders", deal_line(deal), format="json", **headers)


@pytest.mark.parametrize("pipeline", ["redis", "redis_async"], indirect=True)
def test_the_shipped_server_confirms_every_purchase(gate_server, pipeline, accepted_status):
    server = gate_server()
    deal = make_deal(deal_stock=3)
    clients = [bearer_client(u) for u in make_users(4)]

    codes = [_buy(c, deal).status_code for c in clients]

    assert codes == [accepted_status] * 3 + [400]
    assert get_redis().config_get("appendfsync") == {"appendfsync": "always"}
    server.stop(kill=True)  # SIGKILL right after the answers: nothing answered is lost
    server.start()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert Order.objects.filter(deal=deal, status=OrderStatus.CONFIRMED).count() == 3
    assert gate.deal_counters(deal.id).remaining == 0


def test_a_server_without_an_aof_gets_no_acknowledged_purchase(settings, gate_server):
    # given: a gate server that keeps nothing on disk
    settings.ORDER_PIPELINE = "redis_async"
    gate_server(appendonly=False)
    deal = make_deal(deal_stock=3)
    shopper, other_shopper = make_users(2)
    client = bearer_client(shopper)

    # then: readiness names the setting (to staff), and a purchase is not acknowledged
    ready = bearer_client(UserFactory(is_staff=True)).get("/health/ready")
    assert ready.json()["details"]["checks"]["redis"] == (
        "down: GateServerUnsafe: appendonly is no; the deal gate's Redis needs appendonly yes "
        "(and appendfsync always): purchases are answered only once WAITAOF confirms them on "
        "disk"
    )
    response = _buy(client, deal, key="k-1")
    assert_error(response, 503, "SERVICE_UNAVAILABLE", None)
    assert response.json()["message"] == NOT_CONFIRMED
    assert response["Retry-After"] == "1"

    # control: the same purchase with the durable acknowledgement switched off is answered
    settings.GATE_DURABLE_ACK = False
    assert _buy(bearer_client(other_shopper), deal, key="k-2").status_code == 202


def test_a_missing_replica_holds_the_answer_until_one_has_it(settings, gate_server):
    # given: the gate must have each reservation on one replica, and has none yet
    settings.ORDER_PIPELINE = "redis_async"
    settings.GATE_WAITAOF_REPLICAS = 1
    settings.GATE_WAITAOF_TIMEOUT_MS = 100
    primary = gate_server()
    deal = make_deal(deal_stock=3, per_user_limit=1)
    client = bearer_client(make_users(1)[0])

    # when: a shopper buys; the reservation is made but no replica confirms it
    first = _buy(client, deal, key="buy-once")
    assert_error(first, 503, "SERVICE_UNAVAILABLE", None)
    assert first.json()["message"] == NOT_CONFIRMED
    assert gate.deal_counters(deal.id).remaining == 2  # held, not given back: it may be answered

    # then: once a replica has caught up, the retry with the same key is that purchase, 202
    replica = gate_server()
    replica.follow(primary)
    settings.GATE_WAITAOF_TIMEOUT_MS = 5_000  # room for a loaded machine: the replica is there
    retry = _buy(client, deal, key="buy-once")
    assert retry.status_code == 202, retry.content
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    assert [(str(o.id), o.status) for o in Order.objects.filter(deal=deal)] == [
        (retry.json()["id"], OrderStatus.CONFIRMED)
    ]
