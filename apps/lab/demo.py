"""Demo catalog for `make run`: a dozen products in four categories with KRW prices, one live
deal and one upcoming deal. Idempotent: products are keyed on their fixed names, and a deal is
created only when its product has no open deal, so running it on every start changes nothing
(until a demo deal ends, when a fresh one replaces it). Open demo deals are (re)loaded into the
gate each time, which also rebuilds their Redis state after a Redis restart."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.catalog.models import Product
from apps.catalog.services import product_create
from apps.deals.models import Deal
from apps.deals.services import deal_create
from apps.orders.services.gate_state import deal_state_ensure

IMG = "https://img.flashdeals.local/demo"
# name, category, price (KRW), stock, description
PRODUCTS = [
    ("Galaxy Buds3 Pro", "electronics", 299_000, 500, "Noise-cancelling wireless earbuds."),
    ('LG UltraGear 27" Monitor', "electronics", 459_000, 120, "27-inch QHD 180Hz."),
    ("Anker 20000mAh Power Bank", "electronics", 59_900, 800, "Fast charging, two ports."),
    ("Hanwoo 1++ Gift Set 1.2kg", "food", 189_000, 60, "Premium Korean beef, chilled."),
    ("Bibigo Kimchi 3.3kg", "food", 32_900, 400, "Napa cabbage kimchi."),
    ("Shin Ramyun 20-Pack", "food", 17_800, 1000, "Spicy noodle soup."),
    ("Sulwhasoo First Care Serum 90ml", "beauty", 150_000, 200, "Activating serum."),
    ("COSRX Snail Essence 100ml", "beauty", 25_000, 600, "Hydrating essence."),
    ("Laneige Water Sleeping Mask", "beauty", 36_000, 300, "Overnight mask."),
    ("Cuckoo 6-Cup Rice Cooker", "home", 219_000, 150, "Pressure rice cooker."),
    ("Coway Air Purifier AP-1019C", "home", 329_000, 90, "For rooms up to 33 m2."),
    ("Lock&Lock Container Set 12p", "home", 39_900, 700, "Airtight food storage."),
]
LIVE_DEAL_PRODUCT = "Galaxy Buds3 Pro"
UPCOMING_DEAL_PRODUCT = "Cuckoo 6-Cup Rice Cooker"
ROOM_DEAL_PRODUCT = "Anker 20000mAh Power Bank"  # live, sold through the waiting room


def seed_demo_catalog(*, operator: User | None = None) -> str:
    """`operator` is who a real operator would be; services need no actor yet (kept for audit)."""
    created = 0
    by_name = {p.name: p for p in Product.objects.filter(name__in=[row[0] for row in PRODUCTS])}
    for name, category, price, stock, description in PRODUCTS:
        if name not in by_name:
            by_name[name] = product_create(
                name=name,
                category=category,
                price=price,
                stock=stock,
                description=description,
                image_url=f"{IMG}/{len(by_name) + 1}.jpg",
            )
            created += 1

    now = timezone.now()
    live = _ensure_deal(
        by_name[LIVE_DEAL_PRODUCT],
        deal_price=199_000,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(days=7),
        per_user_limit=2,
    )
    upcoming = _ensure_deal(
        by_name[UPCOMING_DEAL_PRODUCT],
        deal_price=149_000,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=2),
        per_user_limit=1,
    )
    room = _ensure_deal(
        by_name[ROOM_DEAL_PRODUCT],
        deal_price=29_900,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(days=7),
        per_user_limit=1,
        room_enabled=True,
        room_rate=2,
    )
    for deal in (live, upcoming, room):
        deal_state_ensure(deal)  # idempotent; rebuilds the state if Redis lost it
    return (
        f"{len(PRODUCTS)} demo products ({created} new), "
        f"live deal {live.id} ({live.status}), upcoming deal {upcoming.id} ({upcoming.status}), "
        f"live deal behind the waiting room {room.id}"
    )


def _ensure_deal(product: Product, **terms) -> Deal:
    open_deal = (
        Deal.objects.running()
        .filter(product=product, ends_at__gt=timezone.now())
        .order_by("ends_at")
        .first()
    )
    if open_deal is not None:
        return open_deal
    return deal_create(product_id=product.id, deal_stock=100, publish=True, **terms)
