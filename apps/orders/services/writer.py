"""The batch writer: turns accepted reservations into order rows.

Used by the stream drain (redis_async), by the `redis` pipeline for its single row, by the
sweep for reservations orphaned by a dead web process, and by dead-letter replays and discards.
Safe to run twice on the same reservation: order ids are issued before anything is stored,
inserts are ON CONFLICT DO NOTHING, and the deal's database counter only moves for rows this
call actually inserted.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from uuid import UUID

from django.db import connection, models, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from apps.deals import gate
from apps.deals.gate import Reservation

from ..models import HOLDING, Order, OrderItem, OrderStatus
from .rows import ITEM_COLUMNS, ORDER_COLUMNS, deal_order_columns

logger = logging.getLogger(__name__)


class WriteRefused(Exception):
    """PostgreSQL refuses a reservation for a reason that retrying will not change by itself."""


class DealCounterMismatch(WriteRefused):
    """PostgreSQL has fewer units left than Redis sold: never write past it (no oversell)."""


class PerUserLimitExceeded(WriteRefused):
    """The shopper would hold more of the deal than its per-user limit in PostgreSQL. Redis
    decides the limit, but a Redis that forgot a shopper's held units (a lost write, a restore,
    an eviction) would accept the purchase again: PostgreSQL refuses it instead of recording a
    second unit for a limit of one."""

    def __init__(self, over: list[tuple[str, str, int, int]]) -> None:
        self.held, self.limit = over[0][2], over[0][3]  # the first (user, deal, held, limit)
        super().__init__(
            "; ".join(
                f"shopper {u} would hold {n} of deal {d} (limit {lim})" for u, d, n, lim in over
            )
        )


class ShopperGone(WriteRefused):
    """The shopper's account was deleted after the purchase was accepted (a token still valid
    for its hour, in the second before every process refuses it: apps.accounts.revocation). No
    order row can reference them, and retrying will not bring them back."""


class IdempotencyKeyClash(WriteRefused):
    """The shopper already has another order under this Idempotency-Key (keys are unique per
    shopper in PostgreSQL, but Redis only knows the keys of one deal). Never skip it silently:
    the purchase was accepted, so it must end as an order or as a visible failure."""


# What a shopper and an operator read on a failed order: a stable code and a sentence, never
# the exception's text (a database error names tables and constraints). The log has the rest.
_FAILURE_REASONS: list[tuple[type[Exception], str]] = [
    (DealCounterMismatch, "DEAL_COUNTER_MISMATCH: the deal had fewer units left than were sold."),
    (IdempotencyKeyClash, "IDEMPOTENCY_KEY_REUSED: the key belongs to another of your orders."),
    (PerUserLimitExceeded, "DEAL_LIMIT_EXCEEDED: it would exceed the deal's per-shopper limit."),
    (ShopperGone, "ACCOUNT_DELETED: the shopper's account was deleted before the order was made."),
]
WRITE_FAILED = "WRITE_FAILED: the order could not be recorded."


def failure_reason(exc: Exception) -> str:
    """The `failure_reason` of a reservation that `exc` kept from being written."""
    return next((text for kind, text in _FAILURE_REASONS if isinstance(exc, kind)), WRITE_FAILED)


def _arrays(model: type[models.Model], columns: Sequence[str]) -> str:
    fields = {field.column: field for field in model._meta.concrete_fields}
    return ", ".join(f"%s::text::{fields[column].db_type(connection)}[]" for column in columns)


# INSERT ... SELECT FROM unnest(one array per column): statements of constant length whatever
# the batch size. psycopg converts a short query instead of parsing a VALUES list of rows x
# columns placeholders (that parsing was most of the writer's CPU), and PostgreSQL parses a few
# parameters instead of thousands of literals (docs/scaling-drain.md). Each array is passed as
# its text literal (`array_literal`), cast by PostgreSQL to the column's array type.
@cache
def _insert_orders() -> str:
    """Parameters: updated_at (the writer's clock), then ORDER_COLUMNS' array literals."""
    return (
        f"INSERT INTO orders_order ({', '.join(ORDER_COLUMNS)}, updated_at) "
        f"SELECT *, %s::timestamptz FROM unnest({_arrays(Order, ORDER_COLUMNS)}) "
        "ON CONFLICT DO NOTHING RETURNING id::text"
    )


@cache
def _insert_items() -> str:
    return (
        f"INSERT INTO orders_orderitem ({', '.join(ITEM_COLUMNS)}) "
        f"SELECT * FROM unnest({_arrays(OrderItem, ITEM_COLUMNS)}) ON CONFLICT DO NOTHING"
    )


def array_literal(values: Sequence[object]) -> str:
    """A PostgreSQL array literal of `values`: every element double-quoted with its backslashes
    and double quotes escaped (so commas, braces, blanks and the word NULL stay text), None as
    NULL. psycopg's own list adaptation escapes element by element in Python and cost the
    writer twice the CPU of these two C-level replaces per element; quoted elements read the
    same for every element type (uuid, bigint, timestamptz, text)."""
    return (
        "{"
        + ",".join(
            "NULL"
            if value is None
            else '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for value in values
        )
        + "}"
    )


def reservations_persist(
    reservations: Sequence[Reservation], *, status: str = OrderStatus.CONFIRMED
) -> set[str]:
    """Writes the reservations as orders in one transaction and returns the ids it inserted
    (ids already present are skipped, so a replayed batch changes nothing). Confirmed orders
    take their units from the deal's database counter; a `failed` one (a discarded dead
    letter) already gave its units back."""
    if not reservations:
        return set()
    now = timezone.now()
    orders, items = deal_order_columns(reservations, status=status)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_shoppers(cursor, reservations)
        cursor.execute(_insert_orders(), [now, *map(array_literal, orders)])
        inserted = {row[0] for row in cursor.fetchall()}
        skipped = [r.order_id for r in reservations if r.order_id not in inserted]
        if skipped:  # already written (a replay), or refused by the per-shopper key constraint
            cursor.execute(
                "SELECT id::text FROM orders_order WHERE id = ANY(%s::uuid[])", [skipped]
            )
            clashing = set(skipped) - {row[0] for row in cursor.fetchall()}
            if clashing:
                raise IdempotencyKeyClash(f"orders {sorted(clashing)}: key already used")
        fresh = [r for r in reservations if r.order_id in inserted]
        if not fresh:
            return inserted
        if skipped:
            items = deal_order_columns(fresh, status=status)[1]
        cursor.execute(_insert_items(), [*map(array_literal, items)])
        if status == OrderStatus.CONFIRMED:
            _take_units(cursor, fresh, now)
            _check_limits(cursor, fresh)
            accepted_at = [r.created_at for r in fresh]
            transaction.on_commit(lambda: gate.confirmations_since(accepted_at), robust=True)
    return inserted


def _lock_shoppers(cursor: CursorWrapper, reservations: Sequence[Reservation]) -> None:
    """Raises ShopperGone when a reservation's shopper no longer exists, instead of the foreign
    key failing the whole batch at commit. FOR KEY SHARE is the lock the foreign key check
    itself takes (it blocks only a DELETE of the user, never another writer): held from here to
    the commit, no shopper can be deleted in between."""
    wanted = {r.user_id for r in reservations}
    cursor.execute(
        "SELECT id::text FROM accounts_user WHERE id = ANY(%s::uuid[]) FOR KEY SHARE",
        [sorted(wanted)],
    )
    if gone := wanted - {row[0] for row in cursor.fetchall()}:
        raise ShopperGone(f"shoppers {sorted(gone)} no longer exist")


def _take_units(cursor: CursorWrapper, fresh: list[Reservation], now: datetime) -> None:
    units: dict[str, int] = defaultdict(int)
    for reservation in fresh:
        units[reservation.deal_id] += reservation.quantity
    for deal_id, quantity in units.items():
        cursor.execute(
            "UPDATE deals_deal SET remaining_stock = remaining_stock - %s, updated_at = %s "
            "WHERE id = %s AND remaining_stock >= %s",
            [quantity, now, deal_id, quantity],
        )
        if cursor.rowcount != 1:
            raise DealCounterMismatch(f"deal {deal_id}: fewer than {quantity} units left")


def _check_limits(cursor: CursorWrapper, fresh: list[Reservation]) -> None:
    """Runs after _take_units, whose UPDATE holds each deal's row lock until commit: every other
    writer of these deals waits for it, so the sum below sees all their committed rows.

    The shoppers' orders are read first (MATERIALIZED: through a shopper index, a few rows
    each) and only then narrowed to the deals. Left to itself the planner walked the deal's
    index instead, trusting statistics taken before the sale, when the deal had no orders:
    every batch then read all of the deal's orders so far (38 ms per batch at 100,000,
    docs/scaling-drain.md), a cost that grew with every batch of a big deal."""
    cursor.execute(
        "WITH held AS MATERIALIZED ("
        "  SELECT o.id, o.user_id, o.deal_id FROM orders_order o"
        "  WHERE o.user_id = ANY(%s::uuid[]) AND o.status = ANY(%s)) "
        "SELECT held.user_id::text, i.deal_id::text, SUM(i.quantity), d.per_user_limit "
        "FROM held JOIN orders_orderitem i ON i.order_id = held.id "
        "JOIN deals_deal d ON d.id = i.deal_id "
        "WHERE held.deal_id = ANY(%s::uuid[]) "
        "GROUP BY held.user_id, i.deal_id, d.per_user_limit "
        "HAVING SUM(i.quantity) > d.per_user_limit",
        [
            list({r.user_id for r in fresh}),
            list(HOLDING),
            list({r.deal_id for r in fresh}),
        ],
    )
    if over := cursor.fetchall():
        raise PerUserLimitExceeded(over)


def reservations_write(
    deal_id: UUID | str,
    reservations: Sequence[Reservation],
    stream_ids: list[str] | None = None,
) -> None:
    """Persists, then (after the commit) forgets the Redis copies: the pending entries and, for
    stream deliveries, the stream entries. The one way every path writes reservations."""
    reservations_persist(reservations)
    gate.reservations_done(deal_id, [r.order_id for r in reservations], stream_ids)
