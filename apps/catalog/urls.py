from django.urls import path

from apps.core.apis import health_api

from . import apis

# `<uuid:...>`: a malformed id never reaches the database; it is an unknown path (404 NOT_FOUND).
urlpatterns = [
    path("products/health", health_api("product-service").as_view()),
    path("products", apis.route(apis.ProductListApi, apis.ProductCreateApi).as_view()),
    path(
        "products/<uuid:product_id>",
        apis.route(apis.ProductDetailApi, apis.ProductUpdateApi).as_view(),
    ),
    path(
        "products/<uuid:product_id>/stock",
        apis.route(apis.ProductStockApi, apis.ProductStockAdjustApi).as_view(),
    ),
]
