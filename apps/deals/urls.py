from django.urls import path

from . import apis

# Included before apps.catalog.urls. `<uuid:...>`: a malformed id is an unknown path (404).
urlpatterns = [
    path("products/deals", apis.DealCollectionApi.as_view()),
    path("products/deals/<uuid:deal_id>", apis.DealDetailApi.as_view()),
]
