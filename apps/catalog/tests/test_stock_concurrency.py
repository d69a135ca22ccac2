"""Concurrent stock PATCHes from several processes: exact arithmetic, never below zero. The
negative control does read-modify-write in Python and loses updates."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_for
from apps.catalog.models import Product
from apps.catalog.tests.concurrency import run_together
from apps.catalog.tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _patch_stock(barrier, token: str, product_id: str, delta: int) -> tuple[int, str | None]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    barrier.wait()
    response = client.patch(f"/products/{product_id}/stock", {"delta": delta}, format="json")
    return response.status_code, response.json().get("error")


def _read_modify_write(barrier, product_id: str, delta: int) -> None:
    barrier.wait()
    stock = Product.objects.get(pk=product_id).stock  # everyone reads the same value...
    barrier.wait()
    if stock + delta >= 0:  # ...checks it, and writes its own arithmetic: lost updates
        Product.objects.filter(pk=product_id).update(stock=stock + delta)


def test_concurrent_takes_stop_exactly_at_zero(staff_user):
    product = ProductFactory(stock=50)
    token = token_pair_for(staff_user).access_token

    outcomes = run_together(_patch_stock, [(token, str(product.id), -10)] * 8)

    assert sorted(outcomes) == [(200, None)] * 5 + [(400, "INSUFFICIENT_STOCK")] * 3
    assert Product.objects.get(pk=product.pk).stock == 0


def test_concurrent_mixed_deltas_end_at_the_exact_sum(staff_user):
    product = ProductFactory(stock=100)
    token = token_pair_for(staff_user).access_token
    deltas = [7, -3] * 5

    outcomes = run_together(_patch_stock, [(token, str(product.id), d) for d in deltas])

    assert outcomes == [(200, None)] * len(deltas)
    assert Product.objects.get(pk=product.pk).stock == 100 + sum(deltas)


def test_negative_control_read_modify_write_loses_updates():
    product = ProductFactory(stock=50)

    run_together(_read_modify_write, [(str(product.id), -10)] * 8)

    # Eight takes of 10 "succeeded" against 50 units, yet only one is reflected: the race the
    # conditional UPDATE prevents.
    assert Product.objects.get(pk=product.pk).stock == 40
