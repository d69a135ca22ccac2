"""ORDER_PIPELINE switched during a live deal (a rolling deploy: some web processes on a database
pipeline, others on a Redis one, and back), and reconciliation under the database pipelines
(docs/reliability.md, "What a reliability review found", case 7). The database pipelines never touch
the gate, and the gate never reads PostgreSQL on a purchase: across a switch each side decides from
what it knows, and PostgreSQL, where the writer checks the per-user limit and the deal's counter in
its own transaction, is what keeps the invariants. Before: the writer checked only the counter, so a
shopper who bought through db_lock bought again through redis_async, and PostgreSQL ended with 2
units for a limit of 1; and every reconcile under db_lock "repaired" the gate it does not use."""

import pytest
from django.db.models import Sum

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import StockMovement, StockMovementKind
from apps.deals import gate
from apps.orders.models import HOLDING, OrderItem
from apps.orders.services.drain import stream_drain
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.concurrency import answer_of
from apps.orders.tests.conftest import ACCEPTED_STATUS, PIPELINES
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db

LIMIT_FAILED = "DEAL_LIMIT_EXCEEDED: it would exceed the deal's per-shopper limit."
COUNTER_FAILED = "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold."
DB_PIPELINES = ("db_lock", "db_update")


def buy(client, deal, pipeline: str, settings) -> int | str:
    """One purchase through `pipeline` (the web process that took it runs that one), written by
    the async writer at once: its answer as answer_of gives it, and for a 202 that did not end
    confirmed, how it ended ("202 failed <failure_reason>")."""
    settings.ORDER_PIPELINE = pipeline
    response = client.post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    answer = answer_of(response)
    if answer == 202:  # accepted by the gate: how did it end?
        order = client.get(f"/orders/{response.json()['id']}").json()
        if order["status"] != "confirmed":
            return f"202 {order['status']} {order['failure_reason']}"
    return answer


def units_held(deal, user) -> int:
    items = OrderItem.objects.filter(deal=deal, order__user=user, order__status__in=HOLDING)
    return items.aggregate(n=Sum("quantity"))["n"] or 0


SWITCHES = [(a, b) for a in PIPELINES for b in PIPELINES if a != b]


@pytest.mark.parametrize(("before", "after"), SWITCHES, ids=[f"{a}-{b}" for a, b in SWITCHES])
def test_a_switch_of_pipeline_mid_deal_keeps_the_per_user_limit(before, after, settings, user):
    # given: a shopper with a limit of one bought through the pipeline deployed before
    deal = make_deal(deal_stock=10, per_user_limit=1)
    shopper = bearer_client(user)
    first = buy(shopper, deal, before, settings)

    # when: they buy again through the pipeline deployed after, then through the first again
    # (the deploy rolled back, or another web process still runs it)
    second = buy(shopper, deal, after, settings)
    third = buy(shopper, deal, before, settings)

    # then: one unit, whatever took which purchase. Only a gate that never saw the first one
    # (it was sold in PostgreSQL alone) accepts the second: redis_async then answers 202 and
    # the writer fails it with its unit back; `redis` writes in the request and refuses it.
    # Either refusal proves the gate wrong, and it is rebuilt from PostgreSQL there and then.
    assert first == ACCEPTED_STATUS[before]
    if before in DB_PIPELINES and after == "redis_async":
        assert second == f"202 failed {LIMIT_FAILED}"
    else:
        assert second == "400 DEAL_LIMIT_EXCEEDED"
    if after in gate.REDIS_PIPELINES:  # a refused write proved the gate wrong: rebuilt at once
        assert gate.deal_counters(deal.id) == gate.Counters(remaining=9, users={str(user.id): 1})
    assert third == "400 DEAL_LIMIT_EXCEEDED"
    assert units_held(deal, user) == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == 9
    assert gate.deal_backlog(deal.id) == 0

    # ... and reconciliation under a Redis pipeline leaves the gate with PostgreSQL's numbers
    # (setting them, when only the database pipelines sold: nothing else told the gate)
    settings.ORDER_PIPELINE = "redis_async"
    deal_reconcile(deal_id=deal.id)
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=9, users={str(user.id): 1})
    assert deal_reconcile(deal_id=deal.id).ok


@pytest.mark.parametrize("database", DB_PIPELINES)
def test_a_reservation_unwritten_at_the_switch_cannot_push_the_shopper_over(
    database, settings, user
):
    """The async writer has not written the shopper's 202 yet when a web process on a database
    pipeline takes their next purchase: PostgreSQL does not see the reservation, so it sells the
    unit (201). The writer then finds the shopper at the limit and fails the reservation, its
    unit back: still one unit, and the 202 ends as a visible `failed` order, never lost."""
    deal = make_deal(deal_stock=10, per_user_limit=1)
    shopper = bearer_client(user)
    settings.ORDER_PIPELINE = "redis_async"
    accepted = shopper.post("/orders", deal_line(deal), format="json")  # not written yet

    settings.ORDER_PIPELINE = database
    sold = shopper.post("/orders", deal_line(deal), format="json")
    settings.ORDER_PIPELINE = "redis_async"
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert (accepted.status_code, sold.status_code) == (202, 201)
    failed = shopper.get(f"/orders/{accepted.json()['id']}").json()
    assert (failed["status"], failed["failure_reason"]) == ("failed", LIMIT_FAILED)
    assert units_held(deal, user) == 1
    deal.refresh_from_db()
    assert deal.remaining_stock == 9
    assert gate.deal_backlog(deal.id) == 0


@pytest.mark.parametrize(
    ("database", "gated", "refused"),
    [
        ("db_lock", "redis_async", f"202 failed {COUNTER_FAILED}"),
        ("db_update", "redis", "503 SERVICE_UNAVAILABLE"),
    ],
    ids=["db_lock-redis_async", "db_update-redis"],
)
def test_a_switch_of_pipeline_mid_deal_never_oversells(database, gated, refused, settings):
    # given: the last unit sold through a database pipeline; the gate never heard of it (and
    # the writer parks a refused reservation at its first delivery, not its third)
    settings.ORDER_STREAM_MAX_DELIVERIES = 1
    deal = make_deal(deal_stock=1, per_user_limit=1)
    first, second, third = (bearer_client(UserFactory()) for _ in range(3))
    assert buy(first, deal, database, settings) == 201

    # when: the next shopper buys through a Redis pipeline, which still sees one unit
    answer = buy(second, deal, gated, settings)

    # then: PostgreSQL's conditional decrement refuses it, which proves the gate wrong: its
    # counters are rebuilt from PostgreSQL at once, and the next shopper is told it sold out
    assert answer == refused
    deal.refresh_from_db()
    assert deal.remaining_stock == 0
    assert OrderItem.objects.filter(deal=deal, order__status__in=HOLDING).count() == 1
    assert gate.deal_backlog(deal.id) == 0
    assert gate.deal_counters(deal.id).remaining == 0
    assert buy(third, deal, gated, settings) == "400 DEAL_SOLD_OUT"
    assert deal_reconcile(deal_id=deal.id).ok


@pytest.mark.parametrize("database", DB_PIPELINES)
def test_reconcile_under_a_database_pipeline_leaves_the_gate_alone(database, settings):
    """The gate is loaded for every published deal (a switch to a Redis pipeline needs it), but
    a database pipeline never moves its counters: they are not drift. Before: every reconcile
    with sales found "redis" drift, rewrote the counters and recorded a RECONCILE_REPAIR."""
    settings.ORDER_PIPELINE = database
    deal = make_deal(deal_stock=10, per_user_limit=2)
    for _ in range(3):
        bought = bearer_client(UserFactory()).post("/orders", deal_line(deal, 2), format="json")
        assert bought.status_code == 201

    first, second = deal_reconcile(deal_id=deal.id), deal_reconcile(deal_id=deal.id)

    assert (first.ok, first.findings, first.repairs) == (True, [], [])
    assert (second.ok, second.findings, second.repairs) == (True, [], [])
    assert (first.sold_units, first.db_remaining, first.redis_remaining) == (6, 4, None)
    assert not StockMovement.objects.filter(kind=StockMovementKind.RECONCILE_REPAIR).exists()
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=10, users={})
