"""OpenAPI helpers shared by every app's apis.py: the error body as a component, and the errors
every operation can answer whatever its own `@extend_schema` lists.

The schema says what each operation really answers (docs/security.md, "Fuzzing"): the fuzzer
(apps/core/tests/test_fuzz.py) fails on any status, content type or body the schema does not
document. An API declares its own domain errors (`error_response(ErrorCode.DEAL_SOLD_OUT)`);
`ContractAutoSchema` adds the ones that come from the request's shape and the view's auth, which
no view raises itself: a bad token, a missing one, a staff-only route, an unknown id in the
path, a body that is not JSON, too large or invalid, an `Accept` the API cannot answer.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

from .errors import ErrorCode


class ErrorSerializer(serializers.Serializer):
    """The contract's error body (`{error, message, details}`), for every 4xx and 5xx of every
    operation."""

    error = serializers.ChoiceField(
        choices=[code.value for code in ErrorCode],
        help_text="A stable UPPER_SNAKE code (apps.core.errors.ErrorCode); clients match on it.",
    )
    message = serializers.CharField(help_text="Human text; may change, never parse it.")
    details = serializers.DictField(
        allow_null=True,
        help_text="Per-field messages for VALIDATION_ERROR, context for others, or null.",
    )


def error_response(*codes: ErrorCode, note: str = "") -> OpenApiResponse:
    """An error response with the contract's body, whose description names the `error` codes it
    can carry, taken from ErrorCode so the schema can't drift from what the API answers."""
    description = " / ".join(codes)
    return OpenApiResponse(
        response=ErrorSerializer,
        description=f"{description} ({note})" if note else description,
    )


def _requires_login(permissions: list[Any]) -> bool:
    return any(not isinstance(permission, AllowAny) for permission in permissions)


def _may_forbid(permissions: list[Any]) -> bool:
    """A permission beyond "logged in" (staff only, say) can refuse a logged-in user: 403."""
    return any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions)


class ContractAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the errors implied by the operation's shape (above).
    A status the view already declares keeps the view's description."""

    def implied_errors(self) -> dict[int, OpenApiResponse]:
        errors: dict[int, OpenApiResponse] = {
            406: error_response(ErrorCode.NOT_ACCEPTABLE, note="an Accept header JSON can't meet")
        }
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_path_params = "{" in self.path
        if has_body or has_path_params:
            errors[400] = error_response(
                ErrorCode.BAD_REQUEST, note="a NUL byte in the path or body; a malformed request"
            )
        if self.view.get_authenticators():
            permissions = self.view.get_permissions()
            if _requires_login(permissions):
                errors[401] = error_response(
                    ErrorCode.UNAUTHORIZED,
                    ErrorCode.INVALID_TOKEN,
                    note="no token; a bad, expired or revoked one",
                )
            else:
                errors[401] = error_response(
                    ErrorCode.INVALID_TOKEN,
                    note="a bad, expired or revoked token; send none to browse anonymously",
                )
            if _may_forbid(permissions):
                errors[403] = error_response(ErrorCode.FORBIDDEN, note="staff only")
        if has_path_params:
            errors[404] = error_response(ErrorCode.NOT_FOUND, note="the id names nothing visible")
        if has_body:
            errors[413] = error_response(
                ErrorCode.PAYLOAD_TOO_LARGE, note="over DATA_UPLOAD_MAX_MEMORY_SIZE"
            )
            errors[415] = error_response(ErrorCode.UNSUPPORTED_MEDIA_TYPE, note="not JSON")
        if has_body or self._has_query_parameters():
            errors[422] = error_response(ErrorCode.VALIDATION_ERROR, note="per-field details")
        return errors

    def _has_query_parameters(self) -> bool:
        return any(p.get("in") == "query" for p in self._get_parameters())

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status, response in self.implied_errors().items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    response, str(status), direction=direction
                )
        return dict(sorted(responses.items()))
