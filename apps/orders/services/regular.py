"""Regular orders (no deal): one SQL statement takes the stock of every line and writes the order
and its items, or writes nothing. 201.

The statement (PLACE_SQL), in one round trip and, outside a caller's transaction, as its own
transaction (no BEGIN, no COMMIT of ours):

1. `locked` locks the lines' products FOR NO KEY UPDATE in primary-key order: two orders over
   the same products queue on the first one they share and never deadlock. The lock is the one
   an UPDATE takes anyway, so a deal purchase inserting an item of the product (a key-share
   lock for the foreign key) is not blocked. Locked, each row shows its current stock.
2. `verdict`: every product exists and has the units its lines ask for together (several lines
   of one product are added up).
3. Only if so: the stock UPDATE (`stock - quantity` on the row as it is now; the table's
   CHECK stock >= 0 would refuse the whole statement if that ever went below zero), the order
   INSERT and one multi-row INSERT of its items, prices and names from the locked rows.

The statement returns the locked rows: Python answers the refusals from them, with the same
errors and details as the line-by-line version had (404 for unknown products first, then 400
for the first product in id order without enough units, with its current stock).
"""

import uuid
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.catalog.cache import CATALOG, scope_changed
from apps.catalog.models import Product

from ..errors import InsufficientStock, UnknownProduct
from ..models import Order, OrderItem, OrderStatus
from ..placed import PlacedOrder
from ..selectors import order_for_idempotency_key
from .inputs import OrderInput
from .rows import shipping_fields
from .shoppers import raise_if_shopper_gone

_SHIPPING = ("recipient_name", "phone", "address", "address_detail", "postal_code")

# Named parameters (psycopg's %(name)s); the lines come as three parallel arrays, so the text is
# the same whatever the number of lines (no string building per request).
PLACE_SQL = f"""
WITH wanted AS (
    SELECT * FROM unnest(%(product_ids)s::uuid[], %(quantities)s::int[], %(item_ids)s::uuid[])
        AS w (product_id, quantity, item_id)
), asked AS (
    SELECT product_id, sum(quantity) AS quantity FROM wanted GROUP BY product_id
), locked AS MATERIALIZED (
    SELECT p.id, p.name, p.price, p.stock, a.quantity
    FROM {Product._meta.db_table} p JOIN asked a ON a.product_id = p.id
    ORDER BY p.id
    FOR NO KEY UPDATE OF p
), verdict AS MATERIALIZED (
    SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM asked)
        AND NOT EXISTS (SELECT 1 FROM locked WHERE stock < quantity) AS ok
), taken AS (
    UPDATE {Product._meta.db_table} p
    SET stock = p.stock - l.quantity, updated_at = %(now)s
    FROM locked l, verdict v
    WHERE p.id = l.id AND v.ok
), placed AS (
    INSERT INTO {Order._meta.db_table} (
        id, user_id, deal_id, status, total_amount, {", ".join(_SHIPPING)}, idempotency_key,
        request_hash, cancelled_at, cancel_reason, failure_reason, created_at, updated_at
    )
    SELECT %(order_id)s, %(user_id)s, NULL, %(status)s,
        (SELECT sum(l.price * w.quantity) FROM wanted w JOIN locked l ON l.id = w.product_id),
        {", ".join(f"%({field})s" for field in _SHIPPING)}, %(idempotency_key)s,
        %(request_hash)s, NULL, '', '', %(now)s, %(now)s
    FROM verdict WHERE ok
    RETURNING id
), items AS (
    INSERT INTO {OrderItem._meta.db_table} (
        id, order_id, product_id, deal_id, product_name, unit_price, quantity, subtotal
    )
    SELECT w.item_id, o.id, l.id, NULL, l.name, l.price, w.quantity, l.price * w.quantity
    FROM placed o, wanted w JOIN locked l ON l.id = w.product_id
)
SELECT l.id, l.name, l.price, l.stock, v.ok FROM locked l, verdict v
"""


def regular_order_place(*, user_id: uuid.UUID, data: OrderInput) -> PlacedOrder:
    """The order, written in one statement (PLACE_SQL) with its stock taken; or the refusal."""
    if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
        return existing
    lines = sorted(data.items, key=lambda line: line.product_id)  # uuid order: PostgreSQL's
    item_ids = [uuid.uuid4() for _ in lines]
    now = timezone.now()
    params = {
        "product_ids": [line.product_id for line in lines],
        "quantities": [line.quantity for line in lines],
        "item_ids": item_ids,
        "now": now,
        "order_id": uuid.uuid4(),
        "user_id": user_id,
        "status": OrderStatus.CONFIRMED.value,
        "idempotency_key": data.idempotency_key,
        "request_hash": data.request_hash,
        **dict.fromkeys(_SHIPPING, ""),
        **shipping_fields(data.shipping),
    }
    try:
        rows = _execute(params)
    except IntegrityError as exc:
        # A concurrent request with the same Idempotency-Key won the unique constraint.
        if existing := order_for_idempotency_key(user_id=user_id, **data.keyed):
            return existing
        raise_if_shopper_gone(exc, user_id=user_id)
        raise
    products = {row[0]: row for row in rows}
    if not rows or not rows[0][4]:
        _refuse(lines, products)
    scope_changed(CATALOG)  # cached product pages show stock: refresh them (on commit, if any)
    return _placed(user_id, data, params, lines, products)


def _execute(params: dict) -> list[tuple]:
    """One round trip. In autocommit the statement is its own transaction; inside a caller's
    transaction it runs in a savepoint, so a refusal by a constraint leaves that transaction
    usable for the idempotency lookup that follows."""
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PLACE_SQL, params)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(PLACE_SQL, params)
        return cursor.fetchall()


def _refuse(lines: list, products: dict[uuid.UUID, tuple]) -> None:
    """The statement wrote nothing: say why, as the contract does (unknown products first)."""
    missing = [str(line.product_id) for line in lines if line.product_id not in products]
    if missing:
        raise UnknownProduct(details={"product_ids": missing})
    asked: dict[uuid.UUID, int] = {}
    for line in lines:
        asked[line.product_id] = asked.get(line.product_id, 0) + line.quantity
    for product_id, quantity in asked.items():  # in id order, as the lines are
        available = products[product_id][3]
        if available < quantity:
            raise InsufficientStock(
                details={
                    "product_id": str(product_id),
                    "requested": quantity,
                    "available": available,
                }
            )
    raise AssertionError("PLACE_SQL refused an order it had the units for")  # pragma: no cover


def _placed(
    user_id: uuid.UUID,
    data: OrderInput,
    params: dict,
    lines: list,
    products: dict[uuid.UUID, tuple],
) -> PlacedOrder:
    """The written rows as model instances (the answer's body and other callers read them),
    built from what the statement wrote: no read back."""
    now: datetime = params["now"]
    order = Order(
        id=params["order_id"],
        user_id=user_id,
        status=OrderStatus.CONFIRMED,
        total_amount=sum(products[line.product_id][2] * line.quantity for line in lines),
        idempotency_key=data.idempotency_key,
        request_hash=params["request_hash"],
        created_at=now,
        updated_at=now,
        **{field: params[field] for field in _SHIPPING},
    )
    items = []
    for line, item_id in zip(lines, params["item_ids"], strict=True):
        _, name, price, _, _ = products[line.product_id]
        items.append(
            OrderItem(
                id=item_id,
                order=order,
                product_id=line.product_id,
                product_name=name,
                unit_price=price,
                quantity=line.quantity,
                subtotal=price * line.quantity,
            )
        )
    return PlacedOrder(order=order, items=items, status=order.status)
