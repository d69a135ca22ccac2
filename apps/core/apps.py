from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"

    def ready(self) -> None:
        if settings.SILK_ENABLED:
            # Imported only with Silk on: the module imports silk, not installed otherwise.
            from . import silk

            silk.install()  # mask tokens and cookies in what Silk stores (apps/core/silk.py)
