"""The console's landing page: deals live now, upcoming (with a countdown) and recently ended,
each with its sell-through, revenue, purchases per second, write backlog, dead letters and what
is failing, linking to its live page.

Bounded whatever the number of deals: each section lists at most SECTION_LIMIT deals (the totals
come from one aggregate); the orders app's figures come from one grouped query each
(OrdersConsole.sales_many, .last_reconciliations); the gate's from one pipelined round trip for
the deals that still have gate state (live, and ended but not closed). So five queries and one
Redis round trip for a thousand deals as for ten.
"""

from datetime import datetime, timedelta
from uuid import UUID

import redis
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Q
from django.db.models.functions import Least
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ErrorCode
from apps.core.formatting import console_time, money, zone_label

from . import gate
from .console import orders_console, purchase_answer, sell_through_pct
from .models import Deal, DealStatus
from .preflight import deal_preflight_offline

SECTION_LIMIT = 50  # deals per section; the changelist has them all
RECENT_DAYS = 7  # "recently ended": ended within these days
RATE_SECONDS = 60  # purchases per second: the mean over this many seconds


def _sections(now: datetime) -> dict[str, list[Deal]]:
    """Three queries, each served by an index on the deal's window and capped."""
    deals = Deal.objects.select_related("product")
    live = deals.in_window(now).order_by("ends_at", "id")
    upcoming = deals.running().filter(starts_at__gt=now).order_by("starts_at", "id")
    ended = (
        deals.published()
        .filter(Q(ended_at__isnull=False) | Q(ends_at__lte=now))
        # When it stopped selling: PostgreSQL's LEAST skips the NULL ended_at of a deal that
        # ran to its end.
        .annotate(over_at=Least("ended_at", "ends_at"))
        .filter(over_at__gt=now - timedelta(days=RECENT_DAYS))
        .order_by("-over_at", "id")
    )
    return {
        "live": list(live[:SECTION_LIMIT]),
        "upcoming": list(upcoming[:SECTION_LIMIT]),
        "ended": list(ended[:SECTION_LIMIT]),
    }


def _totals(now: datetime) -> dict[str, int]:
    """How many deals each section has in all (it lists at most SECTION_LIMIT): one query."""
    ended = Q(ended_at__isnull=False) | Q(ends_at__lte=now)
    recent = Q(ended_at__gt=now - timedelta(days=RECENT_DAYS)) | Q(
        ended_at__isnull=True, ends_at__gt=now - timedelta(days=RECENT_DAYS)
    )
    running = Q(published_at__isnull=False, ended_at__isnull=True, closed_at__isnull=True)
    return Deal.objects.aggregate(
        live=Count("id", filter=running & Q(starts_at__lte=now, ends_at__gt=now)),
        upcoming=Count("id", filter=running & Q(starts_at__gt=now)),
        ended=Count("id", filter=Q(published_at__isnull=False) & ended & recent),
    )


def _gate_figures(deal_ids: list[UUID], now: datetime) -> tuple[dict, str | None]:
    if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
        return {}, None  # PostgreSQL is the live counter; nothing is held in the gate
    try:
        figures = gate.deals_figures(deal_ids, now=int(now.timestamp()), seconds=RATE_SECONDS)
    except redis.RedisError as exc:
        return {}, f"Redis unreachable ({exc.__class__.__name__}): gate figures not shown"
    return figures, None


def deals_dashboard(*, now: datetime) -> dict:
    """The dashboard's sections and rows (see the module docstring for its cost)."""
    sections = _sections(now)
    listed = [deal for deals in sections.values() for deal in deals]
    held = [deal.pk for deal in listed if deal.closed_at is None and deal.starts_at <= now]
    figures, redis_error = _gate_figures(held, now)
    orders = orders_console()
    ids = [deal.pk for deal in listed]
    sales, reconciliations = orders.sales_many(ids), orders.last_reconciliations(ids)
    totals = _totals(now)
    return {
        "sections": [
            {
                "key": key,
                "title": title,
                "total": totals[key],
                "rows": [
                    _row(
                        deal,
                        figures.get(deal.pk),
                        sales[deal.pk],
                        reconciliations.get(deal.pk),
                        now=now,
                        redis_ok=redis_error is None,
                    )
                    for deal in sections[key]
                ],
            }  # fmt: skip
            for key, title in (
                ("live", "Live now"),
                ("upcoming", "Upcoming"),
                ("ended", f"Ended in the last {RECENT_DAYS} days"),
            )  # fmt: skip
        ],
        "limit": SECTION_LIMIT,
        "rate_seconds": RATE_SECONDS,
        "redis_error": redis_error,
        "server_time": console_time(now),
        "zone": zone_label(now),
        "currency": settings.CURRENCY,
    }


def _row(
    deal: Deal,
    figures: gate.DealFigures | None,
    sales: dict,
    reconciliation: dict | None,
    *,
    now: datetime,
    redis_ok: bool,
) -> dict:
    loaded = figures is not None and figures.loaded
    remaining = figures.remaining if figures and figures.loaded else deal.remaining_stock
    status = deal.status_at(now, remaining)
    failing = [f"{c.label}: {c.detail}" for c in deal_preflight_offline(deal) if not c.ok]
    if reconciliation and not reconciliation["ok"]:
        failing.append(f"Reconciliation found drift: {reconciliation['findings']}")
    if figures is not None and not loaded:
        answer = purchase_answer(deal, remaining=remaining, now=now, redis_ok=redis_ok)
        if answer["code"] in (None, ErrorCode.NOT_ADMITTED):  # None: a purchase would be accepted
            failing.append("Deal state not loaded in Redis: the next purchase rebuilds it")
    countdown = deal.starts_at if status == DealStatus.SCHEDULED else deal.ends_at
    return {
        "deal": deal,
        "status": status,
        "price": money(deal.deal_price),
        "starts_at": console_time(deal.starts_at),
        "ends_at": console_time(deal.ends_at),
        "ended_at": console_time(deal.ended_at or (deal.ends_at if deal.ends_at <= now else None)),
        "countdown_ms": int(countdown.timestamp() * 1000),
        "deal_stock": deal.deal_stock,
        "remaining": remaining,
        "units_sold": sales["units_sold"],
        "sell_through_pct": sell_through_pct(sales["units_sold"], deal.deal_stock),
        "revenue": money(sales["revenue"]),
        "per_s": figures.per_s if figures else None,
        "backlog": figures.backlog if figures else None,
        "dead_letters": figures.dead_letters if figures else None,
        "failing": failing,
        "live_url": reverse("admin:deals_deal_live", args=[deal.pk]),
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The admin's index: the dashboard above Django's list of apps (wired in flashdeals/urls.py
    ahead of the admin's own index, through admin_view: staff only). Users who may not view
    deals see the app list alone."""
    site = admin.site
    context = {
        **site.each_context(request),
        "title": site.index_title,
        "subtitle": None,
        "app_list": site.get_app_list(request),
    }
    if request.user.has_perm("deals.view_deal"):
        context["dashboard"] = deals_dashboard(now=timezone.now())
    request.current_app = site.name
    return TemplateResponse(request, "admin/deals/dashboard.html", context)
