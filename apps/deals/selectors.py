"""Deal reads. `*_data` selectors return public bodies: cached static part + live overlay."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from apps.catalog.cache import CATALOG, DEALS, cache_aside
from apps.core.pagination import Page

from .errors import DealNotFound
from .models import Deal
from .presenters import deal_data, deals_live


def deal_get(*, deal_id: UUID) -> Deal:
    """A published deal with its product. Drafts are the operator's work in progress: shoppers get
    the same 404 as for an id that does not exist."""
    deal = Deal.objects.published().select_related("product").filter(pk=deal_id).first()
    if deal is None:
        raise DealNotFound()
    return deal


def deals_open(*, now: datetime) -> QuerySet[Deal]:
    """Deals whose sale window is open now: published, started, not past ends_at, not ended
    early. Includes `paused` and `sold_out` ones (shoppers see them as such). Served by the
    partial index deal_open_ends_idx, in ends_at order (soonest to close first)."""
    return Deal.objects.in_window(now).order_by("ends_at", "id")


def deal_list_active(*, page: Page, now: datetime | None = None) -> tuple[list[Deal], int]:
    """One page of open deals and the total: two queries whatever the page size."""
    queryset = deals_open(now=now or timezone.now())
    total = queryset.count()
    if page.offset >= total:
        return [], total
    window = queryset.select_related("product")[page.offset : page.offset + page.size]
    return list(window), total


def seconds_until_next_transition(*, now: datetime) -> int:
    """Seconds until the set of open deals changes by the clock alone (a published deal starts or
    one ends), capped at the cache TTL. Operator actions need no such bound: they bump the deals
    version. One query."""
    bounds = (
        Deal.objects.running()
        .filter(ends_at__gt=now)
        .aggregate(
            next_end=Min("ends_at"), next_start=Min("starts_at", filter=Q(starts_at__gt=now))
        )
    )
    seconds = settings.CATALOG_CACHE_TTL
    for moment in bounds.values():
        if moment is not None:
            seconds = min(seconds, int((moment - now).total_seconds()))
    return seconds


def deal_list_active_data(*, page: Page) -> dict[str, Any]:
    """The `{items, total, page, size}` body of open deals. The cached page expires no later than
    the next start/end of any deal, so it never lists a deal that has closed or misses one that
    opened; remaining_stock and status are always computed at response time."""
    now = timezone.now()

    def compute() -> dict[str, Any]:
        deals, total = deal_list_active(page=page, now=now)
        return page.body([deal_data(deal) for deal in deals], total)

    body = cache_aside(
        scopes=[CATALOG, DEALS],
        key=("deals-open", page.page, page.size),
        compute=compute,
        ttl=lambda _body: seconds_until_next_transition(now=now),
    )
    return {**body, "items": deals_live(body["items"])}


def deal_data_get(*, deal_id: UUID) -> dict[str, Any]:
    item = cache_aside(
        scopes=[CATALOG, DEALS],
        key=("deal", deal_id),
        compute=lambda: deal_data(deal_get(deal_id=deal_id)),
    )
    return deals_live([item])[0]
