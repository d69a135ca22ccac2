"""Test data for orders: products and live deals written straight to the database (the deals
app's services are tested on their own), plus the gate state a live deal needs."""

import uuid
from datetime import datetime, timedelta
from typing import Literal

from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.models import Deal
from apps.orders.models import Order, OrderItem
from apps.orders.services.gate_state import deal_state_ensure


def make_product(*, price: int = 10_000, stock: int = 100, name: str = "Widget") -> Product:
    return Product.objects.create(name=name, price=price, stock=stock, category="test")


def make_deal(
    *,
    product: Product | None = None,
    deal_stock: int = 10,
    per_user_limit: int = 1,
    deal_price: int = 5_000,
    starts_in: timedelta = -timedelta(minutes=1),
    lasts: timedelta = timedelta(hours=1),
    published: bool = True,
    load: bool = True,
) -> Deal:
    """A published deal whose quota is already carved (as deal_publish would leave it)."""
    product = product or make_product(price=deal_price * 2)
    now = timezone.now()
    deal = Deal.objects.create(
        product=product,
        deal_price=deal_price,
        deal_stock=deal_stock,
        remaining_stock=deal_stock,
        per_user_limit=per_user_limit,
        starts_at=now + starts_in,
        ends_at=now + starts_in + lasts,
        published_at=now if published else None,
    )
    if load and published:
        deal_state_ensure(deal)
    return deal


def deal_line(deal: Deal, quantity: int = 1) -> dict:
    return {
        "items": [
            {"product_id": str(deal.product_id), "deal_id": str(deal.id), "quantity": quantity}
        ]
    }


def reserve_unwritten(
    deal: Deal, user_id, *, quantity: int = 1, mode: Literal["sync", "async"] = "async"
) -> Reservation:
    """An accepted purchase as the web tier makes it, with no writer started (a web process that
    died after the Lua step, or a reservation a test then poisons). Bypasses the API's
    validation: a quantity the API would refuse reaches PostgreSQL's CHECK."""
    reservation = Reservation.new(
        user_id=user_id, quantity=quantity, created_at=timezone.now(), request_hash="",
        idempotency_key=None, shipping=None,
    )  # fmt: skip
    result = gate.deal_reserve(
        deal_id=deal.id,
        product_id=deal.product_id,
        reservation=reservation,
        mode=mode,
    )
    assert result.outcome == Outcome.OK, result
    return reservation


def fixed_id(n: int) -> uuid.UUID:
    """A readable id whose sort order is plain to see: fixed_id(0x10) < fixed_id(0x18)."""
    return uuid.UUID(int=n)


def add_order(*, order_id: int, created_at: datetime, items: dict[int, str]) -> Order:
    """An order with fixed ids (so the expected order of rows is written out, not computed)
    and one item per `items` entry: item id -> product name (the row's label in the CSV)."""
    order = Order.objects.create(
        id=fixed_id(order_id), user=UserFactory(), status="confirmed",
        total_amount=100 * len(items), created_at=created_at,
    )  # fmt: skip
    product = make_product(stock=0)
    for item_id, label in items.items():
        OrderItem.objects.create(
            id=fixed_id(item_id), order=order, product=product, product_name=label,
            unit_price=100, quantity=1, subtotal=100,
        )  # fmt: skip
    return order
