"""The purchase on the gate: reserve.lua decides (and counts its answer), release.lua gives
units back, and a reservation that PostgreSQL does not have yet can be looked up by order id."""

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core import tracing
from apps.core.errors import ErrorCode, ServiceUnavailable

from .client import gate_redis, on_cluster
from .idempotency import Claim, idempotency_claim
from .keys import (
    DealKeys,
    deal_keys,
    deal_rate_key,
    idempotency_claim_key,
    live_deals_key,
    order_failed_key,
)
from .reservation import Outcome, Reservation, ReservationState
from .scripts import DurableReply, epoch_ms, run_script, script_durably, source
from .sold_out import sold_out_forget
from .stats import OUTCOMES_TTL_SECONDS, RATE_TTL_SECONDS, purchase_outcome_record
from .stream import DRAIN_FLAG_TTL_SECONDS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReserveResult:
    outcome: Outcome
    reservation: Reservation | None = None  # OK: the accepted reservation, deal fields filled in
    order_id: str | None = None  # DUPLICATE / KEY_REUSED: the earlier order
    remaining: int | None = None  # OK: units left after it; INSUFFICIENT: units left
    kick: bool = False  # OK (async): no writer is running, the caller must start one
    held: int | None = None  # LIMIT
    limit: int | None = None  # LIMIT


def deal_reserve(
    *,
    deal_id: UUID,
    product_id: UUID,
    reservation: Reservation,
    mode: Literal["sync", "async"],
    claim: bool = False,
    admitted_at: int | None = None,
) -> ReserveResult:
    """One round trip: EVALSHA reserve.lua, which also counts the answer for the console
    (apps.deals.gate.stats). Redis errors become 503: the gate fails closed. `mode="async"` also
    appends the reservation to the deal's stream for the batch writer. `claim`: the script also
    takes the reservation's Idempotency-Key claim (gate.idempotency), in the same atomic step
    and the same fsync, instead of a round trip of its own before it. `admitted_at`: the
    shopper's admission, its signature already checked (room.admission_check); with the deal's
    waiting room on, the script refuses the purchase unless it is the shopper's outstanding
    admission, and uses it up."""
    keys = deal_keys(deal_id)
    claim_keys = []
    if claim and reservation.idempotency_key:
        if on_cluster():
            # The claim's slot is the shopper's, not the deal's: a round trip of its own first.
            if _claim_refused(deal_id, reservation):
                return ReserveResult(Outcome.KEY_REUSED)
        else:
            claim_keys = [idempotency_claim_key(reservation.user_id, reservation.idempotency_key)]
    now_ms = epoch_ms(timezone.now())
    # Test-only negative controls (settings/base.py): see _split_check and _cut_reserve.
    split = settings.GATE_UNSAFE_SPLIT_RESERVE
    cut = [block for block, on in (("checks", split),
           ("admission", settings.WAITING_ROOM_UNSAFE_SKIP_ADMISSION),
           ("claim order", settings.GATE_UNSAFE_SKIP_CLAIM_ORDER)) if on]  # fmt: skip
    try:
        if split and (refused := _split_check(keys, reservation)):
            return refused
        with tracing.gate_span("reserve") as traceparent:
            answered = (partial(_cut_reserve, blocks=cut) if cut else script_durably)(
                "reserve",
                keys=[
                    keys.state,
                    keys.users,
                    keys.idem,
                    keys.pending,
                    keys.stream,
                    keys.drain,
                    deal_rate_key(deal_id, now_ms // 60_000),
                    keys.outcomes,
                    keys.queue,
                    keys.tickets,
                    keys.admitted,
                    keys.expiry,
                    keys.room,
                    *claim_keys,
                ],  # fmt: skip
                args=[
                    reservation.user_id,
                    reservation.quantity,
                    reservation.idempotency_key or "",
                    reservation.request_hash,
                    reservation.order_id,
                    now_ms,
                    reservation.to_json(),
                    mode,
                    DRAIN_FLAG_TTL_SECONDS,
                    str(product_id),
                    RATE_TTL_SECONDS,
                    OUTCOMES_TTL_SECONDS,
                    settings.IDEMPOTENCY_CLAIM_TTL_SECONDS,
                    "" if admitted_at is None else str(admitted_at),
                    traceparent,
                ],  # fmt: skip
            )
    except redis.RedisError as exc:
        logger.warning("deal gate unavailable for deal %s: %s", deal_id, exc)
        raise ServiceUnavailable("The deal gate is unavailable; retry shortly.") from exc
    reply = answered.reply
    outcome = Outcome(reply[0])
    if outcome in (Outcome.OK, Outcome.DUPLICATE) and not answered.durable:
        # Accepted, but not yet known to survive a crash: no 201/202 for it. It stays reserved
        # (the writer or the sweep writes it); a retry with its key finds it once it is durable.
        logger.warning("reservation in deal %s not confirmed durable: WAITAOF %r", deal_id,
                       answered.ack)  # fmt: skip
        raise ServiceUnavailable(
            "The purchase was received but could not be confirmed as stored; retry it with the "
            "same Idempotency-Key to see its order.",
            retry_after=1,
        )
    if outcome == Outcome.OK:
        return ReserveResult(
            outcome,
            reservation=Reservation.from_json(reply[4]),
            remaining=int(reply[2]),
            kick=bool(int(reply[3])),
        )
    if outcome in (Outcome.DUPLICATE, Outcome.KEY_REUSED):
        return ReserveResult(outcome, order_id=reply[1] or None)
    if outcome == Outcome.INSUFFICIENT:
        return ReserveResult(outcome, remaining=int(reply[1]))
    if outcome == Outcome.LIMIT:
        return ReserveResult(outcome, held=int(reply[1]), limit=int(reply[2]))
    return ReserveResult(outcome)


def _claim_refused(deal_id: UUID, reservation: Reservation) -> bool:
    """Takes the Idempotency-Key's claim outside the script (on a cluster); True when the key
    is bound to another body (counted as the script counts its KEY_REUSED)."""
    bound = idempotency_claim(
        user_id=reservation.user_id,
        key=reservation.idempotency_key or "",
        request_hash=reservation.request_hash,
    )
    if bound != Claim.OTHER_BODY:
        return False
    purchase_outcome_record(deal_id=deal_id, error_code=ErrorCode.IDEMPOTENCY_KEY_REUSED)
    return True


def _split_check(keys: DealKeys, reservation: Reservation) -> ReserveResult | None:
    """The race reserve.lua closes, reachable only through the test-only setting
    GATE_UNSAFE_SPLIT_RESERVE, so a negative control races the gate's own code rather than a
    copy of it. Checks stock and the per-user limit from a read of their own, one round trip
    before the script, which then runs without them (_cut_reserve): two purchases that
    both read before either writes both pass. GATE_UNSAFE_SPLIT_RESERVE_AFTER_READ (when set) is
    called between the read and the script, so a test can make every racer read before any
    writes. Returns the refusal, or None to let the script answer (and write) with its checks
    cut out (_cut_reserve)."""
    pipe = gate_redis().pipeline(transaction=False)
    pipe.hmget(keys.state, "remaining", "per_user_limit")
    pipe.hget(keys.users, reservation.user_id)
    (remaining, limit), held = pipe.execute()
    if (after_read := settings.GATE_UNSAFE_SPLIT_RESERVE_AFTER_READ) is not None:
        after_read()
    if remaining is None:
        return None  # no state: the script answers NOT_LOADED
    remaining, limit, held = int(remaining), int(limit), int(held or 0)
    if remaining <= 0:
        return ReserveResult(Outcome.SOLD_OUT)
    if remaining < reservation.quantity:
        return ReserveResult(Outcome.INSUFFICIENT, remaining=remaining)
    if held + reservation.quantity > limit:
        return ReserveResult(Outcome.LIMIT, held=held, limit=limit)
    return None


def _cut_reserve(name: str, *, keys: list[str], args: list[Any], blocks: list[str]) -> DurableReply:
    """reserve.lua with the named blocks cut out (the lines between its `-- <block>: begin` and
    `-- <block>: end` markers, see its header): "checks" is what the split reserve runs after
    checking in a read of its own; "admission" is the waiting room's negative control, a
    purchase that no admission binds; "claim order" is the claim's, a keyed retry accepted
    again once the deal's idem hash lost its key. Built from the script production loads, so a
    negative control races the gate's own code; that script has no switch to skip them.
    Registered on every call (test-only); no WAITAOF: the controls are about the race, not
    durability."""
    text = source(name)
    for block in blocks:
        begin, end = f"\n-- {block}: begin", f"\n-- {block}: end\n"  # whole lines
        start, stop = text.index(begin) + 1, text.index(end) + len(end)
        text = text[:start] + text[stop:]
    unchecked = gate_redis().register_script(text)
    return DurableReply(unchecked(keys=keys, args=args), durable=True)


def deal_release(
    *,
    deal_id: UUID | str,
    user_id: UUID | str,
    quantity: int,
    order_id: UUID | str,
    forget_key: str | None = None,
) -> bool:
    """Gives an order's units back to a live deal in Redis, once per order (release.lua).
    `forget_key`: the purchase's Idempotency-Key, when its order was never written (a retry
    with it is then a new purchase): the deal's idem hash forgets it, and the shopper's claim
    forgets this order (reserve.lua leaves it there; the key stays bound to its body). On a
    cluster the claim never names an order (reserve.lua does not see it there). False when the
    deal has no state there. Units that came back, here or in PostgreSQL only (NOT_LOADED: the
    database pipelines, a deal being restored), clear this process's sold-out memory of the
    deal (sold_out.py)."""
    keys = deal_keys(deal_id)
    claim_keys = (
        [idempotency_claim_key(user_id, forget_key)] if forget_key and not on_cluster() else []
    )
    reply = run_script(
        "release",
        keys=[keys.state, keys.users, keys.pending, keys.released, keys.idem, *claim_keys],
        args=[
            str(user_id),
            quantity,
            str(order_id),
            f"{user_id}:{forget_key}" if forget_key else "",
        ],
    )
    if reply[0] in ("OK", "NOT_LOADED"):
        sold_out_forget(deal_id)
    return reply[0] in ("OK", "ALREADY")


def reservation_lookup(order_id: UUID | str) -> tuple[ReservationState, Reservation] | None:
    """A reservation not yet written to PostgreSQL, or one dead-lettered. None when Redis knows
    nothing of it.

    The purchase itself records no order -> deal pointer (that would cost every purchase a
    write); instead this looks in the pending hashes of the live deals, which are few, and
    follows the pointer `dead_letter_park` leaves for failed ones. Two round trips, off the hot
    path.
    """
    client = gate_redis()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.smembers(live_deals_key())
        pipe.get(order_failed_key(order_id))
        live, failed_deal = pipe.execute()
        deal_ids = sorted(live)
        pipe = client.pipeline(transaction=False)
        for deal_id in deal_ids:
            pipe.hget(deal_keys(deal_id).pending, str(order_id))
        if failed_deal:
            pipe.hget(deal_keys(failed_deal).dead, str(order_id))
        found = pipe.execute()
    except redis.RedisError as exc:  # it may be an accepted order: never answer "no such order"
        raise ServiceUnavailable("The deal gate is unavailable; retry shortly.") from exc
    for value in found[: len(deal_ids)]:
        if value:
            return ReservationState.PENDING, Reservation.from_json(value)
    if failed_deal and found[-1]:
        return ReservationState.FAILED, Reservation.from_json(found[-1])
    return None
