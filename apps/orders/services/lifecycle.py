"""Deal lifecycle around the gate: load state ahead of the start, close deals after the end."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.services import deal_close

from .drain import stream_drain
from .gate_state import deal_state_ensure

PRELOAD = timedelta(minutes=10)
ROOM_PRELOAD = timedelta(hours=1, minutes=1)  # Deal.room_prequeue_seconds is at most an hour


def deals_prepare() -> dict[str, list[str]]:
    """Beat. Loads (or rebuilds) the state of deals starting within PRELOAD or live now, and
    closes deals that ended: sales stop in Redis first, the stream is drained, then the unsold
    units go back to the product (apps.deals.services.deal_close, exactly once)."""
    now = timezone.now()
    loaded = []
    # A deal with a waiting room is loaded before its pre-queue window opens (at most an hour).
    upcoming = Deal.objects.running().filter(
        Q(starts_at__lte=now + PRELOAD) | Q(room_enabled=True, starts_at__lte=now + ROOM_PRELOAD),
        ends_at__gt=now,
    )
    for deal in upcoming.select_related("product"):
        if deal_state_ensure(deal):
            loaded.append(str(deal.id))
    closed = []
    over = Deal.objects.published_unclosed().filter(Q(ends_at__lte=now) | Q(ended_at__isnull=False))
    for deal in over:
        gate.deal_state_sync(deal)
        if gate.deal_backlog(deal.id):
            stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
        if deal_close(deal_id=deal.id) is not None:
            closed.append(str(deal.id))
    # Each load logged its own line (apps.deals.gate.state) and each close its audit line
    # (apps.core.audit: "deal ... by system: close: N unsold units back to the product").
    return {"loaded": loaded, "closed": closed}
