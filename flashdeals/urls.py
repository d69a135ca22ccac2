"""Root URLs. API paths are the contract of Flash Deals, the project flashdeals rebuilds (see the
README): root paths, no trailing slash."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from apps.core.apis import ReadinessApi, health_api
from apps.core.docs import SchemaApi, SwaggerDocsApi
from apps.core.metrics import metrics_view
from apps.deals.dashboard import dashboard_view

urlpatterns = [
    # Each app's urls.py spells its full root paths (`products`, `products/<id>`, ...); no two
    # apps' paths overlap. Orders first: Django tries patterns in order, and a purchase
    # (POST /orders) is the request a sale sends most.
    path("", include("apps.orders.urls")),
    path("health", health_api("gateway").as_view()),
    path("health/ready", ReadinessApi.as_view()),
    path("", include("apps.accounts.urls")),
    path("", include("apps.deals.urls")),
    path("", include("apps.catalog.urls")),
    path("api/schema", SchemaApi.as_view(), name="schema"),
    path("api/docs", SwaggerDocsApi.as_view(url_name="schema"), name="docs"),
    # The console's landing page, ahead of the admin's own index (which it extends with the
    # deals dashboard; `admin:index` still names this URL).
    path("admin/", admin.site.admin_view(dashboard_view), name="console_dashboard"),
    path("admin/", admin.site.urls),
    # Prometheus; staff session or METRICS_TOKEN (apps/core/metrics.py). Not in the API schema.
    path("metrics", metrics_view, name="metrics"),
]
if settings.SILK_ENABLED:
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))

handler400 = "apps.core.exception_handler.bad_request_view"
handler403 = "apps.core.exception_handler.permission_denied_view"
handler404 = "apps.core.exception_handler.not_found_view"
handler500 = "apps.core.exception_handler.server_error_view"

admin.site.site_header = "flashdeals operator console"
admin.site.site_title = "flashdeals"
admin.site.index_title = "Run products, deals and orders"
admin.site.site_url = "/api/docs"  # "View site": the API's docs (the API has no page at /)
