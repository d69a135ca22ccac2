"""Catalog reads. `*_data` selectors return the JSON-ready (cached) shapes the API sends."""

from typing import Any
from uuid import UUID

import orjson
from django.db.models import QuerySet

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


def product_count(*, category: str | None) -> int:
    return _products(category=category).count()


def product_list_json(*, category: str | None, page: Page) -> bytes:
    """The `{items, total, page, size}` body rendered to JSON, cache-aside: a hit is one Redis
    round trip and no rendering. The total is cached on its own key so that paging through a
    category counts its rows once per catalog version, not once per page."""

    def compute_page() -> bytes:
        total = cache_aside(
            scopes=[CATALOG],
            key=("products-total", category),
            compute=lambda: product_count(category=category),
        )
        items: list[Product] = []
        if page.offset < total:
            items = list(_products(category=category)[page.offset : page.offset + page.size])
        return orjson.dumps(page.body([product_data(p) for p in items], total))

    return cache_aside(
        scopes=[CATALOG], key=("products", category, page.page, page.size), compute=compute_page
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
