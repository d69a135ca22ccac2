"""A shopper's Idempotency-Key, bound to one request body across all of their orders.

Each deal's `idem` hash (reserve.lua) and PostgreSQL's unique (user, key) constraint know a key
only once an order holds it, and the hash only for its own deal: a key reused with another body
on another deal, or between a regular order and a deal order, would be accepted (202) and end
`failed` when the writer meets the constraint. The claim closes that before any reservation or
transaction: the first request with a key stores its body's fingerprint under
`idempotency_claim_key(user, key)`; a later request with the same key and another fingerprint is
refused (409), one with the same fingerprint goes on to the pipelines, which return the original
order.

In the Redis pipelines reserve.lua takes the claim itself (its optional KEYS 14), in the
purchase's own atomic step: no round trip and, under appendfsync always, no fsync of its own
(a claim of its own cost redis_async a quarter of its throughput in deal-order-latency). There
the claim also records the order it accepted ("<hash>|<order_id>"): a retry whose key the deal's
idem hash no longer knows (the hash lost, a rebuild) gets that order, never a second one;
release.lua takes the order off again when its write failed (the retry is then a new purchase).
The
database pipelines and regular orders call `idempotency_claim` first: one command, atomic:
`SET key hash NX GET EX ttl` (Valkey, or Redis 7.0+ which accepts NX with GET). The
key is the shopper's, not a deal's: it carries no `{deal:<id>}` hash tag and is never touched
inside a deal's Lua script, so on a cluster it may live on any slot.

The claim binds a key to the first body it came with for IDEMPOTENCY_CLAIM_TTL_SECONDS (24 h),
whatever that request was answered: a client reusing a key for a changed body is refused even
if the first attempt was refused too (the IETF Idempotency-Key draft's and Stripe's rule). After
the TTL, or if Redis lost the claim, PostgreSQL's unique constraint is the backstop: the
synchronous pipelines and regular orders answer 409, redis_async answers 202 and the writer
fails the order with IDEMPOTENCY_KEY_REUSED (its units go back).
"""

import logging
from enum import StrEnum
from uuid import UUID

import redis
from django.conf import settings

from apps.core.errors import ServiceUnavailable

from .client import gate_redis
from .keys import idempotency_claim_key

logger = logging.getLogger(__name__)


class Claim(StrEnum):
    """What `idempotency_claim` found."""

    CLAIMED = "claimed"  # the first request with this key: the key is now bound to its body
    SAME_BODY = "same_body"  # a retry (or a concurrent twin) with the same body: go on
    OTHER_BODY = "other_body"  # the key is bound to another body: refuse (409)


def idempotency_claim(*, user_id: UUID | str, key: str, request_hash: str) -> Claim:
    """Binds (user, key) to `request_hash` unless it is bound already, and says which. One round
    trip. A Redis error is a 503 (fails closed, like the gate): without the claim a key reused
    across deals could be accepted twice."""
    name = idempotency_claim_key(user_id, key)
    try:
        bound = gate_redis().set(
            name, request_hash, nx=True, get=True, ex=settings.IDEMPOTENCY_CLAIM_TTL_SECONDS
        )  # the body already bound, or None when this request bound it
    except redis.RedisError as exc:
        logger.warning("idempotency claim unavailable: %s", exc)
        raise ServiceUnavailable("The order service is unavailable; retry shortly.") from exc
    if bound is None:
        return Claim.CLAIMED
    # "<hash>|<order_id>" once reserve.lua accepted a purchase with it (the order is its own).
    body = str(bound).split("|", 1)[0]
    return Claim.SAME_BODY if body == request_hash else Claim.OTHER_BODY
