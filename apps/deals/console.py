"""What the operator's live deal page shows, read cheaply enough to refresh every few seconds
while the deal is under load: two Redis round trips (the pipelined counts, the waiting room's
figures among them; the reservations pending too long; a third when any is) and two small
queries.

The page needs numbers only the orders app has (units sold, orders confirmed, the last
reconciliation) and actions only it can take (reconcile, replay or discard a dead letter).
Dependencies point deals <- orders, so the orders app registers those functions here from
`OrdersConfig.ready()` instead of deals importing orders (docs/architecture.md, "Apps and their
direction").
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from apps.core.errors import ErrorCode
from apps.core.formatting import console_time, money, zone_label

from . import gate
from .models import Deal, DealStatus
from .report import DealReport


@dataclass(frozen=True)
class OrdersConsole:
    """The orders app's part of the console (see the module docstring)."""

    # {units_sold, revenue, orders_confirmed, orders_cancelled, orders_failed}
    sales: Callable[[UUID], dict]
    sales_many: Callable[[Iterable[UUID]], dict[UUID, dict]]  # the same, one grouped query
    last_reconciliation: Callable[[UUID], dict | None]
    last_reconciliations: Callable[[Iterable[UUID]], dict[UUID, dict]]  # one query
    # (deal, remaining=, now=) -> {status, code, detail}: what POST /orders answers now
    purchase_answer: Callable[..., dict]
    reconcile: Callable[..., dict]  # (deal_id=, actor_id=) -> report dict
    replay: Callable[..., object]  # (deal_id=, order_id=, actor_id=)
    discard: Callable[..., object]  # (deal_id=, order_id=, actor_id=)
    report: Callable[[Deal], DealReport]  # the post-sale report (apps.deals.report)


_orders: OrdersConsole | None = None


def register_orders_console(console: OrdersConsole) -> None:
    global _orders
    _orders = console


def orders_console() -> OrdersConsole:
    if _orders is None:
        # Registered by OrdersConfig.ready(), which Django runs before serving anything.
        raise ImproperlyConfigured("The live console needs apps.orders in INSTALLED_APPS.")
    return _orders


OVERDUE_LIMIT = 50  # rows of reservations pending too long; the count covers all of them
ROOM_RECENT_SECONDS = 10  # the "admitted per second" figure: the mean over the last seconds


def deal_live_snapshot(deal: Deal) -> dict:
    """The live page's JSON. `deal` comes with its product (select_related). Ages and the
    rate window are measured against one clock reading, the `server_time` it reports."""
    seconds = settings.CONSOLE_RATE_WINDOW_SECONDS
    moment = timezone.now()
    try:
        counts = gate.deal_live_counts(
            deal.pk, now=int(moment.timestamp()), seconds=seconds, dead_limit=20
        )
        threshold = settings.CONSOLE_PENDING_OVERDUE_SECONDS
        overdue = gate.deal_pending_overdue(
            deal.pk, now=moment, older_than_s=threshold, limit=OVERDUE_LIMIT
        )
        figures = counts.pop("room")  # shown in the room's own part, below
        live: dict | None = {
            **counts,
            "overdue": {
                "threshold_s": threshold,
                "count": overdue.count,
                "list": [asdict(r) for r in overdue.reservations],
            },
        }
        redis_error = None
    except redis.RedisError as exc:
        live, figures = None, None
        redis_error = f"Redis unreachable: {exc.__class__.__name__}"
    orders = orders_console()
    sales = orders.sales(deal.pk)
    remaining = live["remaining"] if live and live["loaded"] else deal.remaining_stock
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        remaining = deal.remaining_stock  # PostgreSQL is the live counter then
    status = deal.status_at(moment, remaining)
    if live:
        for row in live["overdue"]["list"]:
            row["accepted_at_text"] = _time_text(row["accepted_at"])
        for row in live["dead_letter_list"]:
            row["failed_at_text"] = _time_text(row["failed_at"])
    reconciliation = orders.last_reconciliation(deal.pk)
    if reconciliation:
        reconciliation["created_at_text"] = _time_text(reconciliation["created_at"])
    return {
        "deal_id": str(deal.pk),
        "product": deal.product.name,
        "status": status,
        "purchase": purchase_answer(
            deal, remaining=remaining, now=moment, redis_ok=live is not None
        ),
        "currency": settings.CURRENCY,
        "deal_price": deal.deal_price,
        "deal_price_text": money(deal.deal_price),
        "list_price_text": money(deal.product.price),
        "revenue_text": money(sales["revenue"]),
        "sell_through_pct": sell_through_pct(sales["units_sold"], deal.deal_stock),
        "starts_at": console_time(deal.starts_at),
        "ends_at": console_time(deal.ends_at),
        "ended_at": console_time(deal.ended_at),
        "zone": zone_label(moment),
        "deal_stock": deal.deal_stock,
        "remaining": remaining,
        "remaining_source": "redis" if live and live["loaded"] else "postgresql",
        "db_remaining": deal.remaining_stock,
        **sales,
        "redis": live,
        "redis_error": redis_error,
        "room": _room(deal, figures, live["rate"]["admitted"] if live else None, status),
        "reconciliation": reconciliation,
        "pipeline": settings.ORDER_PIPELINE,
        "server_time": moment.isoformat(),
        "server_time_text": console_time(moment, date=False),
    }


def purchase_answer(deal: Deal, *, remaining: int, now: datetime, redis_ok: bool) -> dict:
    """What POST /orders answers now for one unit of `deal` (OrdersConsole.purchase_answer),
    or the gate's 503 while Redis is unreachable in a Redis pipeline: the gate fails closed
    before anything else is decided."""
    if not redis_ok and settings.ORDER_PIPELINE in gate.REDIS_PIPELINES:
        return {"status": 503, "code": ErrorCode.SERVICE_UNAVAILABLE,
                "detail": "The gate (Redis) is unreachable: purchases fail closed."}  # fmt: skip
    return orders_console().purchase_answer(deal, remaining=remaining, now=now)


def sell_through_pct(units_sold: int, deal_stock: int) -> float:
    """Units sold (PostgreSQL, orders holding units) as a percentage of the quota, one decimal."""
    return round(100 * units_sold / deal_stock, 1) if deal_stock else 0.0


def _time_text(value: str | None) -> dict | None:
    """An ISO 8601 string from a presenter, as apps.core.formatting.console_time shows it."""
    return console_time(datetime.fromisoformat(value)) if value else None


def _room(deal: Deal, figures: dict | None, admitted: list[int] | None, status: str) -> dict:
    """The waiting room's part of the page: the operator's settings as the gate applies them
    (the rate an "automatic" deal really admits at), the room's figures and shoppers admitted
    per second over the rate window (None when Redis is unreachable), and the seed of the
    pre-queue's draw once the deal has ended (secret before: it would tell who comes first)."""
    return {
        "enabled": deal.room_enabled,
        "shown": deal.room_enabled or bool(figures and figures["joins"]),  # the page's panel
        "rate": deal.room_rate or settings.WAITING_ROOM_AUTO_RATE,
        "rate_automatic": not deal.room_rate,
        "admission_s": deal.room_admission_seconds,
        "overbooking": str(deal.room_overbooking),
        "prequeue_s": deal.room_prequeue_seconds,
        "figures": figures,  # gate.RoomFigures
        "admitted_per_s": admitted,  # per second from redis.rate.start, oldest first
        "admitted_recent_per_s": round(
            sum(admitted[-ROOM_RECENT_SECONDS:]) / ROOM_RECENT_SECONDS, 1
        )
        if admitted
        else None,
        "recent_s": ROOM_RECENT_SECONDS,
        "seed": deal.room_seed if status == DealStatus.ENDED else None,
    }
