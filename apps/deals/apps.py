from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "apps.deals"

    def ready(self) -> None:
        # AppConfig.ready() is where an app hands its part to a layer below it (here: core's
        # /metrics); imported here because models are not ready when this module loads.
        from apps.core.apis import REDIS_CHECKS
        from apps.core.metrics import BUSINESS

        from . import gate  # (imports models, as the collector does)
        from .metrics import DealMetricsCollector, GateUpCollector  # (reads models)

        BUSINESS.register(DealMetricsCollector())
        BUSINESS.register(GateUpCollector())
        # /health/ready reaches the gate's servers (a cluster's every primary) and their settings.
        REDIS_CHECKS.append(gate.check_gate_server)
