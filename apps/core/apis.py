"""Health endpoints. Liveness answers without touching anything; readiness checks dependencies."""

import logging

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from flashdeals.celery import app

from .errors import ErrorCode
from .exception_handler import error_body
from .redis import GateServerUnsafe, check_gate_server, get_redis
from .schema import error_response

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


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1000; SELECT 1")


def _check_redis() -> None:
    get_redis().ping()
    check_gate_server()


def _check_worker() -> None:
    with app.connection_for_write() as conn:
        # Bounded: an unreachable broker must not hang the readiness probe.
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        if not app.control.ping(timeout=1.0, connection=conn):
            raise RuntimeError("no Celery worker answered a ping within 1 s")


READINESS_CHECKS = {"database": _check_database, "redis": _check_redis, "worker": _check_worker}


class ReadinessApi(APIView):
    authentication_classes: list = []

    @extend_schema(
        tags=["health"],
        responses={
            200: inline_serializer(
                "Readiness",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
            503: error_response(
                ErrorCode.SERVICE_UNAVAILABLE, note="with Retry-After; details: checks, down"
            ),
        },
    )
    def get(self, request):
        checks: dict[str, str] = {}
        for name, check in READINESS_CHECKS.items():
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "down"
                logger.warning("readiness check %s failed: %s", name, exc)
                checks[name] = f"down: {exc.__class__.__name__}"
                if isinstance(exc, GateServerUnsafe):  # a setting to change: say which
                    checks[name] += f": {exc}"
        down = [name for name, state in checks.items() if state != "ok"]
        if down:
            return Response(
                error_body(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    f"Not ready: {', '.join(down)} down.",
                    {"checks": checks, "down": down},
                ),
                status=503,
                headers={"Retry-After": "5"},
            )
        return Response({"status": "ready", "checks": checks})
