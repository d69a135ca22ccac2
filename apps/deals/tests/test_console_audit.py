"""The stock audit trail: every service that moves units records who, why and how many, in the
same transaction as the change (a refused change leaves no line)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.errors import InsufficientStock
from apps.catalog.models import Product, StockMovement
from apps.catalog.services import product_stock_adjust
from apps.deals.models import Deal
from apps.deals.services import deal_create, deal_end, deal_publish
from apps.orders.models import Order
from apps.orders.services import LineInput, OrderInput, order_cancel, order_place
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.helpers import make_deal, make_product

pytestmark = pytest.mark.django_db


def _trail(**filters) -> list[tuple]:
    rows = StockMovement.objects.filter(**filters).order_by("id")
    return list(rows.values_list("kind", "delta", "deal_delta", "actor_id"))


def test_operator_edit_in_the_admin_is_recorded_with_the_operator(operator, operator_client):
    product = make_product(price=10_000, stock=5)
    data = {"name": product.name, "price": 10_000, "category": "test", "stock_delta": -2}
    data["stock_reason"] = "two damaged in the warehouse"

    operator_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert _trail(product=product) == [("operator_edit", -2, 0, operator.pk)]


def test_refused_adjustment_leaves_no_line():
    product = make_product(stock=1)

    with pytest.raises(InsufficientStock):
        product_stock_adjust(product_id=product.pk, delta=-2)

    assert _trail(product=product) == []


@pytest.mark.django_db(transaction=True)  # ending closes the deal on commit
def test_carve_and_unsold_return_are_recorded_per_deal():
    operator = UserFactory(is_staff=True)
    product = make_product(price=10_000, stock=100)
    now = timezone.now()
    deal = deal_create(
        product_id=product.pk, deal_price=9_000, deal_stock=30, starts_at=now,
        ends_at=now + timedelta(hours=1), publish=False,
    )  # fmt: skip

    deal_publish(deal_id=deal.pk, actor_id=operator.pk)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=25)  # 5 sold
    deal_end(deal_id=deal.pk, actor_id=operator.pk)

    assert _trail(deal_id=deal.pk) == [
        ("deal_carve", -30, 30, operator.pk),
        ("deal_return", 25, -25, operator.pk),
    ]
    assert Product.objects.get().stock == 95


def test_cancellations_are_recorded_with_who_cancelled(user, settings):
    settings.ORDER_PIPELINE = "db_update"
    operator = UserFactory(is_staff=True)
    deal = make_deal(deal_stock=5)
    product = make_product(stock=10, name="Regular")
    regular = order_place(
        user_id=user.pk,
        data=OrderInput(items=(LineInput(product.pk, 1, None),)),
    ).order
    deal_order = order_place(
        user_id=user.pk,
        data=OrderInput(items=(LineInput(deal.product_id, 1, deal.pk),)),
    ).order

    order_cancel(order_id=regular.pk, user_id=user.pk)
    order_cancel(order_id=deal_order.pk, user_id=user.pk, actor_id=operator.pk)

    assert _trail(product=product) == [("cancellation", 1, 0, user.pk)]
    assert _trail(deal_id=deal.pk) == [("cancellation", 0, 1, operator.pk)]
    assert Order.objects.filter(status="cancelled").count() == 2


def test_reconciliation_repair_is_recorded():
    deal = make_deal(deal_stock=10)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=7)  # drift: nothing was sold

    report = deal_reconcile(deal_id=deal.pk)

    assert report.repairs == [{"db_remaining": [7, 10]}]
    assert _trail(deal_id=deal.pk) == [("reconcile_repair", 0, 3, None)]
