"""The OpenAPI schema documents exactly the bodies the presenters send."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.catalog.apis import ProductOutputSerializer
from apps.catalog.presenters import product_data
from apps.catalog.tests.factories import ProductFactory
from apps.deals.apis import DealOutputSerializer
from apps.deals.presenters import deal_data, deals_live
from apps.deals.tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def test_serializers_describe_the_presented_bodies():
    deal = DealFactory()
    assert list(product_data(ProductFactory())) == list(ProductOutputSerializer().fields)
    assert list(deals_live([deal_data(deal)])[0]) == list(DealOutputSerializer().fields)


def test_schema_has_every_catalog_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (path, method): op["operationId"]
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if path.startswith("/products")
    }
    assert operations == {
        ("/products/health", "get"): "health_product-service",
        ("/products", "get"): "products_list",
        ("/products", "post"): "products_create",
        ("/products/{product_id}", "get"): "products_retrieve",
        ("/products/{product_id}", "patch"): "products_update",
        ("/products/{product_id}/stock", "get"): "products_stock_retrieve",
        ("/products/{product_id}/stock", "patch"): "products_stock_adjust",
        ("/products/deals", "get"): "deals_list",
        ("/products/deals", "post"): "deals_create",
        ("/products/deals/{deal_id}", "get"): "deals_retrieve",
        # The waiting room (apps.orders.queue_apis), under the deal's path.
        ("/products/deals/{deal_id}/queue", "post"): "deal_queue_join",
        ("/products/deals/{deal_id}/queue/me", "get"): "deal_queue_ticket",
        ("/products/deals/{deal_id}/queue/me", "delete"): "deal_queue_leave",
    }
