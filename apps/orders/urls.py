from django.urls import path

from apps.core.apis import health_api

urlpatterns = [
    path("orders/health", health_api("order-service").as_view()),
]
