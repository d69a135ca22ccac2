from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"

    def ready(self) -> None:
        from apps.deals import gate

        from .selectors import deal_idempotency_keys
        from .services.holdings import holdings_with_pending

        # The gate rebuilds a lost deal state from our orders (deals must not import orders).
        gate.register_holdings_source(holdings_with_pending)
        gate.register_keys_source(lambda deal: deal_idempotency_keys(deal_id=deal.id))
