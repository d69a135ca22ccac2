"""What POST /orders and GET /orders/{id} answer: a written order, or a reservation Redis
holds that PostgreSQL does not have yet (or never will: dead-lettered)."""

from dataclasses import dataclass, field

from apps.deals.gate import Reservation, ReservationState

from .models import Order, OrderItem, OrderStatus


@dataclass(frozen=True)
class PlacedOrder:
    """Built with `written` or `reserved`. A reservation is answered as is: building model
    instances for it would cost the async purchase more than the reservation itself."""

    order: Order | None = None
    items: list[OrderItem] = field(default_factory=list)
    reservation: Reservation | None = None
    status: str = ""
    accepted_async: bool = False  # 202: accepted, written by the stream writer shortly

    @classmethod
    def written(cls, order: Order) -> "PlacedOrder":
        """`order` comes with its items prefetched (or they are read now)."""
        return cls(order=order, items=list(order.items.all()), status=order.status)

    @classmethod
    def reserved(
        cls, reservation: Reservation, state: ReservationState | OrderStatus
    ) -> "PlacedOrder":
        """pending (202, the writer confirms it shortly), failed (dead-lettered) or confirmed
        (the `redis` pipeline, which has just written it)."""
        return cls(
            reservation=reservation,
            status=str(state),
            accepted_async=state == ReservationState.PENDING,
        )
