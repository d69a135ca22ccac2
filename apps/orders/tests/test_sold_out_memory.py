"""Sold out costs nothing: once a deal answered "sold out" in this process, its next
purchases are answered from memory (apps.deals.gate.sold_out) with no Redis command at all, until
units come back here (a cancel, a dead letter) or the flag's SOLD_OUT_MEMORY_SECONDS pass."""

import pytest
import redis
from prometheus_client import REGISTRY

from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.deals.gate import sold_out
from apps.orders.tests.helpers import deal_line, make_deal, reserve_unwritten
from conftest import assert_error, bearer_client

pytestmark = pytest.mark.django_db

MEMORY_ANSWERS = "flashdeals_deal_sold_out_from_memory_total"


@pytest.fixture
def own_gate(gate_server, settings) -> redis.Redis:
    """The gate on a server of this test's own, so its command counts are this test's only;
    the revoked-users copy is not re-read from it during the test."""
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 3600
    return gate_server().client()


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The memory's clock, moved by the test: `clock[0] += seconds`."""
    now = [1_000.0]
    monkeypatch.setattr(sold_out, "clock", lambda: now[0])
    return now


def commands_issued(server: redis.Redis) -> dict[str, int]:
    """Calls per command the server has executed, from its own INFO commandstats (the INFO
    calls that read them left out)."""
    stats = server.info("commandstats")
    return {name: int(s["calls"]) for name, s in stats.items() if name != "cmdstat_info"}


def buy(body: dict | None = None, *, deal=None, **headers: str):
    """A purchase by a new shopper."""
    body = body if body is not None else deal_line(deal)
    return bearer_client(UserFactory()).post("/orders", body, format="json", **headers)


def memory_answers() -> float:
    return REGISTRY.get_sample_value(MEMORY_ANSWERS) or 0.0


def test_after_a_sell_out_the_next_purchase_issues_no_redis_command(own_gate, settings):
    # given: the deal's one unit sold, and the gate has answered the next buyer "sold out"
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=1)
    assert buy(deal=deal).status_code == 202
    from_gate = buy(deal=deal)
    assert_error(from_gate, 400, "DEAL_SOLD_OUT")
    before, answered = commands_issued(own_gate), memory_answers()

    # when
    from_memory = buy(deal=deal)

    # then: the gate's own answer, word for word, and the gate's server executed nothing
    assert from_memory.status_code == 400
    assert from_memory.json() == from_gate.json()
    assert from_memory.json()["details"] == {"deal_id": str(deal.id), "reason": "sold_out"}
    assert commands_issued(own_gate) == before
    assert memory_answers() == answered + 1
    assert gate.deal_counters(deal.id).remaining == 0


def test_the_database_pipelines_remember_a_sell_out_too(
    own_gate, settings, django_assert_num_queries
):
    settings.ORDER_PIPELINE = "db_update"
    deal = make_deal(deal_stock=1)
    assert buy(deal=deal).status_code == 201
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")  # decided by PostgreSQL
    shopper = bearer_client(UserFactory())
    before = commands_issued(own_gate)

    with django_assert_num_queries(0):
        response = shopper.post("/orders", deal_line(deal), format="json")

    assert_error(response, 400, "DEAL_SOLD_OUT", {"deal_id": str(deal.id), "reason": "sold_out"})
    assert commands_issued(own_gate) == before


def test_a_keyed_retry_of_an_accepted_purchase_still_asks_the_gate(settings):
    # A shopper whose purchase was accepted before the sell-out retries it with its key (the
    # answer was lost): the gate answers with their order, never "sold out".
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=1)
    shopper = bearer_client(UserFactory())
    first = shopper.post("/orders", deal_line(deal), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")  # remembered from here on

    retry = shopper.post("/orders", deal_line(deal), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert retry.status_code == 202
    assert retry.json()["id"] == first.json()["id"]


def test_a_keyed_purchase_by_a_shopper_who_never_bought_is_answered_from_memory(own_gate, settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=1)
    assert buy(deal=deal, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 202
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")  # remembered, with who bought by key
    before, answered = commands_issued(own_gate), memory_answers()

    assert_error(buy(deal=deal, HTTP_IDEMPOTENCY_KEY="k-2"), 400, "DEAL_SOLD_OUT")

    assert commands_issued(own_gate) == before
    assert memory_answers() == answered + 1


def test_past_the_keyed_purchases_it_reads_every_keyed_purchase_asks_the_gate(settings):
    settings.ORDER_PIPELINE = "redis_async"
    settings.SOLD_OUT_MEMORY_MAX_KEYED = 0
    deal = make_deal(deal_stock=1)
    assert buy(deal=deal, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 202
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")
    answered = memory_answers()

    assert_error(buy(deal=deal, HTTP_IDEMPOTENCY_KEY="k-2"), 400, "DEAL_SOLD_OUT")  # the gate's
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")  # from memory

    assert memory_answers() == answered + 1


def test_another_product_under_the_deal_is_not_answered_from_memory(settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=1)
    assert buy(deal=deal).status_code == 202
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")
    wrong = deal_line(deal)
    wrong["items"][0]["product_id"] = str(make_deal().product_id)

    assert_error(buy(wrong), 400, "INVALID_DEAL")


def test_a_cancel_clears_the_memory(settings, django_capture_on_commit_callbacks):
    # given: sold out, remembered
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=1)
    owner = bearer_client(UserFactory())
    order = owner.post("/orders", deal_line(deal), format="json").json()
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")
    assert gate.sold_out_known(deal.id, deal.product_id)

    # when: the owner cancels; the unit goes back to the gate on commit
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(f"/orders/{order['id']}/cancel", {}, format="json").status_code == 200

    # then: this process asks the gate again, and the unit sells
    assert buy(deal=deal).status_code == 201
    assert gate.deal_counters(deal.id).remaining == 0


def test_a_dead_letter_clears_the_memory(settings):
    # given: the one unit held by a reservation that will never be written; sold out, remembered
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=1)
    reservation = reserve_unwritten(deal, UserFactory().pk)
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")

    # when: the writer parks it, which gives its unit back
    gate.dead_letter_park(deal.id, reservation, reason="test")

    # then
    assert buy(deal=deal).status_code == 202


def test_the_memory_expires_by_itself(settings, clock):
    # given: a unit came back in another process, which can't tell this one: its flag is stale
    settings.ORDER_PIPELINE = "redis_async"
    settings.SOLD_OUT_MEMORY_SECONDS = 2.0
    deal = make_deal(deal_stock=1)
    reservation = reserve_unwritten(deal, UserFactory().pk)
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")
    gate.dead_letter_park(deal.id, reservation, reason="test")  # clears this process's flag...
    gate.sold_out_remember(deal.id, deal.product_id)  # ...so set it again, as elsewhere it stays
    assert gate.deal_counters(deal.id).remaining == 1

    # when / then: "sold out" until the flag's seconds have passed, not a moment longer
    clock[0] += 1.5
    assert_error(buy(deal=deal), 400, "DEAL_SOLD_OUT")
    clock[0] += 0.5
    assert buy(deal=deal).status_code == 202


def test_zero_seconds_turns_the_memory_off(settings):
    settings.SOLD_OUT_MEMORY_SECONDS = 0

    gate.sold_out_remember("d", "p")

    assert gate.sold_out_known("d", "p") is False
