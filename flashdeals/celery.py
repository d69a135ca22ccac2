"""Celery application. Broker and settings come from Django settings (CELERY_* names)."""

from celery import Celery

from flashdeals.entrypoint import require_settings_module

require_settings_module()  # no silent fallback to the local settings (docs/security.md)

app = Celery("flashdeals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
