"""The waiting room, for shoppers: join a deal's line, read the ticket, leave (the gate's
room.py does the work in Redis; this turns its answers into the contract's). Orders own it
because a lapsed state is rebuilt from the orders' books, as for a purchase."""

from collections.abc import Callable
from uuid import UUID

from django.utils import timezone

from apps.deals import gate
from apps.deals.errors import DealNotFound
from apps.deals.gate import RoomRefusal, Ticket, TicketState
from apps.deals.models import Deal, DealStatus

from ..errors import DealNotActive, DealSoldOut, NotQueued, QueueNotOpen
from .gate_state import deal_state_restore


def queue_join(*, user_id: UUID, deal_id: UUID) -> Ticket:
    """The shopper's place in the deal's line: taken now (`ticket.created`) or held already."""
    answer = _answer(gate.room_join, user_id=user_id, deal_id=deal_id)
    if answer == RoomRefusal.OFF:
        raise QueueNotOpen(
            "This deal has no waiting room: buy it directly.", details={"deal_id": str(deal_id)}
        )
    if answer == RoomRefusal.NOT_OPEN:
        raise QueueNotOpen(
            "The waiting room opens shortly before the start; join again then.",
            details={"deal_id": str(deal_id), "reason": "not_open_yet"},
        )
    assert isinstance(answer, Ticket)
    if answer.state == TicketState.SOLD_OUT:
        raise DealSoldOut(details={"deal_id": str(deal_id)})
    if answer.state == TicketState.CLOSED:
        raise DealNotActive(details={"deal_id": str(deal_id), "status": DealStatus.ENDED})
    return answer


def queue_ticket(*, user_id: UUID, deal_id: UUID) -> Ticket:
    """The shopper's ticket now: waiting, admitted, sold out or closed."""
    answer = _answer(gate.room_ticket, user_id=user_id, deal_id=deal_id)
    if not isinstance(answer, Ticket):  # no place, or no room (nobody has a place then)
        raise NotQueued(details={"deal_id": str(deal_id)})
    return answer


def queue_leave(*, user_id: UUID, deal_id: UUID) -> None:
    if not gate.room_leave(deal_id=deal_id, user_id=user_id):
        raise NotQueued(details={"deal_id": str(deal_id)})


def _answer(
    ask: Callable[..., Ticket | RoomRefusal], *, user_id: UUID, deal_id: UUID
) -> Ticket | RoomRefusal:
    answer = ask(deal_id=deal_id, user_id=user_id)
    if answer != RoomRefusal.NOT_LOADED:
        return answer
    # No state in Redis: a deal shoppers can't see, one that is over, or a lost state.
    deal = Deal.objects.select_related("product").filter(pk=deal_id).first()
    if deal is None or deal.published_at is None:
        raise DealNotFound()
    if deal.status_at(timezone.now()) == DealStatus.ENDED or deal.closed_at is not None:
        return Ticket(TicketState.CLOSED)
    deal_state_restore(deal)
    return ask(deal_id=deal_id, user_id=user_id)
