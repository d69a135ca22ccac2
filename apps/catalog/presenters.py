"""JSON-ready dicts for API output and the cache.

Plain functions rather than DRF serializers because these dicts are what the cache stores and what
the selectors return (selectors never import serializers); the DRF serializers in apis.py describe
the same shapes for the OpenAPI schema, and a test keeps the two in step.
"""

from typing import Any

from apps.core.renderers import iso

from .models import Product


def product_data(product: Product) -> dict[str, Any]:
    return {
        "id": str(product.id),
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "stock": product.stock,
        "category": product.category,
        "image_url": product.image_url,
        "created_at": iso(product.created_at),
        "updated_at": iso(product.updated_at),
    }


def product_stock_data(product: Product) -> dict[str, Any]:
    return {
        "product_id": str(product.id),
        "stock": product.stock,
        "updated_at": iso(product.updated_at),
    }
