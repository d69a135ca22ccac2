from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AccountsConfig(AppConfig):
    name = "apps.accounts"

    def ready(self) -> None:
        from . import schema  # noqa: F401 - registers the OpenAPI auth extension
        from .models import User  # models are loaded only once ready() runs
        from .signals import revoke_on_deactivation, revoke_on_deletion  # imports the models

        post_save.connect(revoke_on_deactivation, sender=User, dispatch_uid="revoke-deactivated")
        post_delete.connect(revoke_on_deletion, sender=User, dispatch_uid="revoke-deleted")
