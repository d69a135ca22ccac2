"""The waiting room's test kit: a deal with the room on, shoppers who join, poll, leave and buy
through the HTTP API, and the admission invariant checked against the gate's own figures."""

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import token_pair_for
from apps.deals import gate
from apps.deals.models import Deal
from apps.orders.services.gate_state import deal_state_ensure

from .helpers import deal_line, make_deal


def room_deal(*, stock=10, rate=5, admit=60, overbook="1.00", starts_in=-timedelta(seconds=1),
              prequeue=600, limit=1, lasts=timedelta(hours=1), seed=None) -> Deal:  # fmt: skip
    """A published deal, loaded in the gate, selling through its waiting room. Times are from
    the (pinned) clock: `starts_in=timedelta(0)` starts it now, and a join at that instant
    admits nobody yet (the room has had no time to admit anyone)."""
    deal = make_deal(deal_stock=stock, per_user_limit=limit, starts_in=starts_in, lasts=lasts,
                     load=False)  # fmt: skip
    room = {"room_enabled": True, "room_rate": rate, "room_admission_seconds": admit,
            "room_overbooking": overbook, "room_prequeue_seconds": prequeue}  # fmt: skip
    if seed is not None:
        room["room_seed"] = seed
    Deal.objects.filter(pk=deal.pk).update(**room)
    deal.refresh_from_db()
    deal_state_ensure(deal)
    return deal


@dataclass
class Shopper:
    user: User
    token: str

    @property
    def id(self) -> str:
        return str(self.user.pk)

    @property
    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client

    def join(self, deal: Deal) -> Response:
        return self.client.post(f"/products/deals/{deal.id}/queue")

    def ticket(self, deal: Deal) -> Response:
        return self.client.get(f"/products/deals/{deal.id}/queue/me")

    def leave(self, deal: Deal) -> Response:
        return self.client.delete(f"/products/deals/{deal.id}/queue/me")

    def admission(self, deal: Deal) -> str:
        """Polls and returns the admission; the shopper must be admitted."""
        body = self.ticket(deal).json()
        assert body["state"] == "admitted", body
        return body["admission"]

    def buy(self, deal: Deal, admission: str | None = None, key: str | None = None) -> Response:
        headers = {}
        if admission is not None:
            headers["HTTP_ADMISSION"] = admission
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return self.client.post("/orders", deal_line(deal), format="json", **headers)


def shoppers(n: int) -> list[Shopper]:
    batch = uuid.uuid4().hex[:8]
    users = User.objects.bulk_create(
        [User(email=f"room-{batch}-{i}@example.com", name=f"Shopper {i}", password="!")
         for i in range(n)]
    )  # fmt: skip
    return [Shopper(u, token_pair_for(u).access_token) for u in users]


def state_of(response: Response) -> tuple[str, int | None]:
    """A ticket as (state, position)."""
    assert response.status_code in (200, 201), response.json()
    body = response.json()
    return body["state"], body["position"]


def assert_within_cap(deal: Deal) -> gate.RoomFigures:
    """The admission invariant: admissions outstanding (the expiry set's ZCARD) never exceed
    floor(remaining x overbooking), remaining as the gate counts it."""
    figures = gate.room_figures(deal.id)
    remaining = gate.deal_remaining([deal.id])[deal.id]
    cap = math.floor(remaining * Decimal(deal.room_overbooking))
    assert figures.admitted_now <= cap, (figures, remaining)
    return figures
