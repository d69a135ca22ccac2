"""Celery application. Broker and settings come from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashdeals.settings.local")

app = Celery("flashdeals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
