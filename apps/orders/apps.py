from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"

    def ready(self) -> None:
        # AppConfig.ready() is where an app hands its part to a layer below it: the live deal
        # page (apps.deals) shows our numbers and runs our actions without importing orders, and
        # /metrics (core) serves the reconciliation's drift.
        # Imported here because models are not ready when this module loads.
        from apps.core.metrics import BUSINESS
        from apps.deals.console import register_orders_console

        from .console import ORDERS_CONSOLE  # (reads models)
        from .metrics import ReconciliationDriftCollector  # (reads models)

        register_orders_console(ORDERS_CONSOLE)
        BUSINESS.register(ReconciliationDriftCollector())  # /metrics (apps.core.metrics)
