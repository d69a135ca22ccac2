import hashlib
import json
from dataclasses import asdict, dataclass
from uuid import UUID


@dataclass(frozen=True)
class LineInput:
    product_id: UUID
    quantity: int
    deal_id: UUID | None = None


@dataclass(frozen=True)
class OrderInput:
    items: tuple[LineInput, ...]
    shipping: dict | None = None
    idempotency_key: str | None = None

    @property
    def deal_line(self) -> LineInput | None:
        return self.items[0] if self.items[0].deal_id else None

    @property
    def request_hash(self) -> str:
        """Fingerprint of the body, to tell a retry (same body) from key reuse (different body)."""
        body = {
            "items": sorted(
                (str(i.product_id), str(i.deal_id or ""), i.quantity) for i in self.items
            ),
            "shipping": self.shipping or None,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def as_dict(self) -> dict:
        return asdict(self)
