from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "apps.deals"

    def ready(self) -> None:
        # AppConfig.ready() is where an app hands its part to a layer below it (here: core's
        # /metrics); imported here because models are not ready when this module loads.
        from apps.core.metrics import BUSINESS

        from .metrics import DealMetricsCollector

        BUSINESS.register(DealMetricsCollector())
