"""Regular orders under real concurrency (apps/orders/services/regular.py): many multi-line
orders over the same products, each listing its lines in another order, never oversell and
never deadlock; and the same race with the statement's protection switched off (no row lock,
the stock written from what the statement read) oversells, so the test can tell."""

import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product
from apps.orders.models import Order, OrderItem
from apps.orders.services import regular
from apps.orders.tests.concurrency import answer_of, race_purchases, wait_for_lock_waiters
from apps.orders.tests.helpers import make_product

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RACERS = 12
STOCK = 10
EACH = 2  # units of every product in every order: STOCK // EACH = 5 orders can be served

# The protection, and what the negative control puts in its place.
LOCK = "FOR NO KEY UPDATE OF p"
TAKE = "SET stock = p.stock - l.quantity"
UNSAFE_TAKE = "SET stock = l.stock - l.quantity"  # the stock as the statement read it


def race_three_line_orders() -> tuple[list[Product], Counter]:
    """RACERS shoppers each order EACH units of the same three products, their lines in six
    different orders. The test holds the first product's row until every request waits for a
    lock (so all are in flight at once, whatever the scheduling), then lets them go."""
    products = [make_product(stock=STOCK, price=1_000) for _ in range(3)]
    permutations = [(0, 1, 2), (2, 1, 0), (1, 0, 2), (2, 0, 1), (0, 2, 1), (1, 2, 0)]
    attempts = []
    for i in range(RACERS):
        body = {
            "items": [
                {"product_id": str(products[j].id), "quantity": EACH}
                for j in permutations[i % len(permutations)]
            ]
        }
        attempts.append((token_pair_for(UserFactory()).access_token, body, {}))
    responses: list = []
    racing = threading.Thread(target=lambda: responses.extend(race_purchases(attempts)))
    with transaction.atomic(), connection.cursor() as cursor:
        first = min(p.id for p in products)
        cursor.execute("SELECT id FROM catalog_product WHERE id = %s FOR UPDATE", [first])
        racing.start()
        wait_for_lock_waiters(cursor, RACERS)
    racing.join(timeout=180)
    assert not racing.is_alive() and len(responses) == RACERS
    return products, Counter(answer_of(r) for r in responses)


def units_sold(product: Product) -> int:
    return OrderItem.objects.filter(product=product).aggregate(n=Sum("quantity"))["n"] or 0


def test_concurrent_multi_line_orders_never_oversell_nor_deadlock():
    products, answers = race_three_line_orders()

    served = STOCK // EACH
    # every other answer is the contract's refusal: no 500 from a deadlock or a constraint
    assert answers == {201: served, "400 INSUFFICIENT_STOCK": RACERS - served}
    assert Order.objects.count() == served
    assert all(order.items.count() == 3 for order in Order.objects.all())  # all or nothing
    for product in products:
        product.refresh_from_db()
        assert (product.stock, units_sold(product)) == (0, STOCK)


def test_negative_control_without_the_lock_the_same_race_oversells(monkeypatch):
    assert LOCK in regular.PLACE_SQL and TAKE in regular.PLACE_SQL
    unsafe = regular.PLACE_SQL.replace(LOCK, "").replace(TAKE, UNSAFE_TAKE)
    monkeypatch.setattr(regular, "PLACE_SQL", unsafe)

    products, answers = race_three_line_orders()

    # every racer read the stock before any wrote it: all were "served", each over the last
    assert answers == {201: RACERS}
    for product in products:
        product.refresh_from_db()
        assert (product.stock, units_sold(product)) == (STOCK - EACH, RACERS * EACH)
