"""Go-live preflight: can this deal sell, and will its orders be written, if it opens now?

Shown before publishing and on the live page. Each check is cheap except the worker ping, which
waits at most PREFLIGHT_PING_TIMEOUT; the live page therefore polls the preflight on a slower
timer than the numbers. A failing check does not block publishing: the operator may know better
(a worker starting, beat restarted elsewhere), so the console asks for an explicit confirmation.
"""

from dataclasses import asdict, dataclass

import redis
from django.conf import settings
from django.utils import timezone

from apps.catalog.models import StockMovement, StockMovementKind
from apps.core.errors import ErrorCode
from apps.core.tasks import beat_heartbeat_age
from flashdeals.celery import app

from . import gate
from .console import orders_console
from .models import Deal


@dataclass(frozen=True)
class Check:
    name: str
    label: str
    ok: bool
    detail: str


def _redis_state(deal: Deal) -> Check:
    label = "Deal state loaded in Redis"
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        return Check("state", label, True, f"not needed: pipeline {settings.ORDER_PIPELINE}")
    try:
        loaded = gate.deal_state_loaded(deal.pk)
    except redis.RedisError as exc:
        return Check("state", label, False, f"Redis unreachable ({exc.__class__.__name__})")
    if loaded:
        return Check("state", label, True, "loaded")
    if deal.published_at is None:
        return Check("state", label, True, "Redis reachable; loaded when published")
    # Without state the API answers from PostgreSQL (deal_checked): a refusal needs no state; a
    # purchase it would accept rebuilds the state first (others answer 503 meanwhile).
    answer = orders_console().purchase_answer(
        deal, remaining=deal.remaining_stock, now=timezone.now()
    )
    # None: accepted; NOT_ADMITTED: admitted shoppers buy
    if answer["code"] not in (None, ErrorCode.NOT_ADMITTED):
        purchases = f"purchases answer {answer['status']} {answer['code']}"
        return Check("state", label, True, f"not needed: {purchases} without it")
    return Check("state", label, False, "not loaded: the next purchase rebuilds it from "
                 "PostgreSQL; purchases meanwhile answer 503")  # fmt: skip


def _scripts() -> Check:
    """Missing scripts (Redis restarted or flushed) are loaded now."""
    label = "Lua scripts loaded"
    try:
        ok = gate.scripts_preload()
    except redis.RedisError as exc:
        return Check("scripts", label, False, f"Redis unreachable ({exc.__class__.__name__})")
    return Check("scripts", label, ok, ", ".join(gate.SCRIPT_NAMES) if ok else "could not load")


def _worker() -> Check:
    label = "A Celery worker is consuming"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
            replies = app.control.ping(
                timeout=settings.PREFLIGHT_PING_TIMEOUT, limit=1, connection=conn
            )
    except Exception as exc:  # noqa: BLE001 - any failure means no worker we can see
        return Check("worker", label, False, f"broker unreachable ({exc.__class__.__name__})")
    if not replies:
        return Check("worker", label, False, "no worker answered a ping: orders stay pending")
    return Check("worker", label, True, ", ".join(name for r in replies for name in r))


def _beat() -> Check:
    label = "Celery beat is alive"
    try:
        age = beat_heartbeat_age()
    except redis.RedisError as exc:
        return Check("beat", label, False, f"Redis unreachable ({exc.__class__.__name__})")
    if age is None:
        return Check("beat", label, False, "no heartbeat: state preload and closing won't run")
    ok = age <= settings.BEAT_HEARTBEAT_MAX_AGE
    return Check("beat", label, ok, f"last heartbeat {age:.0f} s ago")


def _quota(deal: Deal) -> Check:
    label = "Quota carved from product stock"
    if deal.published_at is None:
        stock = deal.product.stock
        ok = stock >= deal.deal_stock
        detail = f"{stock} in stock, {deal.deal_stock} to carve on publish"
        return Check("quota", label, ok, detail if ok else f"only {detail}")
    if deal.closed_at is not None:
        return Check("quota", label, True, "closed: unsold units went back to the product")
    carved = (
        StockMovement.objects.filter(deal_id=deal.pk, kind=StockMovementKind.DEAL_CARVE)
        .values_list("deal_delta", "created_at")
        .first()
    )
    if carved:
        when = timezone.localtime(carved[1])
        return Check("quota", label, True, f"{carved[0]} units carved at {when:%Y-%m-%d %H:%M}")
    when = timezone.localtime(deal.published_at)
    return Check("quota", label, True, f"published at {when:%Y-%m-%d %H:%M}")


def _terms(deal: Deal) -> Check:
    label = "Period and price"
    now = timezone.now()
    if deal.ends_at <= now:
        return Check("terms", label, deal.published_at is not None, "the end is in the past")
    if deal.deal_price >= deal.product.price:
        return Check("terms", label, False, f"price not below the list price {deal.product.price}")
    return Check("terms", label, True, f"{deal.deal_price} < {deal.product.price}; ends in future")


def _room(deal: Deal) -> Check:
    label = "Waiting room"
    if not deal.room_enabled:
        return Check("room", label, True, "off: shoppers buy directly")
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        return Check("room", label, False, f"needs a Redis pipeline, not {settings.ORDER_PIPELINE}"
                     ": purchases answer 403 NOT_ADMITTED")  # fmt: skip
    rate = deal.room_rate or f"automatic ({settings.WAITING_ROOM_AUTO_RATE})"
    return Check("room", label, True, f"on: {rate} shoppers/s, {deal.room_admission_seconds} s "
                 f"to buy, overbooking x{deal.room_overbooking}")  # fmt: skip


def _no_eviction() -> Check:
    label = "The gate's Redis never evicts and keeps an AOF"
    try:
        gate.check_gate_server()
    except gate.GateServerUnsafe as exc:
        return Check("eviction", label, False, str(exc))
    except redis.RedisError as exc:
        return Check("eviction", label, False, f"Redis unreachable ({exc.__class__.__name__})")
    return Check("eviction", label, True, "maxmemory-policy noeviction, appendonly yes")


def deal_preflight(deal: Deal) -> list[Check]:
    """All checks for `deal` (with its product loaded)."""
    return [
        _terms(deal), _quota(deal), _redis_state(deal), _room(deal), _no_eviction(), _scripts(),
        _worker(), _beat(),
    ]  # fmt: skip


def deal_preflight_offline(deal: Deal) -> list[Check]:
    """The checks that need neither a query nor Redis nor a worker: the dashboard runs them for
    every deal it lists."""
    return [_terms(deal), _room(deal)]


def preflight_ok(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


def preflight_data(checks: list[Check]) -> dict:
    return {"ok": preflight_ok(checks), "checks": [asdict(check) for check in checks]}
