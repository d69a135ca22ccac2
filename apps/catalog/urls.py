from django.urls import path

from apps.core.apis import health_api

urlpatterns = [
    path("products/health", health_api("product-service").as_view()),
]
