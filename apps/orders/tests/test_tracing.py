"""One purchase's trace (apps.core.tracing): a real purchase through the API and a real drain,
recorded by the OpenTelemetry SDK's in-memory exporter with the app's own instrumentation."""

import pytest
from django.db import connections
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import tracing
from apps.deals import gate
from apps.orders.models import Order
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal

# transaction=True: the connection is closed after tracing starts, so the next one is opened
# instrumented (psycopg's spans come with the connection), as in a process that starts traced.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.tracing_setup(role="test", processor=SimpleSpanProcessor(exporter), set_global=False)
    connections.close_all()
    yield exporter
    tracing.tracing_teardown()
    connections.close_all()


def span_tree(finished) -> str:
    """The spans as an indented tree per trace (parents before children), for the docs."""
    by_parent: dict = {}
    for span in finished:
        parent = span.parent.span_id if span.parent else None
        by_parent.setdefault(parent, []).append(span)
    ids = {span.context.span_id for span in finished}
    lines: list[str] = []

    def walk(span, depth):
        links = "".join(f" (link to {link.context.span_id:016x})" for link in span.links)
        lines.append(
            f"{'  ' * depth}{span.name} [{span.kind.name.lower()}] "
            f"span {span.context.span_id:016x} trace {span.context.trace_id:032x}{links}"
        )
        for child in sorted(by_parent.get(span.context.span_id, []), key=lambda s: s.start_time):
            walk(child, depth + 1)

    roots = [s for s in finished if s.parent is None or s.parent.span_id not in ids]
    for root in sorted(roots, key=lambda s: s.start_time):
        walk(root, 0)
    return "\n".join(lines)


def test_one_purchase_trace_holds_its_request_its_lua_step_and_its_drain(
    spans, shopper_client, settings
):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal()

    response = shopper_client.post("/orders", deal_line(deal), format="json")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert response.status_code == 202
    assert Order.objects.get().status == "confirmed"
    finished = spans.get_finished_spans()
    print("\n" + span_tree(finished))
    by_name = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    (request,) = by_name["POST orders"]
    (lua,) = by_name["EVALSHA reserve.lua"]
    (batch,) = by_name["drain batch"]
    (write,) = by_name["drain write"]
    trace_id = request.context.trace_id
    # the Lua step is the request's child
    assert lua.context.trace_id == trace_id
    assert lua.parent.span_id == request.context.span_id
    assert lua.attributes["flashdeals.script"] == "reserve"
    # the write that made the order is the Lua step's child, in the purchase's trace ...
    assert write.context.trace_id == trace_id
    assert write.parent.span_id == lua.context.span_id
    assert [link.context.span_id for link in write.links] == [batch.context.span_id]
    # ... and the batch, a trace of its own, links to every purchase it wrote
    assert batch.context.trace_id != trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in batch.links] == [
        (trace_id, lua.context.span_id)
    ]
    assert batch.attributes["flashdeals.batch_size"] == 1
    assert (write.start_time, write.end_time) == (batch.start_time, batch.end_time)
    # the batch's transaction shows its queries (psycopg), the request its commands (redis-py)
    queries = [
        s
        for s in finished
        if s.attributes.get("db.system") == "postgresql"
        and s.context.trace_id == batch.context.trace_id
    ]
    assert any(s.name.startswith("INSERT") for s in queries), [s.name for s in queries]
    assert {s.name for s in finished if s.context.trace_id == trace_id} >= {
        "POST orders",
        "EVALSHA reserve.lua",
        "drain write",
    }


def test_an_entry_without_a_traceparent_still_drains(spans, shopper_client, settings):
    """An entry queued while tracing was off (or before traces rode in the stream) is written;
    the batch has no link and no purchase gets a write span."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal()
    tracing.tracing_teardown()
    connections.close_all()
    shopper_client.post("/orders", deal_line(deal), format="json")
    exporter = InMemorySpanExporter()
    tracing.tracing_setup(role="test", processor=SimpleSpanProcessor(exporter), set_global=False)

    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert Order.objects.get().status == "confirmed"
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("drain batch") == 1 and "drain write" not in names
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "drain batch"]
    assert list(batch.links) == []


def test_tracing_off_leaves_the_stream_entry_without_a_traceparent(shopper_client, settings):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal()

    shopper_client.post("/orders", deal_line(deal), format="json")

    assert not tracing.tracing_enabled()
    gate.stream_group_ensure(str(deal.id))
    (entry,) = gate.stream_read(str(deal.id), block_ms=None)
    assert entry.traceparent is None
