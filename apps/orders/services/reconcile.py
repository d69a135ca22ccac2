"""Reconciliation: proves a deal's books add up across Redis, the stream and PostgreSQL.

For every deal: deal_stock == remaining + sold (+ accepted-but-unwritten while live), nobody
holds more than per_user_limit, and units sold never exceed the quota. Drift in a counter is
repaired only when the correct value can be proved: the database counter inside a transaction
holding the deal row lock, the Redis counters under WATCH so a concurrent purchase or write
aborts the repair (it is retried at the next run).
"""

import logging
import uuid
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.catalog.models import StockMovementKind
from apps.catalog.services import stock_movement_record
from apps.core.audit import action_record
from apps.core.locks import locked
from apps.deals import gate
from apps.deals.gate import WatchedCounters
from apps.deals.models import Deal

from ..models import ReconciliationReport
from ..selectors import deal_holdings
from .gate_state import deal_books

logger = logging.getLogger(__name__)


def _check_db_counter(
    deal_id: uuid.UUID, findings: list, repairs: list | None, actor_id: uuid.UUID | None
) -> tuple[Deal, dict]:
    """Locks the deal row, then counts: a writer committing meanwhile blocks on the lock before
    it decrements, so the count and the counter are taken at one point in time. Repairs the
    counter when `repairs` is a list (it collects what was repaired)."""
    with transaction.atomic():
        deal = locked(Deal.objects.filter(pk=deal_id)).get()
        held = deal_holdings(deal_id=deal_id)
        sold = sum(held.values())
        expected = 0 if deal.closed_at else deal.deal_stock - sold
        if sold > deal.deal_stock:
            findings.append({"check": "oversold", "sold": sold, "deal_stock": deal.deal_stock})
        if deal.remaining_stock != expected and expected >= 0:
            findings.append(
                {"check": "db_remaining", "found": deal.remaining_stock, "expected": expected}
            )
            if repairs is None:
                return deal, held
            Deal.objects.filter(pk=deal_id).update(remaining_stock=expected)
            repairs.append({"db_remaining": [deal.remaining_stock, expected]})
            stock_movement_record(
                product_id=deal.product_id, kind=StockMovementKind.RECONCILE_REPAIR,
                deal_id=deal_id, deal_delta=expected - deal.remaining_stock, actor_id=actor_id,
                note="database counter",
            )  # fmt: skip
            deal.remaining_stock = expected
    return deal, held


def _add_unreleased_cancellations(
    counters: WatchedCounters, cancelled: list[tuple[str, str, int]], held: dict[str, int]
) -> None:
    """Redis still counts a recent cancellation as held until its release lands; so must the
    expected values, or the late release would add the units twice."""
    released = counters.released([order_id for order_id, _, _ in cancelled])
    for (_, user_id, units), done in zip(cancelled, released, strict=True):
        if not done:
            held[user_id] = held.get(user_id, 0) + units


def _check_redis(
    deal: Deal, findings: list, repairs: list | None, actor_id: uuid.UUID | None
) -> tuple[int | None, int]:
    """Compares the gate's counters with PostgreSQL + unwritten reservations, and replaces them
    (when `repairs` is a list) only if nothing moved them meanwhile."""
    with gate.counters_watched(deal.id) as counters:
        if counters is None:
            return None, 0
        books = deal_books(deal, counters.pending)  # one statement: held, rows, cancellations
        held, pending_units = books.held, books.unwritten_units
        _add_unreleased_cancellations(counters, books.cancelled, held)
        expected = deal.deal_stock - sum(held.values())
        over = {u: n for u, n in held.items() if n > deal.per_user_limit}
        if over:
            findings.append({"check": "per_user_limit", "over": over})
        users = counters.users
        drift_users = {u: [users.get(u, 0), n] for u, n in held.items() if users.get(u, 0) != n}
        drift_users.update({u: [n, 0] for u, n in users.items() if u not in held})
        if counters.remaining == expected and not drift_users:
            return counters.remaining, pending_units
        if repairs is None and not counters.unchanged():  # a check only: drift, or a purchase?
            findings.append({"check": "redis", "note": "changed during the check; retry later"})
            return None, 0
        findings.append(
            {"check": "redis", "remaining": [counters.remaining, expected], "users": drift_users}
        )
        if repairs is None or expected < 0:  # a check only, or oversold: nothing provable to set
            return counters.remaining, pending_units
        try:
            counters.replace(remaining=expected, users=held)
        except gate.CountersChanged:
            findings.append({"check": "redis", "note": "changed during the check; retry later"})
            return None, 0
    repairs.append({"redis_remaining": [counters.remaining, expected]})
    # After EXEC: the Redis change is done and cannot share a transaction with this row.
    stock_movement_record(
        product_id=deal.product_id, kind=StockMovementKind.RECONCILE_REPAIR,
        deal_id=deal.id, deal_delta=expected - counters.remaining, actor_id=actor_id,
        note="redis counter",
    )  # fmt: skip
    return expected, pending_units


def deal_reconcile(
    *, deal_id: uuid.UUID, repair: bool = True, actor_id: uuid.UUID | None = None
) -> ReconciliationReport:
    """Checks one deal and, with `repair`, repairs what can be proved; `actor_id` is the
    operator who asked (None for the beat). Repairs are audited as stock movements. Without
    `repair` nothing but the report is written."""
    findings: list[dict] = []
    repairs: list[dict] | None = [] if repair else None
    deal, held = _check_db_counter(deal_id, findings, repairs, actor_id)
    redis_remaining, pending_units = (None, 0)
    # Under a database pipeline the gate decides nothing and nothing moves its counters: they
    # are not drift (a switch to a Redis pipeline gets them right at its first reconcile).
    gated = settings.ORDER_PIPELINE in gate.REDIS_PIPELINES
    if gated and deal.published_at and not deal.closed_at:
        try:
            redis_remaining, pending_units = _check_redis(deal, findings, repairs, actor_id)
        except redis.RedisError as exc:
            findings.append({"check": "redis", "note": f"unreachable: {exc.__class__.__name__}"})
    report = ReconciliationReport.objects.create(
        deal=deal,
        ok=not findings,
        deal_stock=deal.deal_stock,
        sold_units=sum(held.values()),
        pending_units=pending_units,
        db_remaining=deal.remaining_stock,
        redis_remaining=redis_remaining,
        findings=findings,
        repairs=repairs or [],
    )
    if findings:
        logger.warning("reconciliation of deal %s: %s; repaired %s", deal.id, findings, repairs)
    if actor_id is not None or findings:  # the beat's clean runs (every minute) stay quiet
        detail = f"findings {findings}; repaired {repairs or []}" if findings else "books balance"
        action_record(actor_id=actor_id, obj=deal, action="reconcile", detail=detail)
    return report


FINAL_CHECK_WITHIN = timedelta(hours=1)  # a closed deal still owed its final report
PRUNE_BATCH = 5_000  # reports per DELETE statement
PRUNE_MAX_BATCHES = 20  # DELETE statements per pruning run (hourly)


def deals_to_reconcile(*, now: datetime) -> QuerySet[Deal]:
    """The deals the beat checks: open ones (published, started or ended early, not yet closed:
    their units can move) and, once, a deal closed within FINAL_CHECK_WITHIN that has no report
    written since it closed (the final result the post-sale report shows). Not drafts, not
    published deals that have not started (nothing can be sold yet), not closed deals already
    checked after closing."""
    opened = Q(starts_at__lte=now) | Q(ended_at__isnull=False)
    checked_since_close = ReconciliationReport.objects.filter(
        deal=OuterRef("pk"), created_at__gte=OuterRef("closed_at")
    )
    return Deal.objects.published().filter(
        (Q(closed_at__isnull=True) & opened)
        | (Q(closed_at__gte=now - FINAL_CHECK_WITHIN) & ~Exists(checked_since_close))
    )


def reconcile_live_deals() -> list[ReconciliationReport]:
    """Beat: one report per deal of deals_to_reconcile."""
    deals = deals_to_reconcile(now=timezone.now()).order_by("pk")
    return [deal_reconcile(deal_id=d) for d in deals.values_list("id", flat=True)]


def reconciliation_reports_prune(
    *, now: datetime, batch: int = PRUNE_BATCH, max_batches: int = PRUNE_MAX_BATCHES
) -> int:
    """Beat (hourly): deletes the reports older than RECONCILIATION_RETENTION_DAYS, oldest
    first, `batch` rows per DELETE and at most `max_batches` of them per call, so a backlog
    (the first run after an upgrade, a long outage) drains over a few runs without one huge
    statement. A deal's newest report is kept however old it is: the post-sale report shows it
    as the deal's reconciliation result. Returns how many were deleted."""
    cutoff = now - timedelta(days=settings.RECONCILIATION_RETENTION_DAYS)
    newer = ReconciliationReport.objects.filter(
        deal=OuterRef("deal"), created_at__gt=OuterRef("created_at")
    )
    old = (
        ReconciliationReport.objects.filter(created_at__lt=cutoff)
        .filter(Exists(newer))
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    total = 0
    for _ in range(max_batches):
        deleted, _ = ReconciliationReport.objects.filter(pk__in=list(old[:batch])).delete()
        total += deleted
        if deleted < batch:
            break
    if total:
        logger.info("pruned %d reconciliation reports older than %s", total, cutoff)
    return total
