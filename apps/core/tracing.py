"""OpenTelemetry traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).

On, `tracing_setup` gives the process a TracerProvider that exports in batches over OTLP/HTTP
and instruments Django (a span per request), Celery (publish and run, the context riding in the
task's headers), redis-py (a span per command or pipeline) and psycopg (a span per query). It
runs once per process after any fork: gunicorn imports flashdeals.wsgi in each worker
(preload_app is off), and a Celery pool process runs it from `worker_process_init`
(flashdeals/celery.py), so no exporter thread is shared across a fork.

Off, nothing of OpenTelemetry is imported and nothing is instrumented: the purchase path pays a
global lookup for `gate_span` and the writer one for `drain_span`, each answering a shared no-op
context.

A purchase's trace reaches the worker through the stream entry, not through Celery: one drain
task writes the entries of many purchases. The gate's Lua step runs inside `gate_span`, whose W3C
`traceparent` reserve.lua stores in the entry (field `t`). The writer (orders.services.drain)
wraps each batch in `drain_span`: one `drain batch` span in the drain task's own trace, linked to
every purchase it writes (a batch has many parents, which is what span links are for), and, per
purchase, a `drain write` span that is a child of that purchase's Lua step, linked back to the
batch. So the trace of one purchase shows its request, its Lua step and the write that made it
an order; the batch's trace shows the transaction and its queries.
"""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from django.conf import settings

DRAIN_BATCH_SPAN = "drain batch"
DRAIN_WRITE_SPAN = "drain write"

_OFF: AbstractContextManager[str] = nullcontext("")  # reusable: entering it holds no state
_tracer: Any = None  # the process's Tracer once tracing_setup has run; None: off
_provider: Any = None


def tracing_enabled() -> bool:
    return _tracer is not None


def tracing_setup(*, role: str, processor: Any = None, set_global: bool = True) -> bool:
    """Turns tracing on for this process when OTEL_EXPORTER_OTLP_ENDPOINT is set (or a test
    passes its own span `processor`). Call it once per process, after any fork and before
    Django builds its middleware (the request span is a middleware) and before the first
    database connection (psycopg's spans come with the connection). `role` ("web", "worker")
    goes into the resource as `flashdeals.role`. Idempotent; says whether tracing is on."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if processor is None and not endpoint:
        return False
    # Imported only when on: a process with tracing off never loads OpenTelemetry.
    from opentelemetry import trace  # on only
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # on only
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # on only
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # on only
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # on only
    from opentelemetry.sdk.resources import Resource  # on only
    from opentelemetry.sdk.trace import TracerProvider  # on only
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # on only

    if processor is None:
        # Imported here too: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )  # on only

        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        )
    resource = Resource.create(
        {"service.name": settings.OTEL_SERVICE_NAME, "flashdeals.role": role}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        RedisInstrumentor(),
        PsycopgInstrumentor(),
    ):
        instrumentor.instrument(tracer_provider=provider)
    if set_global:  # once per process (OpenTelemetry refuses a second); tests pass False
        trace.set_tracer_provider(provider)
    _provider, _tracer = provider, provider.get_tracer("flashdeals")
    return True


def tracing_teardown() -> None:
    """Undoes tracing_setup's instrumentation (tests; a process never turns tracing off)."""
    global _tracer, _provider
    if _tracer is None:
        return
    # Imported here: only a process that had tracing on reaches this.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # on only
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # on only
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # on only
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # on only

    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        RedisInstrumentor(),
        PsycopgInstrumentor(),
    ):
        instrumentor.uninstrument()
    _provider.shutdown()
    _tracer = _provider = None


def gate_span(script: str) -> AbstractContextManager[str]:
    """The span of a gate Lua step (`EVALSHA <script>.lua`, a client span as redis-py's own
    would be: the gate sends its scripts on a raw connection, which redis-py's instrumentation
    does not see). Yields the span's W3C traceparent for the stream entry; off: ""."""
    if _tracer is None:
        return _OFF
    return _gate_span(script)


@contextmanager
def _gate_span(script: str) -> Iterator[str]:
    # Imported only when tracing is on (then already loaded by tracing_setup).
    from opentelemetry.trace import SpanKind  # on only
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )  # on only

    attributes = {"db.system": "redis", "db.operation": "EVALSHA", "flashdeals.script": script}
    with _tracer.start_as_current_span(
        f"EVALSHA {script}.lua", kind=SpanKind.CLIENT, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        yield carrier.get("traceparent", "")


def drain_span(deal_id: str, traceparents: Sequence[str | None]) -> AbstractContextManager[Any]:
    """Around the write of one batch of stream entries (see the module docstring). Entries
    written before traces rode in the stream, or while tracing was off, have no traceparent:
    they are counted in the batch and get no span of their own."""
    if _tracer is None:
        return _OFF
    return _drain_span(deal_id, traceparents)


@contextmanager
def _drain_span(deal_id: str, traceparents: Sequence[str | None]) -> Iterator[None]:
    # Imported only when tracing is on (then already loaded by tracing_setup).
    from opentelemetry import trace  # on only
    from opentelemetry.trace import Link, SpanKind  # on only
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )  # on only

    propagator = TraceContextTextMapPropagator()
    parents = []
    for traceparent in traceparents:
        if traceparent:
            span_context = trace.get_current_span(
                propagator.extract({"traceparent": traceparent})
            ).get_span_context()
            if span_context.is_valid:
                parents.append(span_context)
    attributes = {"flashdeals.deal_id": deal_id, "flashdeals.batch_size": len(traceparents)}
    with _tracer.start_as_current_span(
        DRAIN_BATCH_SPAN, attributes=attributes, links=[Link(p) for p in parents]
    ) as batch:
        started = batch.start_time
        yield
    batch_link = [Link(batch.get_span_context())]
    for parent in parents:  # each purchase's trace gets the write that made its order
        _tracer.start_span(
            DRAIN_WRITE_SPAN,
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            kind=SpanKind.CONSUMER,
            attributes={"flashdeals.deal_id": deal_id},
            links=batch_link,
            start_time=started,
        ).end(end_time=batch.end_time)
