"""Every Redis key of the gate, built in one place: a deal's, and a shopper's idempotency claim.

All keys of one deal share the hash tag `{deal:<id>}` so the Lua scripts, which touch several of
them atomically, work on Redis Cluster (one slot per deal). The environment prefix
(settings.REDIS_KEY_PREFIX) keeps test runs and environments apart.
"""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings


@dataclass(frozen=True)
class DealKeys:
    state: str  # hash: remaining, deal_stock, per_user_limit, starts_at, ends_at (epoch ms), ...
    users: str  # hash: user_id -> units held in non-cancelled orders
    idem: str  # hash: "<user_id>:<idempotency key>" -> "<order_id>|<request hash>"
    pending: str  # hash: order_id -> reservation JSON, until the writer has committed it
    stream: str  # stream: reservations for the batch writer (redis_async)
    dead: str  # hash: order_id -> reservation JSON + reason, for the operator to replay/discard
    drain: str  # string: set while a drain task is scheduled or running (kick-once flag)
    rebuild: str  # string: held by the one request rebuilding a lost state
    released: str  # set: order ids whose units went back (a release happens once per order)
    outcomes: str  # hash: purchase outcome ("accepted", "sold_out", ...) -> count (console)
    closed: str  # string: tombstone of a closed deal, so no stale loader re-installs its state
    # The waiting room (room.py, queue.lua; checked by reserve.lua):
    queue: str  # sorted set: waiting user_id -> place (a pre-queue draw < 2^48 <= arrivals)
    tickets: str  # hash: waiting user_id -> joined at (epoch ms)
    admitted: str  # hash: user_id -> "<admitted at>|<expires at>|<place>|<joined at>" (ms)
    expiry: str  # sorted set: admitted user_id -> expires at (epoch ms), the lapse order
    room: str  # hash: tick, given, tick_rate (the rate's credit), seq, admitted, lapsed, revoked,
    # w:<bucket> wait histogram


def deal_keys(deal_id: UUID | str) -> DealKeys:
    tag = f"{settings.REDIS_KEY_PREFIX}:{{deal:{deal_id}}}"
    return DealKeys(
        state=f"{tag}:state",
        users=f"{tag}:users",
        idem=f"{tag}:idem",
        pending=f"{tag}:pending",
        stream=f"{tag}:stream",
        dead=f"{tag}:dead",
        drain=f"{tag}:drain",
        rebuild=f"{tag}:rebuild",
        released=f"{tag}:released",
        outcomes=f"{tag}:outcomes",
        closed=f"{tag}:closed",
        queue=f"{tag}:queue",
        tickets=f"{tag}:tickets",
        admitted=f"{tag}:admitted",
        expiry=f"{tag}:expiry",
        room=f"{tag}:room",
    )


def live_deals_key() -> str:
    """Set of deal ids whose state is loaded in Redis (what the drain/reconcile beats visit)."""
    return f"{settings.REDIS_KEY_PREFIX}:deals:live"


def order_failed_key(order_id: UUID | str) -> str:
    """order_id -> deal_id of a dead-lettered reservation, so GET /orders/{id} can show it."""
    return f"{settings.REDIS_KEY_PREFIX}:order-failed:{order_id}"


def deal_rate_key(deal_id: UUID | str, epoch_minute: int) -> str:
    """hash: "a:<second>" / "r:<second>" -> purchases accepted / rejected ("q:<second>":
    shoppers admitted by the waiting room) in that second of the
    minute `epoch_minute` (unix time // 60). One key per minute keeps the live chart's read to a
    handful of HGETALLs; keys expire on their own a few minutes later."""
    return f"{settings.REDIS_KEY_PREFIX}:{{deal:{deal_id}}}:rate:{epoch_minute}"


def idempotency_claim_key(user_id: UUID | str, idempotency_key: str) -> str:
    """string: a shopper's Idempotency-Key -> the fingerprint of the body it is bound to
    (idempotency.py). Across all of the shopper's orders, so not under a deal's hash tag; the
    tag `{idem:<user>}` comes first so braces inside the client's key never pick the slot."""
    return f"{settings.REDIS_KEY_PREFIX}:{{idem:{user_id}}}:{idempotency_key}"
