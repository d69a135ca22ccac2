from apps.catalog.errors import InsufficientStock
from apps.catalog.errors import UnknownProduct as ProductNotFound
from apps.core.errors import ApplicationError, Conflict, NotFound

__all__ = ["InsufficientStock", "ProductNotFound"]  # re-exported: orders raise them too


class DealNotFound(NotFound):
    code = "DEAL_NOT_FOUND"
    default_message = "No such deal."


class InvalidDeal(ApplicationError):
    code = "INVALID_DEAL"
    default_message = "The deal does not belong to this product."


class DealNotActive(ApplicationError):
    code = "DEAL_NOT_ACTIVE"
    default_message = "The deal is not open for purchases."


class DealSoldOut(ApplicationError):
    code = "DEAL_SOLD_OUT"
    default_message = "The deal is sold out."


class DealLimitExceeded(ApplicationError):
    code = "DEAL_LIMIT_EXCEEDED"
    default_message = "This purchase would exceed the deal's per-shopper limit."


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was already used with a different request body."


class CannotCancel(ApplicationError):
    code = "CANNOT_CANCEL"
    default_message = "This order can no longer be cancelled."


class DeadLetterNotFound(NotFound):
    code = "DEAD_LETTER_NOT_FOUND"
    default_message = "No such dead letter (already replayed or discarded)."


class CannotReplay(Conflict):
    code = "CANNOT_REPLAY"
    default_message = "This reservation cannot be replayed."
