"""What the operator's live deal page shows, read cheaply enough to refresh every few seconds
while the deal is under load: one Redis round trip (pipelined) and two small queries.

The page needs numbers only the orders app has (units sold, orders confirmed, the last
reconciliation) and actions only it can take (reconcile, replay or discard a dead letter).
Dependencies point deals <- orders, so, like the gate's holdings hook, the orders app registers
those functions here (apps/orders/admin.py, at admin autodiscovery) instead of deals importing
orders.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.redis import get_redis

from . import gate, stats
from .keys import deal_keys
from .models import Deal


@dataclass(frozen=True)
class OrdersConsole:
    """The orders app's part of the console (see the module docstring)."""

    sales: Callable[[UUID], dict]  # {units_sold, orders_confirmed, orders_cancelled, orders_failed}
    last_reconciliation: Callable[[UUID], dict | None]
    reconcile: Callable[..., dict]  # (deal_id=, actor_id=) -> report dict
    replay: Callable[..., object]  # (deal_id=, order_id=, actor_id=)
    discard: Callable[..., object]  # (deal_id=, order_id=, actor_id=)


_orders: OrdersConsole | None = None


def register_orders_console(console: OrdersConsole) -> None:
    global _orders
    _orders = console


def orders_console() -> OrdersConsole:
    if _orders is None:
        raise RuntimeError("apps.orders has not registered its console (is its admin loaded?)")
    return _orders


def _redis_snapshot(deal_id: UUID, *, now: int, seconds: int, dead_limit: int) -> dict:
    """Everything the page reads from Redis, in one pipelined round trip."""
    keys = deal_keys(deal_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hmget(keys.state, "remaining", "paused", "ended", "loaded_at")
    pipe.hlen(keys.pending)
    pipe.xlen(keys.stream)
    pipe.hlen(keys.dead)
    pipe.hscan(keys.dead, 0, count=dead_limit)
    pipe.hgetall(keys.outcomes)
    minutes = stats.queue_rate_reads(pipe, deal_id, now=now, seconds=seconds)
    replies = pipe.execute()
    state, backlog, stream_len, dead, (_, parked), totals = replies[:6]
    remaining = state[0]
    letters = sorted((json.loads(v) for v in parked.values()), key=lambda r: r.get("failed_at", ""))
    return {
        "loaded": remaining is not None,
        "remaining": int(remaining) if remaining is not None else None,
        "backlog": backlog,
        "stream_length": stream_len,
        "dead_letters": dead,
        "dead_letter_list": [
            {
                "order_id": r["order_id"],
                "user_id": r["user_id"],
                "quantity": r["quantity"],
                "failure_reason": r.get("failure_reason", ""),
                "failed_at": r.get("failed_at", ""),
            }
            for r in letters[:dead_limit]
        ],
        "outcomes": stats.outcome_totals(totals),
        "rate": stats.rate_series(replies[6 : 6 + minutes], now=now, seconds=seconds),
    }


def deal_live_snapshot(deal: Deal) -> dict:
    """The live page's JSON. `deal` comes with its product (select_related)."""
    seconds = settings.CONSOLE_RATE_WINDOW_SECONDS
    now = int(time.time())
    try:
        live = _redis_snapshot(deal.pk, now=now, seconds=seconds, dead_limit=20)
        redis_error = None
    except redis.RedisError as exc:
        live, redis_error = None, f"Redis unreachable: {exc.__class__.__name__}"
    orders = orders_console()
    sales = orders.sales(deal.pk)
    remaining = live["remaining"] if live and live["loaded"] else deal.remaining_stock
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        remaining = deal.remaining_stock  # PostgreSQL is the live counter then
    return {
        "deal_id": str(deal.pk),
        "product": deal.product.name,
        "status": deal.status_at(remaining=remaining),
        "deal_stock": deal.deal_stock,
        "remaining": remaining,
        "remaining_source": "redis" if live and live["loaded"] else "postgresql",
        "db_remaining": deal.remaining_stock,
        **sales,
        "redis": live,
        "redis_error": redis_error,
        "reconciliation": orders.last_reconciliation(deal.pk),
        "pipeline": settings.ORDER_PIPELINE,
        "server_time": timezone.now().isoformat(),
    }
