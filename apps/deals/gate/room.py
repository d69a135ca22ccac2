"""The waiting room: a deal's line of shoppers, their tickets, and the signed admission a
purchase must show while the room is on (docs/operator-guide.md, "Running a sale behind the
waiting room"; the admission invariant: no purchase without an admission, and outstanding
admissions never exceed remaining units x the overbooking factor).

Joining, polling and leaving are one round trip each (queue.lua), which also runs the room's
clock: the head of the line is admitted at the operator's rate, as far as the stock allows
(admissions outstanding <= remaining units x the overbooking factor). A purchase shows its
admission in the `Admission` header; this module checks the signature and the expiry in the
web process (a forgery costs no Redis call), and reserve.lua checks, in the same atomic step
that reserves, that it is the shopper's outstanding admission for this deal, and uses it up.

Fairness: shoppers who join in the pre-queue window get a place drawn from the deal's secret
seed (queue.lua's header); the seed is published on the deal after the sale, and
`prequeue_order` re-runs the draw. After the start, first come first served.
"""

import base64
import hashlib
import hmac
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from uuid import UUID

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.errors import ServiceUnavailable

from .client import gate_redis
from .keys import deal_keys, deal_rate_key
from .scripts import epoch_ms, run_script
from .stats import RATE_TTL_SECONDS

logger = logging.getLogger(__name__)

ADMISSION_MAX_LENGTH = 80  # "<13 digits>.<13 digits>.<24 chars>" is 52


class TicketState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"


class RoomRefusal(StrEnum):
    """queue.lua's answers that are not a ticket."""

    NOT_LOADED = "NOT_LOADED"  # no state in Redis: rebuild it, then ask again
    OFF = "OFF"  # the deal has no waiting room
    NOT_OPEN = "NOT_OPEN"  # a join before the pre-queue window opens
    NO_PLACE = "NO_PLACE"  # no place: never joined, left, lapsed or bought


@dataclass(frozen=True)
class Ticket:
    state: TicketState
    created: bool = False  # this join took the place
    position: int | None = None  # 1-based; None before the start (drawn at the start)
    waiting: int = 0  # the line's length
    estimated_wait_s: int | None = None
    poll_after_s: int | None = None
    admission: str | None = None  # ADMITTED: the signed admission to send with the purchase
    admission_expires_at_ms: int | None = None


def room_join(*, deal_id: UUID | str, user_id: UUID | str) -> Ticket | RoomRefusal:
    """Takes a place in the deal's line, or returns the one the shopper holds (idempotent)."""
    return _queue("join", deal_id, user_id)


def room_ticket(*, deal_id: UUID | str, user_id: UUID | str) -> Ticket | RoomRefusal:
    """The shopper's ticket as it is now."""
    return _queue("poll", deal_id, user_id)


def room_leave(*, deal_id: UUID | str, user_id: UUID | str) -> bool:
    """Gives up the shopper's place or admission; the slot goes to the next in line. False when
    they held none."""
    return _run("leave", deal_id, user_id, now_ms=_now_ms())[0] == "LEFT"


def _now_ms() -> int:
    """The room's clock is the purchase's (reserve.py): the web server's, pinned by tests."""
    return epoch_ms(timezone.now())


def _run(op: str, deal_id: UUID | str, user_id: UUID | str, *, now_ms: int) -> list:
    keys = deal_keys(deal_id)
    try:
        return run_script(
            "queue",
            keys=[
                keys.state,
                keys.queue,
                keys.tickets,
                keys.admitted,
                keys.expiry,
                keys.room,
                deal_rate_key(deal_id, now_ms // 60_000),
            ],  # fmt: skip
            args=[op, str(user_id), now_ms, RATE_TTL_SECONDS],
        )
    except redis.RedisError as exc:
        logger.warning("waiting room of deal %s unavailable: %s", deal_id, exc)
        raise ServiceUnavailable("The waiting room is unavailable; retry shortly.") from exc


def _queue(op: str, deal_id: UUID | str, user_id: UUID | str) -> Ticket | RoomRefusal:
    now_ms = _now_ms()
    reply = _run(op, deal_id, user_id, now_ms=now_ms)
    match reply[0]:
        case "WAITING":
            return _waiting(reply, now_ms)
        case "ADMITTED":
            admitted_at, expires_at, created = int(reply[1]), int(reply[2]), bool(reply[3])
            return Ticket(
                TicketState.ADMITTED,
                created=created,
                position=0,
                estimated_wait_s=0,
                admission=admission_sign(
                    deal_id=deal_id,
                    user_id=user_id,
                    admitted_at=admitted_at,
                    expires_at=expires_at,
                ),  # fmt: skip
                admission_expires_at_ms=expires_at,
            )
        case "SOLD_OUT":
            return Ticket(TicketState.SOLD_OUT)
        case "CLOSED":
            return Ticket(TicketState.CLOSED)
    return RoomRefusal(reply[0])


def _waiting(reply: list, now_ms: int) -> Ticket:
    position, waiting, created = int(reply[1]), int(reply[2]), bool(reply[3])
    rate, starts_at = int(reply[4]), int(reply[5])
    if position == 0:  # before the start: the place is drawn then
        until = max(0, math.ceil((starts_at - now_ms) / 1000))
        return Ticket(TicketState.WAITING, created, None, waiting, until, _poll_after(until))
    wait = math.ceil(position / rate) if rate > 0 else None
    return Ticket(TicketState.WAITING, created, position, waiting, wait, _poll_after(wait))


def _poll_after(wait: int | None) -> int:
    """Come back when your turn is due: the estimated wait, at least a second, at most
    WAITING_ROOM_MAX_POLL_SECONDS (so a sell-out reaches every waiter within it). A shopper then
    polls a few times in all rather than every few seconds: the line's polls per second stay
    near the admission rate however long the line grows, instead of growing with it."""
    ceiling = settings.WAITING_ROOM_MAX_POLL_SECONDS
    return ceiling if wait is None else max(1, min(ceiling, wait))


# --- The admission: signed here, checked here and in reserve.lua --------------------------------


@cache
def _signing_key(secret: str) -> bytes:
    return hashlib.sha256(b"flashdeals.admission:" + secret.encode()).digest()


def _signature(deal_id: UUID | str, user_id: UUID | str, admitted_at: int, expires_at: int) -> str:
    message = f"{deal_id}|{user_id}|{admitted_at}|{expires_at}".encode()
    digest = hmac.digest(_signing_key(settings.SECRET_KEY), message, "sha256")
    return base64.urlsafe_b64encode(digest[:18]).decode()


def admission_sign(
    *, deal_id: UUID | str, user_id: UUID | str, admitted_at: int, expires_at: int
) -> str:
    """`<admitted at>.<expires at>.<signature>`: bound to the shopper and the deal by the
    signature, short-lived by its expiry, single use because reserve.lua uses up the admission
    it names (admitted at) in the same step that reserves."""
    return f"{admitted_at}.{expires_at}.{_signature(deal_id, user_id, admitted_at, expires_at)}"


def admission_check(
    token: str, *, deal_id: UUID | str, user_id: UUID | str, now_ms: int | None = None
) -> int | None:
    """The admission's "admitted at" when `token` is one this server signed for this shopper
    and deal and it has not expired; None otherwise (forged, altered, another shopper's or
    deal's, expired, malformed). Whether it is still outstanding (not used, lapsed or revoked)
    is reserve.lua's to say."""
    if len(token) > ADMISSION_MAX_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    admitted_at, expires_at = int(parts[0]), int(parts[1])
    expected = _signature(deal_id, user_id, admitted_at, expires_at)
    if not hmac.compare_digest(expected, parts[2]):
        return None
    if expires_at <= (_now_ms() if now_ms is None else now_ms):
        return None
    return admitted_at


# --- The draw, re-run from the published seed ---------------------------------------------------


def prequeue_draw(seed: str, user_id: UUID | str) -> int:
    """A pre-queue shopper's draw: the first 12 hex digits of SHA1("<seed>:<user id>")."""
    return int(hashlib.sha1(f"{seed}:{user_id}".encode()).hexdigest()[:12], 16)  # noqa: S324


def prequeue_order(seed: str, user_ids: Iterable[UUID | str]) -> list[str]:
    """The order in which the room admits the shoppers who joined before the start: by draw,
    ties by user id (as the sorted set orders them). Anyone holding the published seed and the
    list of pre-queue shoppers gets the same order; join time plays no part."""
    return sorted((str(u) for u in user_ids), key=lambda u: (prequeue_draw(seed, u), u))


# --- The operator's figures ---------------------------------------------------------------------

WAIT_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)  # room_lib.lua's, in seconds


@dataclass(frozen=True)
class RoomFigures:
    waiting: int  # in line now
    admitted_now: int  # admissions outstanding (not used, not lapsed)
    joins: int  # places ever taken
    admitted: int  # shoppers ever admitted
    lapsed: int  # admissions that expired unused
    revoked: int  # admissions sent back to the line because the stock fell below them
    wait_p50_s: int | None  # upper bound of the bucket holding the median wait; None: no data
    wait_p95_s: int | None  # (a wait above the last bucket shows as None too: "longer")


def room_figures(deal_id: UUID | str) -> RoomFigures:
    """The room's figures now (one round trip). The live page and the metrics endpoint read
    them inside their own pipelined reads instead (`queue_room_reads`)."""
    pipe = gate_redis().pipeline(transaction=False)
    queue_room_reads(pipe, deal_id)
    return room_figures_from(pipe.execute())


ROOM_READS = 3  # replies `queue_room_reads` adds to a pipeline


def queue_room_reads(pipe: redis.client.Pipeline, deal_id: UUID | str) -> int:
    """Queues the reads behind RoomFigures on `pipe`, so a caller reads them in the same round
    trip as everything else; `room_figures_from` turns their ROOM_READS replies into figures.
    Returns ROOM_READS. Cheap whether the room is on or not (two ZCARDs, one small hash)."""
    keys = deal_keys(deal_id)
    pipe.zcard(keys.queue)
    pipe.zcard(keys.expiry)
    pipe.hgetall(keys.room)
    return ROOM_READS


def room_figures_from(replies: list) -> RoomFigures:
    """RoomFigures from the replies of `queue_room_reads`, in order."""
    waiting, outstanding, room = replies
    counts = [int(room.get(f"w:{bound}", 0)) for bound in WAIT_BUCKETS]
    counts.append(int(room.get("w:inf", 0)))
    return RoomFigures(
        waiting=int(waiting),
        admitted_now=int(outstanding),
        joins=int(room.get("joins", 0)),
        admitted=int(room.get("admitted", 0)),
        lapsed=int(room.get("lapsed", 0)),
        revoked=int(room.get("revoked", 0)),
        wait_p50_s=_quantile(counts, 0.50),
        wait_p95_s=_quantile(counts, 0.95),
    )


def _quantile(counts: list[int], q: float) -> int | None:
    total = sum(counts)
    if not total:
        return None
    running = 0
    for bound, count in zip((*WAIT_BUCKETS, None), counts, strict=True):
        running += count
        if running >= q * total:
            return bound
    return None
