"""Catalog writes. Stock changes only through set-based conditional updates with a row-count check
(never read-modify-write), and every write invalidates the read cache when it commits. The one
read-modify-write below is the bug itself, reachable only through the test-only setting
CATALOG_STOCK_NAIVE_WRITES, so the negative control races this code rather than a copy of it.

Services open `transaction.atomic()` (not durable): the deal and order services call them inside
their own transactions, and the cache bump then waits for the outer commit.
"""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from apps.core.errors import ValidationFailed

from .cache import CATALOG, scope_changed
from .errors import InsufficientStock, PriceNotAboveDeal, ProductNotFound
from .models import Product, StockMovement, StockMovementKind
from .selectors import product_open_deal_price_max

STOCK_MAX = 2_147_483_647  # the column is a PostgreSQL integer
PRODUCT_EDITABLE_FIELDS = frozenset({"name", "description", "price", "category", "image_url"})


def stock_movement_record(
    *,
    product_id: UUID,
    kind: str,
    delta: int = 0,
    deal_id: UUID | None = None,
    deal_delta: int = 0,
    actor_id: UUID | None = None,
    note: str = "",
) -> StockMovement:
    """Appends one line to the stock audit trail. Call it inside the transaction that moves the
    units, so the line and the change commit (or roll back) together."""
    return StockMovement.objects.create(
        product_id=product_id,
        kind=kind,
        delta=delta,
        deal_id=deal_id,
        deal_delta=deal_delta,
        actor_id=actor_id,
        note=note[:500],
    )


def product_create(
    *,
    name: str,
    price: int,
    stock: int = 0,
    description: str = "",
    category: str = "",
    image_url: str = "",
    actor_id: UUID | None = None,
) -> Product:
    with transaction.atomic():
        product = Product.objects.create(
            name=name,
            price=price,
            stock=stock,
            description=description,
            category=category,
            image_url=image_url,
        )
        if stock:
            stock_movement_record(
                product_id=product.id,
                kind=StockMovementKind.OPERATOR_EDIT,
                delta=stock,
                actor_id=actor_id,
                note="initial stock",
            )
        scope_changed(CATALOG)
    return product


def product_price_check(*, product_id: UUID, price: int) -> None:
    """Raise PriceNotAboveDeal when `price` is at or below an open deal's price (the admin's form
    calls this too, to show the error on the field)."""
    highest = product_open_deal_price_max(product_id=product_id)
    if highest is not None and price <= highest[1]:
        deal_id, deal_price = highest
        raise PriceNotAboveDeal(
            f"The price must stay above {deal_price}, the price of an open deal on this product.",
            details={"price": price, "deal_id": str(deal_id), "deal_price": deal_price},
        )


def product_update(*, product_id: UUID, **fields: Any) -> Product:
    """Changes the descriptive fields and the price. Stock is not among them on purpose: it moves
    only by deltas (product_stock_adjust), so an edit can never overwrite a concurrent sale."""
    unknown = set(fields) - PRODUCT_EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable through product_update: {sorted(unknown)}")
    with transaction.atomic():
        if "price" in fields:
            # Lock the row first: a deal is published with a conditional UPDATE of this row
            # (its quota), so it cannot slip in between this check and the price change.
            if not Product.objects.select_for_update().filter(pk=product_id).exists():
                raise ProductNotFound()
            product_price_check(product_id=product_id, price=fields["price"])
        updated = Product.objects.filter(pk=product_id).update(**fields, updated_at=timezone.now())
        if not updated:
            raise ProductNotFound()
        scope_changed(CATALOG)
        return Product.objects.get(pk=product_id)


def product_stock_adjust(
    *,
    product_id: UUID,
    delta: int,
    kind: str = StockMovementKind.OPERATOR_EDIT,
    deal_id: UUID | None = None,
    deal_delta: int = 0,
    actor_id: UUID | None = None,
    note: str = "",
) -> Product:
    """Adds `delta` (negative to take) to the regular stock in one conditional UPDATE, and records
    it in the audit trail (`kind` and the rest say why; the default is an operator's edit).

    Never goes below zero (400 INSUFFICIENT_STOCK, nothing changed) nor above the column's range
    (422). The returned product shows the stock right after this change: the row stays locked by
    our UPDATE until the transaction ends, so the re-read cannot see anyone else's change.
    """
    with transaction.atomic():
        product_qs = Product.objects.filter(pk=product_id)
        if settings.CATALOG_STOCK_NAIVE_WRITES:  # test-only negative control, see below
            updated = _stock_read_modify_write(product_qs, delta)
        else:
            if delta < 0:
                guarded = product_qs.filter(stock__gte=-delta)
            else:
                guarded = product_qs.filter(stock__lte=STOCK_MAX - delta)
            updated = guarded.update(stock=F("stock") + delta, updated_at=timezone.now())
        if not updated:
            product = product_qs.first()
            if product is None:
                raise ProductNotFound()
            if delta < 0:
                raise InsufficientStock(
                    f"Only {product.stock} in stock; cannot take {-delta}.",
                    details={"product_id": str(product_id), "stock": product.stock, "delta": delta},
                )
            raise ValidationFailed(details={"delta": [f"Stock would exceed {STOCK_MAX}."]})
        stock_movement_record(
            product_id=product_id, kind=kind, delta=delta, deal_id=deal_id,
            deal_delta=deal_delta, actor_id=actor_id, note=note,
        )  # fmt: skip
        scope_changed(CATALOG)
        return product_qs.get()


def _stock_read_modify_write(product_qs: QuerySet[Product], delta: int) -> int:
    """The lost update that the conditional UPDATE in product_stock_adjust prevents; runs only
    when the test-only setting CATALOG_STOCK_NAIVE_WRITES is on. Reads the stock, checks the bounds
    and adds in Python, then writes the sum back: two racers that read the same stock both write
    their own sum, and one take vanishes. CATALOG_STOCK_NAIVE_AFTER_READ (when set) is called
    between the read and the write, so a test can make every racer read before any writes.
    Returns the rows written, like the guarded UPDATE (0: out of bounds or no such product)."""
    product = product_qs.first()
    after_read = settings.CATALOG_STOCK_NAIVE_AFTER_READ
    if after_read is not None:
        after_read()
    if product is None or not 0 <= product.stock + delta <= STOCK_MAX:
        return 0
    return product_qs.update(stock=product.stock + delta, updated_at=timezone.now())


def product_stock_return(
    *,
    product_id: UUID,
    quantity: int,
    kind: str,
    deal_id: UUID | None = None,
    deal_delta: int = 0,
    actor_id: UUID | None = None,
    note: str = "",
) -> None:
    """Puts `quantity` units back (a cancelled regular order, a closed deal's unsold quota) and
    records why (`kind`). Runs inside the caller's transaction when there is one."""
    if quantity < 1:
        raise ValueError("quantity must be >= 1")
    with transaction.atomic():
        updated = Product.objects.filter(pk=product_id).update(
            stock=F("stock") + quantity, updated_at=timezone.now()
        )
        if not updated:
            raise ProductNotFound()
        stock_movement_record(
            product_id=product_id, kind=kind, delta=quantity, deal_id=deal_id,
            deal_delta=deal_delta, actor_id=actor_id, note=note,
        )  # fmt: skip
        scope_changed(CATALOG)
