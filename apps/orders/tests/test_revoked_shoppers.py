"""A deactivated or deleted shopper is refused with 401 before any reservation, in every
pipeline and for regular orders (apps.accounts.revocation). Behind it, for a token that gets
through in the second before a revocation reaches every process, PostgreSQL is the backstop:
the synchronous paths answer 401 (never a 500), and the async writer ends the order `failed`
with a stable code and its units returned."""

import uuid

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.deals.tests.gate_faults import is_parked
from apps.orders.errors import CannotReplay
from apps.orders.models import Order
from apps.orders.services.dead_letters import dead_letter_discard
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal, make_product, reserve_unwritten
from conftest import bearer_client

pytestmark = pytest.mark.django_db

REVOKED = {
    "error": "INVALID_TOKEN",
    "message": "The token was revoked: its user signed out, or was deactivated or deleted.",
    "details": None,
}
ACCOUNT_DELETED = "ACCOUNT_DELETED: the shopper's account was deleted before the order was made."
NOTHING_ANSWERED = {
    "accepted": 0,
    "rejected": {"sold_out": 0, "limit": 0, "not_active": 0, "not_admitted": 0,
                     "rate_limited": 0,
                 "unavailable": 0, "other": 0},
}  # fmt: skip


def regular_line(product, quantity: int = 1) -> dict:
    return {"items": [{"product_id": str(product.id), "quantity": quantity}]}


def deactivate(user) -> None:
    user.is_active = False
    user.save()


def assert_gate_untouched(deal) -> None:
    """No reservation, no answer counted: the request never reached the gate."""
    assert gate.deal_counters(deal.id) == gate.Counters(remaining=10, users={})
    assert gate.deal_backlog(deal.id) == 0
    counts = gate.deal_live_counts(deal.id, now=0, seconds=1, dead_limit=1)
    assert counts["outcomes"] == NOTHING_ANSWERED
    deal.refresh_from_db()
    assert deal.remaining_stock == 10


@pytest.mark.parametrize("end", ["deactivated", "deleted"])
def test_a_revoked_shopper_is_refused_before_any_reservation(user, pipeline, end):
    deal = make_deal()
    shopper = bearer_client(user)
    if end == "deactivated":
        deactivate(user)
    else:
        user.delete()

    response = shopper.post(
        "/orders", deal_line(deal), format="json", HTTP_IDEMPOTENCY_KEY="after-the-end"
    )

    assert response.status_code == 401
    assert response.json() == REVOKED
    assert_gate_untouched(deal)
    assert Order.objects.count() == 0


@pytest.mark.parametrize("end", ["deactivated", "deleted"])
def test_a_revoked_shoppers_regular_order_is_401(user, end):
    """Before, for a deleted shopper: 500 (the order's foreign key to its user)."""
    product = make_product(stock=5)
    shopper = bearer_client(user)
    if end == "deactivated":
        deactivate(user)
    else:
        user.delete()

    response = shopper.post("/orders", regular_line(product), format="json")

    assert response.status_code == 401
    assert response.json() == REVOKED
    product.refresh_from_db()
    assert product.stock == 5


def test_negative_control_without_the_check_a_deactivated_shopper_buys(
    user, pipeline, accepted_status, settings
):
    # given: authentication skips the revoked-users check (the test-only setting)
    settings.AUTH_UNSAFE_SKIP_REVOCATION = True
    deal = make_deal()
    shopper = bearer_client(user)
    deactivate(user)

    # when
    response = shopper.post("/orders", deal_line(deal), format="json")

    # then: the signed token alone let the deactivated shopper reserve a unit
    assert response.status_code == accepted_status
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    deal.refresh_from_db()
    assert deal.remaining_stock == 9


# --- the backstop: a token that got through, for a shopper PostgreSQL no longer has ------------


@pytest.mark.django_db(transaction=True)  # the foreign key is checked when the write commits
def test_a_deleted_shoppers_regular_order_that_gets_through_is_401_not_500(user, settings):
    settings.AUTH_UNSAFE_SKIP_REVOCATION = True  # the revocation has not reached this process
    product = make_product(stock=5)
    shopper = bearer_client(user)
    user.delete()

    response = shopper.post("/orders", regular_line(product), format="json")

    assert response.status_code == 401
    assert response.json() == REVOKED
    product.refresh_from_db()
    assert product.stock == 5
    assert Order.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # the foreign key is checked when the write commits
def test_a_deleted_shoppers_deal_order_that_gets_through_never_sells_a_unit(
    user, pipeline, settings
):
    settings.AUTH_UNSAFE_SKIP_REVOCATION = True  # the revocation has not reached this process
    deal = make_deal()
    shopper = bearer_client(user)
    user.delete()

    response = shopper.post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    if pipeline == "redis_async":  # answered before PostgreSQL could say no
        assert response.status_code == 202
        state, failed = gate.reservation_lookup(response.json()["id"])
        assert (state, failed.failure_reason) == ("failed", ACCOUNT_DELETED)
    else:
        assert response.status_code == 401
        assert response.json() == REVOKED
    if pipeline in gate.REDIS_PIPELINES:
        assert gate.deal_counters(deal.id) == gate.Counters(remaining=10, users={})
        assert gate.deal_backlog(deal.id) == 0
    deal.refresh_from_db()
    assert deal.remaining_stock == 10
    assert Order.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_writer_fails_a_reservation_whose_shopper_was_deleted_at_once(user, settings):
    """A reservation accepted, then its shopper deleted before the writer ran: the first
    delivery parks it as `failed` with a stable code (retrying can't bring the shopper back),
    its unit goes back, and the rest of the batch is written."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    other = bearer_client(UserFactory())
    reservation = reserve_unwritten(deal, user.id)
    kept = other.post("/orders", deal_line(deal), format="json").json()
    user.delete()

    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    state, parked = gate.reservation_lookup(reservation.order_id)
    assert (state, parked.failure_reason) == ("failed", ACCOUNT_DELETED)
    assert "accounts_user" not in parked.failure_reason
    assert [str(order_id) for order_id in Order.objects.values_list("id", flat=True)] == [
        kept["id"]
    ]
    assert gate.deal_counters(deal.id).remaining == 2  # 3, one sold, the deleted one's back
    deal.refresh_from_db()
    assert deal.remaining_stock == 2


@pytest.mark.django_db(transaction=True)
def test_discarding_a_deleted_shoppers_dead_letter_keeps_it_parked(user, settings):
    """No failed row can reference a deleted shopper: the discard is refused with a reason and
    the dead letter stays (never dropped without a trace, never a 500)."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=3)
    reservation = reserve_unwritten(deal, user.id)
    user.delete()
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    with pytest.raises(CannotReplay) as refused:
        dead_letter_discard(deal_id=deal.id, order_id=uuid.UUID(reservation.order_id))

    assert refused.value.details == {"order_id": reservation.order_id, "reason": ACCOUNT_DELETED}
    assert is_parked(deal.id, reservation.order_id)
    assert gate.deal_counters(deal.id).remaining == 3
