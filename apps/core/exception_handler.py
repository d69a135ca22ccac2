"""One error contract for every path: DRF errors, domain errors and Django's own 404/500."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .errors import ApplicationError, ErrorCode, PayloadTooLarge

logger = logging.getLogger(__name__)

# DRF exception class -> (status, code). Order matters: subclasses before their bases.
_DRF_CODES: list[tuple[type[Exception], int, ErrorCode]] = [
    (drf.NotAuthenticated, 401, ErrorCode.UNAUTHORIZED),
    (drf.AuthenticationFailed, 401, ErrorCode.INVALID_TOKEN),
    (drf.PermissionDenied, 403, ErrorCode.FORBIDDEN),
    (drf.NotFound, 404, ErrorCode.NOT_FOUND),
    (drf.MethodNotAllowed, 405, ErrorCode.METHOD_NOT_ALLOWED),
    (drf.NotAcceptable, 406, ErrorCode.NOT_ACCEPTABLE),
    (drf.UnsupportedMediaType, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (drf.Throttled, 429, ErrorCode.RATE_LIMITED),
    (drf.ParseError, 422, ErrorCode.VALIDATION_ERROR),
    (drf.ValidationError, 422, ErrorCode.VALIDATION_ERROR),
]


def error_body(code: ErrorCode, message: str, details=None) -> dict:
    """The contract's error body. Every JSON error, in the API or not, is built here."""
    return {"error": code, "message": message, "details": details}


def api_exception_handler(exc: Exception, context: dict) -> Response:
    set_rollback()
    if isinstance(exc, RequestDataTooBig):
        # Normally apps.core.middleware.RequestGuardMiddleware answers first, from Content-Length.
        exc = PayloadTooLarge(details={"limit_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    elif isinstance(exc, SuspiciousOperation):  # what Django answers 400 outside DRF
        exc = ApplicationError("The request is malformed.", code=ErrorCode.BAD_REQUEST)
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(exc.code, exc.message, exc.details),
            status=exc.http_status,
            headers=exc.headers,
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    for cls, status, code in _DRF_CODES:
        if isinstance(exc, cls):
            return _drf_response(exc, status, code)
    if isinstance(exc, drf.APIException):
        # Only a bare APIException (or a third party's subclass of it) gets here; its code is
        # still one of ours, never a made-up one from its `default_code`.
        code = ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.BAD_REQUEST
        return _drf_response(exc, exc.status_code, code)

    logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return Response(
        error_body(ErrorCode.INTERNAL_ERROR, "An unexpected error occurred."), status=500
    )


def _drf_response(exc: drf.APIException, status: int, code: ErrorCode) -> Response:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, drf.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(
            error_body(code, "The request is invalid.", details), status=status, headers=headers
        )
    if isinstance(exc, drf.ParseError):
        return Response(
            error_body(code, "The request body is not valid JSON.", {"body": [str(exc.detail)]}),
            status=status,
        )
    return Response(error_body(code, str(exc.detail)), status=status, headers=headers)


# Django-level handlers (urls.handler404 / handler500) for paths DRF never sees.
def not_found_view(request, exception=None):
    return JsonResponse(error_body(ErrorCode.NOT_FOUND, "No such path."), status=404)


def server_error_view(request):
    return JsonResponse(
        error_body(ErrorCode.INTERNAL_ERROR, "An unexpected error occurred."), status=500
    )


def bad_request_view(request, exception=None):
    return JsonResponse(error_body(ErrorCode.BAD_REQUEST, "The request is malformed."), status=400)


def permission_denied_view(request, exception=None):
    return JsonResponse(error_body(ErrorCode.FORBIDDEN, "You may not do that."), status=403)
