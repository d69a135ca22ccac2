"""Prometheus metrics: request counts and latencies, plus business metrics read at scrape time.

Request metrics are prometheus-client counters in the serving process. Under gunicorn with
several workers, set PROMETHEUS_MULTIPROC_DIR (an empty directory, before the server starts) and
they are added up across workers. Business metrics (purchases accepted/rejected, backlog, dead
letters, time to confirmation) already live in Redis, shared by every web and worker process, so
collectors that apps register in BUSINESS read them when Prometheus scrapes; that keeps
the purchase path free of anything but its one counting round trip.

The endpoint is not public: a staff session (the admin's) or `Authorization: Bearer
<METRICS_TOKEN>`. Errors are the API's `{error, message, details}` body.
"""

import hmac
import logging
import math
import os
import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily

from .errors import ErrorCode
from .exception_handler import error_body
from .tasks import beat_heartbeat_age

# Buckets around the speed targets (docs/scenarios/): most API answers take 1-20 ms, the admin
# up to a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "flashdeals_http_requests_total",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "flashdeals_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route pattern.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


request_logger = logging.getLogger("flashdeals.request")
logger = logging.getLogger(__name__)


class MetricsMiddleware:
    """Counts every request by its URL pattern (never the raw path: ids would explode the label
    set). Unmatched paths are one label, "<unmatched>".

    With LOG_REQUESTS it also logs one line per request (`flashdeals.request`): gunicorn's access
    log stays off, since this line carries the request id and the time Django took. The setting
    is read once, when the process builds its middleware: off, the purchase path pays one
    boolean check."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.log_requests = settings.LOG_REQUESTS

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = f"/{match.route}" if match and match.route else "<unmatched>"
        LATENCY.labels(request.method, route).observe(elapsed)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        if self.log_requests:
            _log_request(request, response.status_code, elapsed)
        return response


def _log_request(request: HttpRequest, status: int, elapsed: float) -> None:
    """`GET /products?page=2 200 3.1 ms`; in JSON also as fields (method, path, status,
    duration_ms). Runs inside RequestIdMiddleware, so the line carries the request id. The path
    is Django's escaped form: a control character in a URL can't break the line."""
    path, duration_ms = request.get_full_path(), round(elapsed * 1000, 2)
    request_logger.info(
        "%s %s %d %.1f ms", request.method, path, status, duration_ms,
        extra={"method": request.method, "path": path, "status": status,
               "duration_ms": duration_ms},
    )  # fmt: skip


# Business collectors, registered by the apps that own the data from their AppConfig.ready()
# (core sits below them, so it never imports them).
BUSINESS = CollectorRegistry(auto_describe=False)


class BeatHeartbeatCollector:
    """`flashdeals_beat_heartbeat_age_seconds`: seconds since a worker ran the heartbeat task
    beat sends every 10 s (apps.core.tasks), read as the go-live preflight reads it. Old means
    beat is down or no worker consumes. +Inf when there is none (none for BEAT_HEARTBEAT_TTL,
    or never) or Redis can't be read: both are beat or a worker to look at."""

    def describe(self):
        return []

    def collect(self):
        try:
            age = beat_heartbeat_age()
        except Exception as exc:  # noqa: BLE001 - an unreadable heartbeat alerts; never a 500
            logger.warning("beat heartbeat unreadable: %s", exc)
            age = None
        yield GaugeMetricFamily(
            "flashdeals_beat_heartbeat_age_seconds",
            "Seconds since the last beat heartbeat a worker ran (+Inf: none, or unreadable).",
            value=math.inf if age is None else age,
        )


BUSINESS.register(BeatHeartbeatCollector())


def render_metrics() -> bytes:
    """The text exposition for one scrape: this process's request metrics (every worker's, in
    multiprocess mode) followed by the business metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(requests)
    else:
        requests = REGISTRY
    return generate_latest(requests) + generate_latest(BUSINESS)


def _error(status: int, code: ErrorCode, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def operator_credentials(request: HttpRequest) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>` or a staff session: who may read /metrics and
    the readiness probe's details (apps.core.apis.ReadinessApi)."""
    return _token_ok(request) or _staff_session(request)


def _staff_session(request: HttpRequest) -> bool:
    """The admin's session, read by hand: /metrics is not a browser path, so the session and
    auth middleware (kept off the API's hot path) did not run."""
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie:
        return False
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(cookie)
    user = get_user(request)
    return bool(user.is_active and user.is_staff)


def _token_ok(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_TOKEN
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a TypeError, so a
    # 500), and a header may carry any byte. utf-8 can encode every str a header decodes to.
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
    )


# Exempt: with Silk on, CsrfViewMiddleware runs on every path and answered a non-GET with its
# HTML 403 page; /metrics changes nothing and never trusts a cookie for a write, so the 405 JSON
# below answers instead.
@csrf_exempt
def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        response = _error(405, ErrorCode.METHOD_NOT_ALLOWED, "Use GET.")
        response["Allow"] = "GET"
        return response
    if not (_token_ok(request) or _staff_session(request)):
        if "Authorization" in request.headers:
            return _error(401, ErrorCode.INVALID_TOKEN, "The metrics token is not valid.")
        return _error(
            401, ErrorCode.UNAUTHORIZED, "Metrics need a staff session or the metrics token."
        )
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
