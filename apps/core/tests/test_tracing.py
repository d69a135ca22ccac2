"""Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and then exports over OTLP/HTTP.

Each case starts the web entry point (flashdeals.wsgi) and the Celery app in a fresh interpreter,
as gunicorn's worker and a Celery pool process do, so what the process loaded is its own. The
purchase's span tree is tested in apps/orders/tests/test_tracing.py."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys
import redis
import flashdeals.wsgi, flashdeals.celery
from django.conf import settings
from apps.core import tracing
report = {
    "enabled": tracing.tracing_enabled(),
    # redis-py 8 imports opentelemetry.sdk.metrics by itself when it is installed (its own
    # metrics, off unless a program turns them on): not counted here
    "otel_loaded": sorted({
        ".".join(m.split(".")[:3]) for m in sys.modules
        if m.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter",
                         "opentelemetry.sdk.trace"))
    }),
    "provider": type(sys.modules["opentelemetry.trace"].get_tracer_provider()).__name__
    if "opentelemetry.trace" in sys.modules else None,
    "redis_wrapped": hasattr(redis.Redis.execute_command, "__wrapped__"),
    "middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
}
if report["enabled"]:
    from opentelemetry import trace
    with trace.get_tracer("probe").start_as_current_span("probe span"):
        pass
    report["flushed"] = trace.get_tracer_provider().force_flush(5000)
print(json.dumps(report))
"""


def _probe(endpoint: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "flashdeals.settings.local",
        "FLASHDEALS_ENV_FILE": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "flashdeals-probe",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_off_the_process_loads_no_tracing_and_instruments_nothing():
    report = _probe("")

    assert report == {
        "enabled": False,
        "otel_loaded": [],
        "provider": "ProxyTracerProvider",  # the API's stand-in: nothing records a span
        "redis_wrapped": False,
        "middleware": [],
    }


def test_on_the_web_process_is_instrumented_and_exports_over_otlp_http():
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = _probe(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()

    assert report["enabled"] is True
    assert report["flushed"] is True
    assert report["middleware"] == [
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    ]
    assert report["redis_wrapped"] is True
    assert report["provider"] == "TracerProvider"
    assert {
        "opentelemetry.instrumentation.django",
        "opentelemetry.instrumentation.celery",
        "opentelemetry.instrumentation.redis",
        "opentelemetry.instrumentation.psycopg",
        "opentelemetry.exporter.otlp",
        "opentelemetry.sdk.trace",
    } <= set(report["otel_loaded"])
    ((path, content_type, body),) = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    # the protobuf carries the span's name and the resource's service name as plain strings
    assert b"probe span" in body and b"flashdeals-probe" in body and b"web" in body
