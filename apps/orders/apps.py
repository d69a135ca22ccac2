from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"

    def ready(self) -> None:
        from apps.deals.console import register_orders_console

        from .console import ORDERS_CONSOLE

        # AppConfig.ready() is where an app hands its part to a layer below it: the live deal
        # page (apps.deals) shows our numbers and runs our actions without importing orders.
        register_orders_console(ORDERS_CONSOLE)
