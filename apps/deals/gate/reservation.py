"""The values the gate hands out: a `Reservation` (an accepted purchase, not yet or never an
order row) and the `Outcome` of every answer reserve.lua and replay.lua give.

A reservation is stored as JSON in the deal's `pending` hash, its stream and, if it can't be
written, its `dead` hash. reserve.lua fills in the deal's fields (deal_id, product_id,
product_name, unit_price) from the state hash, so the price is always the server's.
"""

import json
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from apps.core.errors import ErrorCode


class Outcome(StrEnum):
    """reserve.lua's (and replay.lua's) first reply element."""

    OK = "OK"
    DUPLICATE = "DUPLICATE"  # same shopper + key + body: the existing order
    KEY_REUSED = "KEY_REUSED"  # same shopper + key, another body
    NOT_LOADED = "NOT_LOADED"  # no state in Redis: fail closed until rebuilt
    WRONG_PRODUCT = "WRONG_PRODUCT"
    NOT_STARTED = "NOT_STARTED"
    ENDED = "ENDED"
    PAUSED = "PAUSED"
    SOLD_OUT = "SOLD_OUT"
    INSUFFICIENT = "INSUFFICIENT"  # fewer units left than asked for
    LIMIT = "LIMIT"  # over the deal's per-user limit
    # The waiting room is on and no valid admission was shown. reserve.lua's reply, spelled as
    # the error code it becomes (codes come from the enum only, test_errors).
    NOT_ADMITTED = ErrorCode.NOT_ADMITTED.value
    GONE = "GONE"  # replay.lua: no such dead letter


class ReservationState(StrEnum):
    """Where Redis holds a reservation that PostgreSQL does not have (yet)."""

    PENDING = "pending"  # accepted, waiting for the writer
    FAILED = "failed"  # dead-lettered: its units went back, the operator decides


@dataclass(frozen=True)
class DealTerms:
    """What a reservation copies from its deal (the database pipelines, which read the row)."""

    deal_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    unit_price: int

    def fields(self) -> dict[str, Any]:
        return {
            "deal_id": str(self.deal_id),
            "product_id": str(self.product_id),
            "product_name": self.product_name,
            "unit_price": self.unit_price,
        }


@dataclass(frozen=True)
class Reservation:
    order_id: str
    item_id: str
    user_id: str
    quantity: int
    created_at: str  # ISO 8601, the web server's clock at acceptance
    request_hash: str = ""
    idempotency_key: str | None = None
    shipping: dict[str, str] | None = None
    # Filled in by reserve.lua from the deal's state:
    deal_id: str = ""
    product_id: str = ""
    product_name: str = ""
    unit_price: int = 0
    # Set when dead-lettered:
    failure_reason: str = ""
    failed_at: str = ""

    @classmethod
    def new(
        cls,
        *,
        user_id: uuid.UUID,
        quantity: int,
        created_at: datetime,
        request_hash: str,
        idempotency_key: str | None,
        shipping: dict[str, str] | None,
        deal: "DealTerms | None" = None,
    ) -> "Reservation":
        """A fresh reservation with its order and item ids issued now, before anything is
        stored, so every later write of it is idempotent. `deal` is left out when reserve.lua
        fills the deal's terms in from the gate's state."""
        return cls(
            order_id=str(uuid.uuid4()),
            item_id=str(uuid.uuid4()),
            user_id=str(user_id),
            quantity=quantity,
            created_at=created_at.isoformat(),
            request_hash=request_hash,
            idempotency_key=idempotency_key,
            shipping=shipping or None,
            **(deal.fields() if deal else {}),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Reservation":
        """Fields this version does not know (written by a newer one, during a rolling deploy)
        are left out rather than refused: a reservation must never become unreadable."""
        data = json.loads(raw)
        return cls(**{name: data[name] for name in _FIELDS if name in data})

    def to_json(self) -> str:
        return json.dumps(
            # __dict__, not asdict(): no deep copy on the purchase path (a quarter of the cost)
            {k: v for k, v in self.__dict__.items() if v not in ("", None)},
            separators=(",", ":"),
        )

    def failed(self, reason: str, at: datetime) -> "Reservation":
        return replace(self, failure_reason=reason[:500], failed_at=at.isoformat())

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity

    @property
    def accepted_at(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def idempotency_field(self) -> str | None:
        """Its field in the deal's idem hash, for a rebuild."""
        return f"{self.user_id}:{self.idempotency_key}" if self.idempotency_key else None


_FIELDS = frozenset(field.name for field in fields(Reservation))
