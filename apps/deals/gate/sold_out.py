"""Sold out costs nothing: once a deal has answered "sold out" in this web process, the
process answers the next purchases of that deal from memory for SOLD_OUT_MEMORY_SECONDS, without
a Redis round trip: a crowd retrying a sold-out deal stops at the web tier.

The memory is this process's only. Units that come back here (a cancel, a dead letter, a failed
write: deal_release) clear it at once, but no other process can be told, so every flag expires
by itself: a deal whose units came back keeps being answered "sold out" by other processes for
at most SOLD_OUT_MEMORY_SECONDS. That is the price, paid only in the rare window after a sell-out
when units return, against a crowd hammering a sold-out deal costing the gate nothing.

A purchase with an Idempotency-Key may be the retry of one accepted before the sell-out, and
then its answer is that order (reserve.lua's DUPLICATE), never "sold out". So remembering a sell
-out also reads, once, which shoppers ever bought this deal with a key (the fields of the deal's
`idem` hash, `<user>:<key>`): a keyed purchase by one of them goes to the gate, anyone else's is
answered from memory. A deal with more than SOLD_OUT_MEMORY_MAX_KEYED keyed purchases is not
read: its keyed purchases all go to the gate.

gthread workers share the dict between threads: a single dict get, set or pop is atomic in
CPython (one bytecode under the GIL), and no operation here reads and then writes, so no lock
is needed. Two threads racing remember and forget leave either answer, both true a moment ago;
the TTL bounds a stale one. An expired entry is left in place (dropping it on read would be a
read-then-write that could drop a fresh one): the dict holds at most one entry per deal that
sold out while this process ran.
"""

import logging
import time
from uuid import UUID

import redis
from django.conf import settings
from prometheus_client import Counter

from .client import gate_redis
from .keys import deal_keys

logger = logging.getLogger(__name__)

# Monotonic: a wall clock stepped by NTP must not stretch or cut a flag's life. Tests replace it.
clock = time.monotonic

# deal id (str) -> clock() at which the flag expires, the deal's product id (a purchase naming
# another product is INVALID_DEAL in the gate, not sold out: it is not answered here), and the
# shoppers who bought it with an Idempotency-Key (None: not read, every keyed purchase asks).
_known: dict[str, tuple[float, str, frozenset[str] | None]] = {}

ANSWERED = Counter(
    "flashdeals_deal_sold_out_from_memory_total",
    "Deal purchases answered 400 DEAL_SOLD_OUT from the web process's memory, without the gate "
    "(reserve.lua never sees them, so the deal's own answer counts leave them out).",
)


def sold_out_remember(deal_id: UUID | str, product_id: UUID | str) -> None:
    """The gate (or PostgreSQL) just answered this deal sold out. One read of the shoppers who
    bought it with a key (see above); without it, keyed purchases keep asking the gate."""
    if settings.SOLD_OUT_MEMORY_SECONDS <= 0:
        return
    keyed = _keyed_shoppers(deal_id)
    _known[str(deal_id)] = (clock() + settings.SOLD_OUT_MEMORY_SECONDS, str(product_id), keyed)


def _keyed_shoppers(deal_id: UUID | str) -> frozenset[str] | None:
    key = deal_keys(deal_id).idem
    try:
        client = gate_redis()
        if client.hlen(key) > settings.SOLD_OUT_MEMORY_MAX_KEYED:
            return None
        fields: list[str] = client.hkeys(key)  # type: ignore[assignment]  # decoded replies
        return frozenset(field.partition(":")[0] for field in fields)
    except redis.RedisError as exc:
        logger.warning("sold-out memory of deal %s: keyed shoppers not read: %s", deal_id, exc)
        return None


def sold_out_known(
    deal_id: UUID | str, product_id: UUID | str, *, keyed_by: UUID | str | None = None
) -> bool:
    """True while a sold-out answer for this deal and product is remembered and may be given to
    this purchase (`keyed_by`: the shopper, when it carries an Idempotency-Key); counts the
    answer the caller then gives (ANSWERED)."""
    entry = _known.get(str(deal_id))
    if entry is None:
        return False
    expires, product, keyed = entry
    if clock() >= expires or product != str(product_id):
        return False
    if keyed_by is not None and (keyed is None or str(keyed_by) in keyed):
        return False  # perhaps the retry of a purchase the gate accepted: it has the answer
    ANSWERED.inc()
    return True


def sold_out_forget(deal_id: UUID | str) -> None:
    """Units of this deal came back: ask the gate again from the next purchase on."""
    _known.pop(str(deal_id), None)


def sold_out_forget_all() -> None:
    """Tests: a clean memory for each one (the test database reuses no deal id, but a test that
    moves the clock must not leave flags for the next)."""
    _known.clear()
