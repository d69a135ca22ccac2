"""The CSV export's keyset pagination (apps.orders.admin.export_rows): chunk boundaries inside an
order and between orders created at the same instant, one query per chunk, and orders committed
while an export runs. (The admin view, its filters and the 100,000-order memory test are in
test_admin_orders.py; the export through PgBouncer is in test_pgbouncer.py.)"""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orders import admin as orders_admin
from apps.orders.admin import export_rows
from apps.orders.models import Order
from apps.orders.tests.helpers import add_order, fixed_id

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def ties(monkeypatch):
    """Three orders, exported in chunks of 2 rows. P (3 items) and Q (2) were created at the same
    instant, P first by id; their items are created out of order. O is older, whatever its id.
    Rows: o1 p1 | p2 p3 | q1 q2: one boundary inside P, one between P and Q."""
    monkeypatch.setattr(orders_admin, "EXPORT_CHUNK", 2)
    add_order(order_id=0x20, created_at=T0, items={0x202: "q2", 0x201: "q1"})
    add_order(order_id=0x10, created_at=T0, items={0x103: "p3", 0x101: "p1", 0x102: "p2"})
    add_order(order_id=0x30, created_at=T0 - timedelta(seconds=1), items={0x301: "o1"})


def _names(lines) -> list[str]:
    """The product names of the CSV's rows, in order (each item's label)."""
    return [row["product_name"] for row in csv.DictReader(io.StringIO("".join(lines)))]


def test_chunks_split_an_order_and_a_tie_without_losing_or_repeating_a_row(ties):
    lines = list(export_rows(Order.objects.all()))

    assert _names(lines) == ["o1", "p1", "p2", "p3", "q1", "q2"]
    orders = [row["order_id"] for row in csv.DictReader(io.StringIO("".join(lines)))]
    assert orders == [str(fixed_id(n)) for n in (0x30, 0x10, 0x10, 0x10, 0x20, 0x20)]


def test_each_chunk_is_one_query_run_when_its_first_row_is_needed(ties):
    lines = export_rows(Order.objects.all())

    with CaptureQueriesContext(connection) as queries:
        seen = []
        for _line in lines:
            seen.append(len(queries))

    # the header needs no query; rows 1-2, 3-4, 5-6 one each; a 4th, empty, ends the export
    assert seen == [0, 1, 1, 2, 2, 3, 3]
    assert len(queries) == 4
    assert all(query["sql"].endswith("LIMIT 2") for query in queries)


def test_orders_committed_during_an_export_are_written_once_where_they_sort(ties):
    # given: the export has written its first chunk (o1, p1)
    lines = export_rows(Order.objects.all())
    first = [next(lines) for _ in range(3)]  # the header and two rows

    # when: orders arrive before the rest is read: one newer than everything, one created at
    # the same instant as P and Q and between them by id, one stamped before the rows written
    add_order(order_id=0x40, created_at=T0 + timedelta(seconds=1), items={0x401: "newest"})
    add_order(order_id=0x18, created_at=T0, items={0x181: "between"})
    add_order(order_id=0x50, created_at=T0 - timedelta(seconds=2), items={0x501: "behind"})
    rest = list(lines)

    # then: the two that sort after p1 are written in place, once; the one before it is not
    assert _names(first + rest) == ["o1", "p1", "p2", "p3", "between", "q1", "q2", "newest"]
