"""Test data for orders: products and live deals written straight to the database (the deals
app's services are tested on their own), plus the gate state a live deal needs."""

from datetime import timedelta
from typing import Literal

from django.utils import timezone

from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.gate import Outcome, Reservation
from apps.deals.models import Deal
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
