"""OpenAPI helpers shared by every app's apis.py."""

from drf_spectacular.utils import OpenApiResponse

from .errors import ErrorCode


def error_response(*codes: ErrorCode, note: str = "") -> OpenApiResponse:
    """An error response whose description names the `error` codes it can carry, taken from
    ErrorCode so the schema can't drift from what the API answers."""
    description = " / ".join(codes)
    return OpenApiResponse(description=f"{description} ({note})" if note else description)
