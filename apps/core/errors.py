"""Domain errors. Every error the API returns is one of these, rendered as
`{"error": code, "message": ..., "details": ...}` by apps.core.exception_handler.

`ErrorCode` is the one list of codes the API (and the operator console's JSON) can answer, as
in Zulip's exceptions.py: every error class, the exception handler, the metrics endpoint, the
console and the OpenAPI descriptions take their codes from it, never from a string literal, so
a code is spelled once and `grep ErrorCode.DEAL_SOLD_OUT` finds every place that answers it.
The values are the wire contract (clients, k6 scripts and tests match on them): never change
one. Two error classes never share a name (apps/core/tests/test_errors.py checks both).
"""

from enum import StrEnum, unique
from typing import Any


@unique
class ErrorCode(StrEnum):
    """Every `error` code a response body can carry. Grouped by who raises it."""

    # apps.core: the generic errors and the exception handler (DRF's and Django's own errors)
    APPLICATION_ERROR = "APPLICATION_ERROR"  # ApplicationError raised without a subclass
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"  # no credentials on a protected route
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"  # unknown path, or an id in the path that names nothing visible
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    CONFLICT = "CONFLICT"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"  # body over DATA_UPLOAD_MAX_MEMORY_SIZE
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # apps.accounts
    EMAIL_EXISTS = "EMAIL_EXISTS"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"  # bad or expired token (JWT, refresh or metrics token)
    # apps.catalog
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"  # a product id in a request body names nothing
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    PRICE_NOT_ABOVE_DEAL = "PRICE_NOT_ABOVE_DEAL"  # a price at or below an open deal's price
    # apps.deals
    INVALID_PERIOD = "INVALID_PERIOD"
    INVALID_DEAL_STATE = "INVALID_DEAL_STATE"
    # apps.orders
    DEAL_NOT_FOUND = "DEAL_NOT_FOUND"  # a deal id in a request body names nothing
    INVALID_DEAL = "INVALID_DEAL"
    DEAL_NOT_ACTIVE = "DEAL_NOT_ACTIVE"
    DEAL_SOLD_OUT = "DEAL_SOLD_OUT"
    DEAL_LIMIT_EXCEEDED = "DEAL_LIMIT_EXCEEDED"
    NOT_ADMITTED = "NOT_ADMITTED"  # the deal's waiting room is on: buy with a valid admission
    NOT_QUEUED = "NOT_QUEUED"  # GET/DELETE of a waiting-room ticket the shopper doesn't hold
    QUEUE_NOT_OPEN = "QUEUE_NOT_OPEN"  # a join with no room on the deal, or before it opens
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CANNOT_CANCEL = "CANNOT_CANCEL"
    DEAD_LETTER_NOT_FOUND = "DEAD_LETTER_NOT_FOUND"
    CANNOT_REPLAY = "CANNOT_REPLAY"


class ApplicationError(Exception):
    code: ErrorCode = ErrorCode.APPLICATION_ERROR
    http_status = 400
    default_message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.headers = headers or {}
        super().__init__(self.message)


class NotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = 404
    default_message = "Not found."


class Conflict(ApplicationError):
    code = ErrorCode.CONFLICT
    http_status = 409


class ServiceUnavailable(ApplicationError):
    code = ErrorCode.SERVICE_UNAVAILABLE
    http_status = 503
    default_message = "The service is temporarily unavailable; retry shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class RateLimited(ApplicationError):
    code = ErrorCode.RATE_LIMITED
    http_status = 429
    default_message = "Too many requests; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class PayloadTooLarge(ApplicationError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    http_status = 413
    default_message = "The request body is larger than this API accepts."


class ValidationFailed(ApplicationError):
    code = ErrorCode.VALIDATION_ERROR
    http_status = 422
    default_message = "The request is invalid."
