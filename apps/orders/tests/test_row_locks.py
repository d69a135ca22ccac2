"""Row locks through the one helper (apps.core.locks.locked): a deal purchase locks the deal row
and never its product, which regular orders and stock edits update at the same time."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import Product
from apps.orders.models import Order
from apps.orders.tests.helpers import deal_line, make_deal

pytestmark = pytest.mark.django_db(transaction=True)


def test_db_lock_takes_only_the_deal_row_lock(shopper_client, settings):
    settings.ORDER_PIPELINE = "db_lock"
    deal = make_deal(load=False)

    with CaptureQueriesContext(connection) as queries:
        response = shopper_client.post("/orders", deal_line(deal), format="json")

    assert response.status_code == 201
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locking) == 1
    assert locking[0].endswith('ORDER BY "deals_deal"."id" ASC LIMIT 1 FOR UPDATE OF "deals_deal"')


def test_a_locked_product_does_not_block_a_db_lock_purchase(shopper_client, settings):
    """A stock edit or a regular order holds the product row (UPDATE: a no-key-update lock):
    the deal purchase still goes through at once. (Its order item's foreign key only needs a
    key-share lock on the product, which does not conflict; a FOR UPDATE on the joined product
    did, and the purchase waited out its lock timeout and answered 503.)"""
    settings.ORDER_PIPELINE = "db_lock"
    deal = make_deal(load=False)
    held, release = threading.Event(), threading.Event()

    def hold_product() -> None:
        try:
            with transaction.atomic():
                Product.objects.filter(pk=deal.product_id).update(stock=F("stock") + 1)
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_product)
    holder.start()
    try:
        assert held.wait(timeout=10)
        response = shopper_client.post("/orders", deal_line(deal), format="json")
    finally:
        release.set()
        holder.join()

    assert response.status_code == 201
    assert Order.objects.get().status == "confirmed"
