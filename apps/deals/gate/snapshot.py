"""Reads of the live sale for the operator's console and the metrics endpoint: everything in
one pipelined round trip, cheap enough to refresh every few seconds while a deal is under load.
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from uuid import UUID

from . import stats
from .client import gate_redis
from .keys import deal_keys
from .reservation import Reservation
from .room import ROOM_READS, RoomFigures, queue_room_reads, room_figures_from
from .state import live_deal_ids


def deal_live_counts(deal_id: UUID | str, *, now: int, seconds: int, dead_limit: int) -> dict:
    """Remaining units, write backlog, stream length, dead letters (the oldest `dead_limit`),
    answers by outcome and per second over the last `seconds` up to `now` (epoch seconds), and
    the waiting room's figures (room.RoomFigures as a dict, zeros for a deal without a room),
    all in one round trip. Raises redis.RedisError when Redis is unreachable."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    pipe.hget(keys.state, "remaining")
    pipe.hlen(keys.pending)
    pipe.xlen(keys.stream)
    pipe.hlen(keys.dead)
    pipe.hscan(keys.dead, 0, count=dead_limit)
    pipe.hgetall(keys.outcomes)
    room = queue_room_reads(pipe, deal_id)
    minutes = stats.queue_rate_reads(pipe, deal_id, now=now, seconds=seconds)
    replies = pipe.execute()
    remaining, backlog, stream_len, dead, (_, parked), totals = replies[:6]
    hashes = replies[6 + room : 6 + room + minutes]
    letters = sorted((Reservation.from_json(v) for v in parked.values()), key=lambda r: r.failed_at)
    return {
        "loaded": remaining is not None,
        "remaining": int(remaining) if remaining is not None else None,
        "backlog": backlog,
        "stream_length": stream_len,
        "dead_letters": dead,
        "dead_letter_list": [
            {
                "order_id": r.order_id,
                "user_id": r.user_id,
                "quantity": r.quantity,
                "failure_reason": r.failure_reason,
                "failed_at": r.failed_at,
            }
            for r in letters[:dead_limit]
        ],
        "outcomes": stats.outcome_totals(totals),
        "rate": stats.rate_series(hashes, now=now, seconds=seconds),
        "room": asdict(room_figures_from(replies[6 : 6 + room])),
    }


@dataclass(frozen=True)
class AfterSale:
    """What the gate still knows of a deal once its sale is over (its state is unloaded then;
    the answers and dead letters stay: stats.OUTCOMES_TTL_SECONDS after the last answer)."""

    outcomes: dict | None  # stats.outcome_totals; None when none is kept (expired or never any)
    dead_letters: int  # parked now, waiting for an operator to replay or discard them


def deal_after_sale(deal_id: UUID | str) -> AfterSale:
    """One round trip. Raises redis.RedisError when Redis is unreachable."""
    keys = deal_keys(deal_id)
    pipe = gate_redis().pipeline(transaction=False)
    pipe.hgetall(keys.outcomes)
    pipe.hlen(keys.dead)
    totals, dead = pipe.execute()
    return AfterSale(outcomes=stats.outcome_totals(totals) if totals else None, dead_letters=dead)


@dataclass(frozen=True)
class OverdueReservation:
    """A reservation still in the deal's `pending` hash long after it was accepted."""

    order_id: str
    user_id: str
    quantity: int
    accepted_at: str  # ISO 8601, the web server's clock at acceptance
    age_s: int  # whole seconds between acceptance and the reader's `now`
    parked: bool  # also a dead letter: its dead-lettering was interrupted before its release


@dataclass(frozen=True)
class PendingOverdue:
    count: int  # all of them
    reservations: list[OverdueReservation]  # the oldest `limit`, oldest first


def deal_pending_overdue(
    deal_id: UUID | str, *, now: datetime, older_than_s: int, limit: int
) -> PendingOverdue:
    """Reservations accepted more than `older_than_s` seconds before `now` and still not
    written. The writer commits within a second and the sweep writes what it left behind after
    ORDER_PENDING_SWEEP_AGE_MS, so one listed here is stuck: PostgreSQL refuses it, the sweep
    is not running, or its dead-lettering was interrupted (`parked`). Reads the whole `pending`
    hash (as the sweep does), plus one HMGET of the dead letters when any is listed. Raises
    redis.RedisError when Redis is unreachable."""
    keys = deal_keys(deal_id)
    client = gate_redis()
    cutoff = now - timedelta(seconds=older_than_s)
    pending = (Reservation.from_json(v) for v in client.hvals(keys.pending))
    overdue = sorted((r for r in pending if r.accepted_at < cutoff), key=lambda r: r.accepted_at)
    listed = overdue[:limit]
    parked = client.hmget(keys.dead, [r.order_id for r in listed]) if listed else []
    return PendingOverdue(
        count=len(overdue),
        reservations=[
            OverdueReservation(
                order_id=r.order_id,
                user_id=r.user_id,
                quantity=r.quantity,
                accepted_at=r.created_at,
                age_s=int((now - r.accepted_at).total_seconds()),
                parked=dead is not None,
            )
            for r, dead in zip(listed, parked, strict=True)
        ],
    )


@dataclass(frozen=True)
class DealGauges:
    deal_id: str
    outcomes: dict  # stats.outcome_totals
    remaining: int | None
    backlog: int
    dead_letters: int
    room: RoomFigures | None  # None: the room is off and nobody ever joined it


def live_deal_gauges() -> tuple[list[DealGauges], dict]:
    """Per live deal its answer totals and gauges (the waiting room's figures when the room is
    on, or was: someone joined it), plus the raw confirmation-latency histogram
    (stats.confirmation_histogram reads it). One round trip for all live deals. Raises
    redis.RedisError when Redis is unreachable."""
    deal_ids = live_deal_ids()
    reads = 4 + ROOM_READS  # replies per deal
    pipe = gate_redis().pipeline(transaction=False)
    for deal_id in deal_ids:
        keys = deal_keys(deal_id)
        pipe.hgetall(keys.outcomes)
        pipe.hmget(keys.state, "remaining", "room")
        pipe.hlen(keys.pending)
        pipe.hlen(keys.dead)
        queue_room_reads(pipe, deal_id)
    pipe.hgetall(stats.confirmation_latency_key())
    replies = pipe.execute()
    gauges = []
    for index, deal_id in enumerate(deal_ids):
        outcomes, (left, room_on), pending, parked = replies[index * reads : index * reads + 4]
        room = room_figures_from(replies[index * reads + 4 : (index + 1) * reads])
        gauges.append(
            DealGauges(
                deal_id=deal_id,
                outcomes=stats.outcome_totals(outcomes),
                remaining=int(left) if left is not None else None,
                backlog=pending,
                dead_letters=parked,
                room=room if room_on == "1" or room.joins else None,
            )
        )
    return gauges, replies[-1]


@dataclass(frozen=True)
class DealFigures:
    """A deal's gate figures as the console's dashboard lists them."""

    loaded: bool  # the deal has state in Redis
    remaining: int | None  # None when not loaded
    backlog: int  # as state.deal_backlog counts it
    dead_letters: int
    accepted: int  # purchases accepted in the last `seconds`
    per_s: float  # their mean per second, one decimal


def deals_figures(deal_ids: Iterable[UUID], *, now: int, seconds: int) -> dict[UUID, DealFigures]:
    """The dashboard's figures of several deals in one round trip, whatever their number (the
    caller passes only the deals inside their sale window). Raises redis.RedisError when Redis
    is unreachable."""
    ids = list(deal_ids)
    if not ids:
        return {}
    pipe = gate_redis().pipeline(transaction=False)
    counts = []
    for deal_id in ids:
        keys = deal_keys(deal_id)
        pipe.hget(keys.state, "remaining")
        pipe.hlen(keys.pending)
        pipe.xlen(keys.stream)
        pipe.hlen(keys.dead)
        counts.append(stats.queue_rate_reads(pipe, deal_id, now=now, seconds=seconds))
    replies = pipe.execute()
    figures, at = {}, 0
    for deal_id, minutes in zip(ids, counts, strict=True):
        remaining, pending, stream_len, dead = replies[at : at + 4]
        rate = stats.rate_series(replies[at + 4 : at + 4 + minutes], now=now, seconds=seconds)
        at += 4 + minutes
        accepted = sum(rate["accepted"])
        figures[deal_id] = DealFigures(
            loaded=remaining is not None,
            remaining=int(remaining) if remaining is not None else None,
            backlog=max(int(pending), int(stream_len)),
            dead_letters=int(dead),
            accepted=accepted,
            per_s=round(accepted / seconds, 1),
        )
    return figures
