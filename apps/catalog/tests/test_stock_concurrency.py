"""Concurrent stock PATCHes from several processes: exact arithmetic, never below zero. The
negative control runs the same race with the app's conditional UPDATE switched off (the test-only
setting CATALOG_STOCK_NAIVE_WRITES) and observes the lost updates it prevents."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_for
from apps.catalog.models import Product, StockMovement
from apps.catalog.tests.concurrency import process_barrier, run_together
from apps.catalog.tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RACERS = 8


def _patch_stock(barrier, token: str, product_id: str, delta: int) -> tuple[int, str | int]:
    """One staff PATCH; returns its status and either its error code or the stock it reports."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    barrier.wait()
    response = client.patch(f"/products/{product_id}/stock", {"delta": delta}, format="json")
    body = response.json()
    return response.status_code, body.get("error", body.get("stock"))


def _recorded_deltas(product: Product) -> list[int]:
    return sorted(StockMovement.objects.filter(product=product).values_list("delta", flat=True))


def _take_ten_each(product: Product, token: str) -> list[tuple[int, str | int]]:
    """RACERS concurrent takes of 10 units through the API, as a staff user."""
    return run_together(_patch_stock, [(token, str(product.id), -10)] * RACERS)


def test_concurrent_takes_stop_exactly_at_zero(staff_user):
    product = ProductFactory(stock=50)
    token = token_pair_for(staff_user).access_token

    outcomes = _take_ten_each(product, token)

    taken = [(200, left) for left in (0, 10, 20, 30, 40)]  # each saw the stock after its take
    assert sorted(outcomes) == taken + [(400, "INSUFFICIENT_STOCK")] * 3
    assert Product.objects.get(pk=product.pk).stock == 0
    assert _recorded_deltas(product) == [-10] * 5  # the refused takes left no trail


def test_concurrent_mixed_deltas_end_at_the_exact_sum(staff_user):
    product = ProductFactory(stock=100)
    token = token_pair_for(staff_user).access_token
    deltas = [7, -3] * 5

    outcomes = run_together(_patch_stock, [(token, str(product.id), d) for d in deltas])

    assert [status for status, _ in outcomes] == [200] * len(deltas)
    assert Product.objects.get(pk=product.pk).stock == 120  # 100 + 5 * (7 - 3)
    assert _recorded_deltas(product) == sorted(deltas)


def test_negative_control_without_the_conditional_update_takes_are_lost(staff_user, settings):
    # given: the same race with product_stock_adjust's conditional UPDATE switched off, and the
    # naive path holding every racer between its read and its write until all have read
    settings.CATALOG_STOCK_NAIVE_WRITES = True
    settings.CATALOG_STOCK_NAIVE_AFTER_READ = process_barrier(RACERS).wait  # before the fork
    product = ProductFactory(stock=50)
    token = token_pair_for(staff_user).access_token

    # when
    outcomes = _take_ten_each(product, token)

    # then: all eight takes of 10 "succeeded" against 50 units, each read 50 and wrote back 40,
    # so the stock shows a single take while the audit trail records eight: the race the
    # conditional UPDATE prevents.
    assert outcomes == [(200, 40)] * RACERS
    assert Product.objects.get(pk=product.pk).stock == 40
    assert _recorded_deltas(product) == [-10] * RACERS
