"""Catalog reads. `*_data` selectors return the JSON-ready (cached) shapes the API sends."""

from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.pagination import Page

from .cache import CATALOG, cache_aside
from .errors import ProductNotFound
from .models import Product
from .presenters import product_data, product_stock_data


def product_get(*, product_id: UUID) -> Product:
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise ProductNotFound()
    return product


def _products(*, category: str | None) -> QuerySet[Product]:
    # Served by product_newest_idx / product_cat_newest_idx (created_at DESC, id DESC).
    queryset = Product.objects.order_by("-created_at", "-id")
    return queryset.filter(category=category) if category is not None else queryset


def product_open_deal_price_max(*, product_id: UUID) -> tuple[UUID, int] | None:
    """The open deal with the highest price on this product, as (deal id, deal price): a price
    must stay above it. Open: published, not ended early, not closed, not past its end.

    Read through the reverse relation `Product.deals`: catalog sits below deals and does not
    import it; the relation's columns are the schema fact both apps share."""
    row = (
        Product.objects.filter(
            pk=product_id,
            deals__published_at__isnull=False,
            deals__ended_at__isnull=True,
            deals__closed_at__isnull=True,
            deals__ends_at__gt=timezone.now(),
        )
        .order_by("-deals__deal_price")
        .values_list("deals__id", "deals__deal_price")
        .first()
    )
    return (row[0], row[1]) if row else None


def product_count(*, category: str | None) -> int:
    return _products(category=category).count()


def product_list_json(*, category: str | None, page: Page) -> bytes:
    """The `{items, total, page, size}` body rendered to JSON, cache-aside: a hit is one Redis
    round trip and no rendering. The total is cached on its own key so that paging through a
    category counts its rows once per catalog version, not once per page.

    The key space is bounded by the catalog, not by what clients send (category, page and size
    are theirs to choose): a category with no products keeps no key (its total of 0 is not
    stored; each such request costs one indexed COUNT), and a page with no items (past the last
    one) is not stored either. A hit stays one Redis round trip. So a catalog version holds at
    most one total per existing category and one page per (existing category, page with items,
    size 1..100)."""

    had_items = [True]

    def compute_page() -> bytes:
        total = cache_aside(
            scopes=[CATALOG],
            key=("products-total", category),
            compute=lambda: product_count(category=category),
            ttl=lambda n: settings.CATALOG_CACHE_TTL if n or category is None else 0,
        )
        items: list[Product] = []
        if page.offset < total:
            items = list(_products(category=category)[page.offset : page.offset + page.size])
        had_items[0] = bool(items)
        return orjson.dumps(page.body([product_data(p) for p in items], total))

    return cache_aside(
        scopes=[CATALOG],
        key=("products", category, page.page, page.size),
        compute=compute_page,
        ttl=lambda _: settings.CATALOG_CACHE_TTL if had_items[0] else 0,
    )


def product_data_get(*, product_id: UUID) -> dict[str, Any]:
    """Product detail, cache-aside (misses are not cached: a 404 costs one indexed query)."""
    return cache_aside(
        scopes=[CATALOG],
        key=("product", product_id),
        compute=lambda: product_data(product_get(product_id=product_id)),
    )


def product_stock_data_get(*, product_id: UUID) -> dict[str, Any]:
    """Never cached: shoppers poll this to see the stock as it is now."""
    return product_stock_data(product_get(product_id=product_id))
