"""What a database connection needs behind a pooler in transaction mode (PgBouncer's
`pool_mode = transaction`; deploy/README.md, "PgBouncer (transaction pooling)").

In that mode PgBouncer lends a client a server connection for one transaction only: the next
statement outside a transaction may run on another server connection. Whatever a statement
leaves behind on its server connection beyond its transaction is therefore missing, or someone
else's, the next time. Django leaves two such things by default or on request:

- a server-side cursor: `QuerySet.iterator()` in autocommit DECLAREs a `WITH HOLD` cursor and
  FETCHes from it in later transactions ("cursor ... does not exist");
- a named prepared statement: psycopg prepares a query on its server connection once it has run
  `prepare_threshold` times ('prepared statement "_pg3_0" does not exist'). Django 5.2 already
  defaults `prepare_threshold` to None, and its default client-side binding never prepares; we
  pin None anyway so that neither an upgrade nor `OPTIONS["server_side_binding"]` (which uses
  unnamed statements, safe, unless a threshold is set) turns it back on. PgBouncer 1.21 can
  track protocol-level prepared statements (`max_prepared_statements`); Debian bookworm's 1.18
  cannot.
"""

from typing import Any


def transaction_pooling(database: dict[str, Any]) -> dict[str, Any]:
    """A copy of the DATABASES entry `database` that keeps nothing on a server connection beyond
    a transaction: server-side cursors off (`.iterator()` reads through a client-side cursor,
    the whole result at once) and psycopg's automatic prepared statements off."""
    options = {**database.get("OPTIONS", {}), "prepare_threshold": None}
    return {**database, "DISABLE_SERVER_SIDE_CURSORS": True, "OPTIONS": options}
