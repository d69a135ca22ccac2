from django.urls import path

from apps.core.apis import health_api

from . import apis, queue_apis

urlpatterns = [
    path("orders", apis.OrderCollectionApi.as_view()),  # first: the purchase
    path("orders/health", health_api("order-service").as_view()),
    path("orders/<uuid:order_id>", apis.OrderDetailApi.as_view()),
    path("orders/<uuid:order_id>/cancel", apis.OrderCancelApi.as_view()),
    path("products/deals/<uuid:deal_id>/queue", queue_apis.QueueJoinApi.as_view()),
    path("products/deals/<uuid:deal_id>/queue/me", queue_apis.QueueTicketApi.as_view()),
]
