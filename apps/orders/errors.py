"""Order domain errors (rendered as `{error, message, details}` by apps.core)."""

from apps.catalog.errors import InsufficientStock, UnknownProduct
from apps.core.errors import ApplicationError, Conflict, ErrorCode, NotFound

__all__ = ["InsufficientStock", "UnknownProduct"]  # re-exported: orders raise them too


class UnknownDeal(NotFound):
    """A deal named in a purchase's body does not exist: 404 DEAL_NOT_FOUND, so a client can
    tell it from an unknown product. (A deal named in the path is apps.deals.errors.DealNotFound,
    the plain NOT_FOUND.)"""

    code = ErrorCode.DEAL_NOT_FOUND
    default_message = "No such deal."


class InvalidDeal(ApplicationError):
    code = ErrorCode.INVALID_DEAL
    default_message = "The deal does not belong to this product."


class DealNotActive(ApplicationError):
    code = ErrorCode.DEAL_NOT_ACTIVE
    default_message = "The deal is not open for purchases."


class DealSoldOut(ApplicationError):
    code = ErrorCode.DEAL_SOLD_OUT
    default_message = "The deal is sold out."


class DealLimitExceeded(ApplicationError):
    code = ErrorCode.DEAL_LIMIT_EXCEEDED
    default_message = "This purchase would exceed the deal's per-shopper limit."


class NotAdmitted(ApplicationError):
    """The deal's waiting room is on and the purchase showed no valid admission (none, forged,
    another shopper's or deal's, expired, already used, or sent back to the line)."""

    code = ErrorCode.NOT_ADMITTED
    http_status = 403
    default_message = (
        "This deal sells through its waiting room: join the queue "
        "(POST /products/deals/{id}/queue) and buy with the admission your ticket gives you."
    )


class NotQueued(NotFound):
    code = ErrorCode.NOT_QUEUED
    default_message = (
        "You have no place in this deal's waiting room (never joined, left, bought, or your "
        "admission lapsed); join again."
    )


class QueueNotOpen(ApplicationError):
    code = ErrorCode.QUEUE_NOT_OPEN
    default_message = "This deal's waiting room is not open."


class IdempotencyKeyReused(Conflict):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    default_message = "This Idempotency-Key was already used with a different request body."


class CannotCancel(ApplicationError):
    code = ErrorCode.CANNOT_CANCEL
    default_message = "This order can no longer be cancelled."


class DeadLetterNotFound(NotFound):
    code = ErrorCode.DEAD_LETTER_NOT_FOUND
    default_message = "No such dead letter (already replayed or discarded)."


class CannotReplay(Conflict):
    code = ErrorCode.CANNOT_REPLAY
    default_message = "This reservation cannot be replayed."
