"""Health endpoints. Liveness answers without touching anything; readiness reads the state of its
dependencies (never waits on a broadcast), with the detail for staff only."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from .errors import ErrorCode
from .exception_handler import error_body
from .metrics import operator_credentials
from .ratelimit import client_address, rate_limit_hit
from .redis import GateServerUnsafe, get_redis
from .schema import error_response
from .tasks import beat_heartbeat_age

logger = logging.getLogger(__name__)

_health_schema = inline_serializer(
    "Health", {"status": serializers.CharField(), "service": serializers.CharField()}
)


def health_api(service: str) -> type[APIView]:
    class HealthApi(APIView):
        authentication_classes: list = []

        @extend_schema(responses=_health_schema, operation_id=f"health_{service}", tags=["health"])
        def get(self, request):
            return Response({"status": "healthy", "service": service})

    HealthApi.__name__ = HealthApi.__qualname__ = f"HealthApi_{service.replace('-', '_')}"
    return HealthApi


class WorkerHeartbeatStale(RuntimeError):
    """No fresh heartbeat: no worker consumed beat's heartbeat task lately (or beat is down)."""


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1000; SELECT 1")


# Checks of the Redis servers other apps own, added in their AppConfig.ready() (the deals app:
# the gate's servers and their settings); core imports no app above it.
REDIS_CHECKS: list[Callable[[], None]] = []


def _check_redis() -> None:
    get_redis().ping()
    for check in REDIS_CHECKS:
        check()


def _check_worker() -> None:
    """Reads the heartbeat that beat schedules every 10 s and a worker writes (the go-live
    preflight's, apps.core.tasks): one GET. It used to ping the workers over the broker, which
    broadcast to every worker and waited up to a second for replies: with no worker up, each
    anonymous probe held a web worker for that second (docs/security.md, "Probes")."""
    age = beat_heartbeat_age()
    limit = settings.BEAT_HEARTBEAT_MAX_AGE
    if age is None:
        raise WorkerHeartbeatStale(
            "no heartbeat: no Celery worker has run beat's heartbeat task lately (worker or "
            "beat down)"
        )
    if age > limit:
        raise WorkerHeartbeatStale(f"last heartbeat {age:.0f} s ago (more than {limit} s)")


READINESS_CHECKS = {"database": _check_database, "redis": _check_redis, "worker": _check_worker}
# Exceptions whose message says what to fix; others show only their class name.
_EXPLAINED = (GateServerUnsafe, WorkerHeartbeatStale)


def _may_see_details(request: Request) -> bool:
    """Staff (a JWT or the admin's session) or the METRICS_TOKEN bearer. A token that fails
    authentication gets the anonymous answer, not a 401: a probe never fails on credentials."""
    if operator_credentials(request._request):
        return True
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        try:
            result = authentication().authenticate(request)
        except exceptions.AuthenticationFailed:
            return False
        if result is not None:
            return bool(getattr(result[0], "is_staff", False))
    return False


class ReadinessApi(APIView):
    """200 when PostgreSQL, the gate's Redis and a Celery worker (through the heartbeat) are
    up, 503 otherwise. Every check reads state that is already there (a SELECT 1, a PING and a
    CONFIG GET, one GET), so a probe costs milliseconds. Which check failed, and why, is for
    staff and the metrics token only; anyone else gets the status. Rate-limited per client
    address (RATE_LIMITS["readiness_address"])."""

    authentication_classes: list = []  # credentials only decide the detail (_may_see_details)

    @extend_schema(
        tags=["health"],
        responses={
            200: inline_serializer(
                "Readiness",
                {
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(
                        required=False, help_text="staff or METRICS_TOKEN only"
                    ),
                },
            ),
            429: error_response(ErrorCode.RATE_LIMITED, note="with Retry-After"),
            503: error_response(
                ErrorCode.SERVICE_UNAVAILABLE,
                note="with Retry-After; details (checks, down) for staff or METRICS_TOKEN only",
            ),
        },
    )
    def get(self, request):
        address = client_address(request._request)
        rate_limit_hit("readiness_address", address, client_address=address)
        checks: dict[str, str] = {}
        for name, check in READINESS_CHECKS.items():
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "down"
                logger.warning("readiness check %s failed: %s", name, exc)
                checks[name] = f"down: {exc.__class__.__name__}"
                if isinstance(exc, _EXPLAINED):  # a setting to change, a process to start
                    checks[name] += f": {exc}"
        down = [name for name, state in checks.items() if state != "ok"]
        details = _may_see_details(request)
        if down:
            body = (
                error_body(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    f"Not ready: {', '.join(down)} down.",
                    {"checks": checks, "down": down},
                )
                if details
                else error_body(ErrorCode.SERVICE_UNAVAILABLE, "Not ready.")
            )
            return Response(body, status=503, headers={"Retry-After": "5"})
        return Response({"status": "ready", "checks": checks} if details else {"status": "ready"})
