"""Concurrent deal creation on one product never carves more than its stock. The negative
control carves by read-modify-write and oversells the product."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_for
from apps.catalog.models import Product
from apps.catalog.tests.concurrency import run_together
from apps.catalog.tests.factories import ProductFactory
from apps.deals.models import Deal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _create_deal(barrier, token: str, payload: dict) -> tuple[int, str | None]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    barrier.wait()
    response = client.post("/products/deals", payload, format="json")
    return response.status_code, response.json().get("error")


def _carve_read_modify_write(barrier, product_id: str, quota: int) -> bool:
    barrier.wait()
    product = Product.objects.get(pk=product_id)
    barrier.wait()
    if product.stock < quota:
        return False
    now = timezone.now()
    Deal.objects.create(
        product=product,
        deal_price=1,
        deal_stock=quota,
        remaining_stock=quota,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        published_at=now,
    )
    Product.objects.filter(pk=product_id).update(stock=product.stock - quota)
    return True


def test_concurrent_deal_creation_never_carves_more_than_the_stock(staff_user):
    product = ProductFactory(price=10_000, stock=100)
    token = token_pair_for(staff_user).access_token
    now = timezone.now()
    payload = {
        "product_id": str(product.id),
        "deal_price": 5_000,
        "deal_stock": 30,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }

    outcomes = run_together(_create_deal, [(token, payload)] * 8)

    assert sorted(outcomes) == [(201, None)] * 3 + [(400, "INSUFFICIENT_STOCK")] * 5
    assert Product.objects.get(pk=product.pk).stock == 10
    assert sum(Deal.objects.values_list("deal_stock", flat=True)) == 90


def test_negative_control_read_modify_write_carving_oversells():
    product = ProductFactory(price=10_000, stock=100)

    created = run_together(_carve_read_modify_write, [(str(product.id), 30)] * 8)

    assert all(created)
    assert sum(Deal.objects.values_list("deal_stock", flat=True)) == 240  # > 100 in stock
