"""What a caller asks `order_place` for, checked once here whatever the caller (API, admin,
tests): the API's serializers word the errors for shoppers, this keeps services honest."""

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TypedDict
from uuid import UUID

from apps.core.errors import ValidationFailed


class Keyed(TypedDict):
    idempotency_key: str | None
    request_hash: str


@dataclass(frozen=True)
class LineInput:
    product_id: UUID
    quantity: int
    deal_id: UUID | None = None


@dataclass(frozen=True)
class DealLine:
    """The one line of a deal order."""

    product_id: UUID
    quantity: int
    deal_id: UUID


@dataclass(frozen=True)
class OrderInput:
    items: tuple[LineInput, ...]
    shipping: dict | None = None
    idempotency_key: str | None = None
    # The waiting room's signed admission (the `Admission` header). Not part of the body's
    # fingerprint: a retry may carry a newer one.
    admission: str | None = None

    def __post_init__(self) -> None:
        if not self.items:
            raise ValidationFailed(details={"items": ["At least one item."]})
        if len(self.items) > 1 and any(line.deal_id for line in self.items):
            # A deal order is one line: the pipelines sell exactly that line.
            raise ValidationFailed(
                details={"items": ["An order with a deal item has exactly one item."]}
            )

    @cached_property
    def deal_line(self) -> "DealLine | None":
        """The deal's line of a deal order (then the only line), else None."""
        line = self.items[0]
        if line.deal_id is None:
            return None
        return DealLine(product_id=line.product_id, quantity=line.quantity, deal_id=line.deal_id)

    @property
    def keyed(self) -> "Keyed":
        """What tells a retry from a new request: the key and the body's fingerprint."""
        return {"idempotency_key": self.idempotency_key, "request_hash": self.request_hash}

    @cached_property
    def request_hash(self) -> str:
        """Fingerprint of the body, to tell a retry (same body) from key reuse (different body).
        Computed once: the idempotency lookup and the written row both read it."""
        body = {
            "items": sorted(
                (str(i.product_id), str(i.deal_id or ""), i.quantity) for i in self.items
            ),
            "shipping": self.shipping or None,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]
