from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"

    def ready(self) -> None:
        from apps.deals import gate

        from .services.holdings import holdings_with_pending

        # The gate rebuilds a lost deal state from our orders (deals must not import orders).
        gate.register_holdings_source(holdings_with_pending)
