"""Domain errors. Every error the API returns is one of these, rendered as
`{"error": code, "message": ..., "details": ...}` by apps.core.exception_handler."""

from typing import Any


class ApplicationError(Exception):
    code = "APPLICATION_ERROR"
    http_status = 400
    default_message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
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
    code = "NOT_FOUND"
    http_status = 404
    default_message = "Not found."


class Conflict(ApplicationError):
    code = "CONFLICT"
    http_status = 409


class ServiceUnavailable(ApplicationError):
    code = "SERVICE_UNAVAILABLE"
    http_status = 503
    default_message = "The service is temporarily unavailable; retry shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class RateLimited(ApplicationError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class ValidationFailed(ApplicationError):
    code = "VALIDATION_ERROR"
    http_status = 422
    default_message = "The request is invalid."
