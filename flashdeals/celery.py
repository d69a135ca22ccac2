"""Celery application. Broker and settings come from Django settings (CELERY_* names)."""

from celery import Celery
from celery.signals import worker_init, worker_process_init

from apps.core.tracing import tracing_setup
from flashdeals.entrypoint import require_settings_module

require_settings_module()  # no silent fallback to the local settings (docs/security.md)

app = Celery("flashdeals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect(weak=False)
def _trace_pool_process(**_) -> None:
    """Each prefork pool process sets up its own tracing (its exporter thread is its own)."""
    tracing_setup(role="worker")


@worker_init.connect(weak=False)
def _trace_worker(sender=None, **_) -> None:
    """A worker whose pool runs tasks in its own process (solo, threads) has no pool process."""
    if "prefork" not in str(getattr(sender, "pool_cls", "prefork")):
        tracing_setup(role="worker")
