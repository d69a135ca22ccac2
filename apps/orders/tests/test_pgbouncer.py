"""The app behind a real PgBouncer in transaction mode (docs/scaling.md; deploy/README.md,
"PgBouncer (transaction pooling)"): the CSV export, every purchase pipeline and repeated queries,
with negative controls for the server-side cursor and for prepared statements. Skipped where
pgbouncer is not installed (CI installs it, .ci/run)."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, ProgrammingError, connection, transaction
from psycopg.errors import InvalidCursorName

from apps.core.tests.pgbouncer import (
    PgBouncer,
    default_database_through,
)
from apps.deals.models import Deal
from apps.orders import admin as orders_admin
from apps.orders.models import Order
from apps.orders.tests.helpers import add_order, deal_line, make_deal
from apps.orders.tests.test_deal_orders import settle
from conftest import bearer_client
from scripts import debian_tools

pytestmark = pytest.mark.django_db(transaction=True)  # PgBouncer's connections: committed rows


@pytest.fixture(autouse=True)
def _pgbouncer_installed() -> None:
    debian_tools.require("pgbouncer")  # skips naming the command (fails on CI) when missing


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pgbouncer(tmp_path_factory, django_db_setup):
    test_db = connection.settings_dict
    bouncer = PgBouncer(
        tmp_path_factory.mktemp("pgbouncer"),
        upstream=(test_db["HOST"] or "127.0.0.1", int(test_db["PORT"] or 5432)),
        user=test_db["USER"],
    ).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def bouncer(pgbouncer, transactional_db):
    """The module's PgBouncer with both its server connections open and idle."""
    pgbouncer.open_server_connections(connection.settings_dict["NAME"])
    return pgbouncer


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return cursor.fetchone()[0]


def test_each_transaction_may_run_on_another_server_connection(bouncer):
    with default_database_through(bouncer, pooling=True):
        outside = [_backend_pid(), _backend_pid()]
        with transaction.atomic():
            inside = [_backend_pid(), _backend_pid()]

    assert outside[0] != outside[1]  # autocommit: each statement its own transaction
    assert inside[0] == inside[1]


@pytest.fixture
def orders(monkeypatch):
    """Five rows in chunks of 2, with a boundary inside an order and one across a tie."""
    monkeypatch.setattr(orders_admin, "EXPORT_CHUNK", 2)
    add_order(order_id=0x20, created_at=T0, items={0x201: "q1", 0x202: "q2"})
    add_order(order_id=0x10, created_at=T0, items={0x101: "p1", 0x102: "p2", 0x103: "p3"})
    return ["p1", "p2", "p3", "q1", "q2"]


def _export(client) -> list[str]:
    response = client.get("/admin/orders/order/export.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return [row["product_name"] for row in csv.DictReader(io.StringIO(text))]


@pytest.mark.parametrize("pooling", [True, False])
def test_the_export_reads_by_keyset_with_or_without_the_pooler_settings(
    bouncer, operator_client, orders, pooling
):
    with default_database_through(bouncer, pooling=pooling):
        exported = _export(operator_client)

    assert exported == orders


def test_negative_control_a_server_side_cursor_is_lost_between_transactions(
    bouncer, operator_client, orders, settings
):
    settings.ORDER_EXPORT_UNSAFE_SERVER_CURSOR = True  # .iterator(): DECLARE ... WITH HOLD

    with (
        default_database_through(bouncer, pooling=False),
        pytest.raises(
            InvalidCursorName, match=r'^cursor "_django_curs_\w+" does not exist$'
        ) as lost,
    ):
        _export(operator_client)

    # DECLARE ran on one server connection, psycopg's describe of it on the other; Django's
    # CLOSE after that error failed the same way
    assert isinstance(lost.value.__context__, ProgrammingError)
    assert re.fullmatch(r'portal "_django_curs_\w+" does not exist', str(lost.value.__context__))


def test_the_pooler_settings_make_iterator_safe(bouncer, operator_client, orders, settings):
    settings.ORDER_EXPORT_UNSAFE_SERVER_CURSOR = True

    with default_database_through(bouncer, pooling=True):  # no server-side cursors
        exported = _export(operator_client)

    assert exported == orders


def test_purchases_through_pgbouncer(bouncer, pipeline, accepted_status, user):
    deal = make_deal(deal_stock=5, per_user_limit=2, deal_price=7_000)
    shopper = bearer_client(user)

    with default_database_through(bouncer, pooling=True):
        answers = [
            shopper.post("/orders", deal_line(deal, quantity=1), format="json").status_code
            for _ in range(2)
        ]
        settle(deal)  # the async writer's batch, through PgBouncer too
        # db_lock's SET LOCAL lock_timeout ended with its transaction, on both server connections
        lock_timeouts = [_show("lock_timeout"), _show("lock_timeout")]

    assert lock_timeouts == ["0", "0"]
    assert answers == [accepted_status, accepted_status]
    assert list(Order.objects.values_list("status", "total_amount")) == [
        ("confirmed", 7_000), ("confirmed", 7_000)
    ]  # fmt: skip
    assert Deal.objects.get(pk=deal.pk).remaining_stock == 3


def _count_deals(times: int, counts: list[int]) -> None:
    """One parameterised query, `times` times, each answer appended to `counts`. With psycopg's
    own default, prepare_threshold=5, its 5th run prepares it (on that run's server connection)
    and the later ones execute the prepared statement."""
    for _ in range(times):
        counts.append(Deal.objects.filter(deal_stock__gte=1).count())


def test_repeated_queries_are_never_prepared(bouncer):
    make_deal()
    counts: list[int] = []

    # server-side binding (Django's opt-in): statements go to the server with their parameters
    with default_database_through(bouncer, pooling=True, options={"server_side_binding": True}):
        _count_deals(8, counts)

    assert counts == [1] * 8


def test_negative_control_a_prepared_statement_is_lost_between_transactions(bouncer):
    make_deal()
    counts: list[int] = []
    psycopg_default = {"server_side_binding": True, "prepare_threshold": 5}

    with (
        default_database_through(bouncer, pooling=True, options=psycopg_default),
        pytest.raises(DatabaseError, match='prepared statement "_pg3_0" does not exist'),
    ):
        _count_deals(8, counts)

    assert counts == [1] * 5  # the 6th ran on the other server connection
