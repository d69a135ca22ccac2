"""Reconciliation: proves a deal's books add up across Redis, the stream and PostgreSQL.

For every deal: deal_stock == remaining + sold (+ accepted-but-unwritten while live), nobody
holds more than per_user_limit, and units sold never exceed the quota. Drift in a counter is
repaired only when the correct value can be proved: the database counter inside a transaction
holding the deal row lock, the Redis counters under WATCH so a concurrent purchase or write
aborts the repair (it is retried at the next run).
"""

import json
import logging
import uuid
from datetime import timedelta

import redis
from django.db import transaction
from django.utils import timezone

from apps.catalog.models import StockMovementKind
from apps.catalog.services import stock_movement_record
from apps.core.redis import get_redis
from apps.deals.keys import deal_keys
from apps.deals.models import Deal

from ..models import ReconciliationReport
from ..selectors import deal_holdings, deal_recent_cancellations
from .holdings import holdings_with_pending

logger = logging.getLogger(__name__)


def _repair_db_counter(
    deal_id: uuid.UUID, findings: list, repairs: list, actor_id: uuid.UUID | None = None
) -> tuple[Deal, dict]:
    """Locks the deal row, then counts: a writer committing meanwhile blocks on the lock before
    it decrements, so the count and the counter are taken at one point in time."""
    with transaction.atomic():
        deal = Deal.objects.select_for_update().get(pk=deal_id)
        held = deal_holdings(deal_id=deal_id)
        sold = sum(held.values())
        expected = 0 if deal.closed_at else deal.deal_stock - sold
        if sold > deal.deal_stock:
            findings.append({"check": "oversold", "sold": sold, "deal_stock": deal.deal_stock})
        if deal.remaining_stock != expected and expected >= 0:
            findings.append(
                {"check": "db_remaining", "found": deal.remaining_stock, "expected": expected}
            )
            Deal.objects.filter(pk=deal_id).update(remaining_stock=expected)
            repairs.append({"db_remaining": [deal.remaining_stock, expected]})
            stock_movement_record(
                product_id=deal.product_id, kind=StockMovementKind.RECONCILE_REPAIR,
                deal_id=deal_id, deal_delta=expected - deal.remaining_stock, actor_id=actor_id,
                note="database counter",
            )  # fmt: skip
            deal.remaining_stock = expected
    return deal, held


# A cancellation gives its units back in Redis just after its commit. Until that lands, Redis
# still counts them as held; reconciliation must too, or the late release would add them twice.
RELEASE_GRACE = timedelta(minutes=10)


def _add_unreleased_cancellations(pipe, deal: Deal, held: dict[str, int]) -> None:
    cancelled = deal_recent_cancellations(deal_id=deal.id, since=timezone.now() - RELEASE_GRACE)
    if not cancelled:
        return
    released = pipe.smismember(deal_keys(deal.id).released, [oid for oid, _, _ in cancelled])
    for (_, user_id, units), done in zip(cancelled, released, strict=True):
        if not done:
            held[user_id] = held.get(user_id, 0) + units


def _repair_redis(
    deal: Deal, findings: list, repairs: list, actor_id: uuid.UUID | None = None
) -> tuple[int | None, int]:
    """Compares the Redis counters with PostgreSQL + unwritten reservations; repairs under WATCH."""
    keys = deal_keys(deal.id)
    client = get_redis()
    with client.pipeline() as pipe:
        try:
            pipe.watch(keys.state, keys.users, keys.pending, keys.released)
            remaining = pipe.hget(keys.state, "remaining")
            if remaining is None:
                return None, 0
            pending = {k: json.loads(v) for k, v in pipe.hgetall(keys.pending).items()}
            users = {u: int(n) for u, n in pipe.hgetall(keys.users).items()}
            held = holdings_with_pending(deal, pending)
            _add_unreleased_cancellations(pipe, deal, held)
            pending_units = sum(held.values()) - sum(deal_holdings(deal_id=deal.id).values())
            expected = deal.deal_stock - sum(held.values())
            over = {u: n for u, n in held.items() if n > deal.per_user_limit}
            if over:
                findings.append({"check": "per_user_limit", "over": over})
            drift_users = {u: [users.get(u, 0), n] for u, n in held.items() if users.get(u, 0) != n}
            drift_users.update({u: [n, 0] for u, n in users.items() if u not in held})
            if int(remaining) == expected and not drift_users:
                return int(remaining), pending_units
            findings.append(
                {"check": "redis", "remaining": [int(remaining), expected], "users": drift_users}
            )
            if expected < 0:
                return int(remaining), pending_units  # oversold: nothing provable to set
            pipe.multi()
            pipe.hset(keys.state, "remaining", expected)
            pipe.delete(keys.users)
            if held:
                pipe.hset(keys.users, mapping={u: n for u, n in held.items() if n})
            pipe.execute()
            repairs.append({"redis_remaining": [int(remaining), expected]})
            # After EXEC: the Redis change is done and cannot share a transaction with this row.
            stock_movement_record(
                product_id=deal.product_id, kind=StockMovementKind.RECONCILE_REPAIR,
                deal_id=deal.id, deal_delta=expected - int(remaining), actor_id=actor_id,
                note="redis counter",
            )  # fmt: skip
            return expected, pending_units
        except redis.WatchError:
            findings.append({"check": "redis", "note": "changed during the check; retry later"})
            return None, 0


def deal_reconcile(
    *, deal_id: uuid.UUID, repair: bool = True, actor_id: uuid.UUID | None = None
) -> ReconciliationReport:
    """Checks one deal and repairs what can be proved; `actor_id` is the operator who asked
    (None for the beat). Repairs are audited as stock movements."""
    findings: list[dict] = []
    repairs: list[dict] = []
    deal, held = _repair_db_counter(deal_id, findings, repairs, actor_id)
    redis_remaining, pending_units = (None, 0)
    if deal.published_at and not deal.closed_at:
        try:
            redis_remaining, pending_units = _repair_redis(deal, findings, repairs, actor_id)
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
        repairs=repairs,
    )
    if findings:
        logger.warning("reconciliation of deal %s: %s; repaired %s", deal.id, findings, repairs)
    return report


def reconcile_live_deals() -> list[ReconciliationReport]:
    """Beat: every deal that is published and not closed, or closed within the last hour."""
    recent = timezone.now() - timezone.timedelta(hours=1)
    deals = Deal.objects.filter(published_at__isnull=False).exclude(closed_at__lt=recent)
    return [deal_reconcile(deal_id=d) for d in deals.values_list("id", flat=True)]
