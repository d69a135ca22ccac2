"""Celery tasks: thin, idempotent wrappers around services (primitive args only).

Services import this module at the top to enqueue; each task imports its service inside the
function (HackSoft's style), so the enqueue points show in the services' imports and no import
cycle hides behind them.

Global task settings (flashdeals/settings/base.py): acks_late, reject_on_worker_lost and
prefetch 1, so a task on a killed worker is redelivered, never lost.
"""

from celery import shared_task
from django.utils import timezone


@shared_task(ignore_result=True)
def drain_deal_stream_task(deal_id: str) -> int:
    """Started by the purchase that found no drain running; exits after a quiet second."""
    from .services.drain import stream_drain  # cycle: services import this module

    return stream_drain(deal_id=deal_id)


@shared_task(ignore_result=True)
def streams_maintain_task() -> dict:
    from .services.drain import streams_maintain  # cycle: services import this module

    return streams_maintain()


@shared_task(ignore_result=True)
def deals_prepare_task() -> dict:
    from .services.lifecycle import deals_prepare  # cycle: services import this module

    return deals_prepare()


@shared_task(ignore_result=True)
def reconcile_deals_task() -> list[str]:
    from .services.reconcile import reconcile_live_deals  # cycle: services import this module

    return [str(report.id) for report in reconcile_live_deals()]


@shared_task(ignore_result=True)
def prune_reconciliation_reports_task() -> int:
    from .services.reconcile import reconciliation_reports_prune  # cycle: services import this

    return reconciliation_reports_prune(now=timezone.now())
