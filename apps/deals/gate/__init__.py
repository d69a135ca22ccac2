"""The deal gate: the only code that touches a live deal's Redis keys.

Redis is the fast gate while a deal is live; PostgreSQL is the record. Every key of a deal
(keys.py) is read and written here, through a typed function; the Lua scripts (redis_scripts/)
make each purchase decision atomic. Other apps import from this package only:

    state          install / sync / stop / unload a deal's state, live reads, rebuild lock
    reserve        deal_reserve (reserve.lua), deal_release, reservation_lookup
    stream         the batch writer's stream protocol: read, re-claim, acknowledge, drain flag
    dead_letters   park, replay (replay.lua), claim, restore
    repair         reconciliation's WATCHed read-and-replace of the counters
    snapshot       the console's and the metrics endpoint's reads (reservations pending too long),
                   and what a post-sale report reads
    stats          purchase answers counted per deal, time to confirmation
    idempotency    a shopper's Idempotency-Key bound to one body across all of their orders
    room           the waiting room: join, poll, leave (queue.lua), the signed admission
                   reserve.lua checks, the pre-queue draw, the operator's figures
    sold_out       this process's memory of deals that answered sold out (no Redis at all)
    client         the gate's server or cluster (GATE_REDIS_URL), the check of its settings, PING
"""

from apps.core.redis import GateServerUnsafe

from .client import check_gate_server, deal_server, gate_nodes, gate_ping
from .dead_letters import (
    ReplayResult,
    dead_letter_claim,
    dead_letter_park,
    dead_letter_park_finish,
    dead_letter_rereserve,
    dead_letter_restore,
    dead_letters_among,
)
from .idempotency import Claim, idempotency_claim
from .repair import CountersChanged, WatchedCounters, counters_watched
from .reservation import DealTerms, Outcome, Reservation, ReservationState
from .reserve import ReserveResult, deal_release, deal_reserve, reservation_lookup
from .room import (
    RoomFigures,
    RoomRefusal,
    Ticket,
    TicketState,
    admission_check,
    admission_sign,
    prequeue_order,
    room_figures,
    room_join,
    room_leave,
    room_ticket,
)
from .scripts import SCRIPT_NAMES, scripts_preload
from .snapshot import (
    AfterSale,
    DealFigures,
    DealGauges,
    OverdueReservation,
    PendingOverdue,
    deal_after_sale,
    deal_live_counts,
    deal_pending_overdue,
    deals_figures,
    live_deal_gauges,
)
from .sold_out import sold_out_forget, sold_out_forget_all, sold_out_known, sold_out_remember
from .state import (
    REDIS_PIPELINES,
    Counters,
    Holdings,
    deal_backlog,
    deal_backlog_key,
    deal_counters,
    deal_remaining,
    deal_sales_stop,
    deal_state_behind,
    deal_state_close,
    deal_state_forget,
    deal_state_load,
    deal_state_loaded,
    deal_state_read,
    deal_state_sync,
    deal_state_unload,
    live_deal_ids,
    live_deals_reassert,
    pending_snapshot,
    rebuild_lock,
    rebuild_unlock,
)
from .stats import confirmation_histogram, confirmations_since, purchase_outcome_record
from .stream import (
    StreamEntry,
    drain_flag_clear,
    drain_flag_refresh,
    drain_flag_take,
    reservations_done,
    stream_claim_stale,
    stream_deliveries,
    stream_group_ensure,
    stream_held,
    stream_read,
    stream_undelivered,
)

__all__ = [
    "REDIS_PIPELINES",
    "AfterSale",
    "SCRIPT_NAMES",
    "Counters",
    "Claim",
    "GateServerUnsafe",
    "check_gate_server",
    "deal_server",
    "gate_nodes",
    "gate_ping",
    "CountersChanged",
    "DealFigures",
    "DealGauges",
    "DealTerms",
    "Holdings",
    "Outcome",
    "OverdueReservation",
    "PendingOverdue",
    "ReplayResult",
    "Reservation",
    "ReservationState",
    "ReserveResult",
    "RoomFigures",
    "RoomRefusal",
    "Ticket",
    "TicketState",
    "admission_check",
    "admission_sign",
    "prequeue_order",
    "room_figures",
    "room_join",
    "room_leave",
    "room_ticket",
    "StreamEntry",
    "WatchedCounters",
    "confirmation_histogram",
    "confirmations_since",
    "counters_watched",
    "deal_backlog",
    "deal_backlog_key",
    "deal_after_sale",
    "deal_counters",
    "deal_live_counts",
    "deal_pending_overdue",
    "deals_figures",
    "deal_release",
    "deal_remaining",
    "deal_reserve",
    "deal_sales_stop",
    "deal_state_behind",
    "deal_state_forget",
    "deal_state_close",
    "deal_state_load",
    "deal_state_loaded",
    "deal_state_read",
    "deal_state_sync",
    "deal_state_unload",
    "dead_letter_claim",
    "dead_letter_park",
    "dead_letter_park_finish",
    "dead_letter_rereserve",
    "dead_letter_restore",
    "dead_letters_among",
    "drain_flag_clear",
    "drain_flag_refresh",
    "drain_flag_take",
    "idempotency_claim",
    "live_deal_gauges",
    "live_deal_ids",
    "live_deals_reassert",
    "pending_snapshot",
    "purchase_outcome_record",
    "rebuild_lock",
    "rebuild_unlock",
    "reservation_lookup",
    "reservations_done",
    "scripts_preload",
    "sold_out_forget",
    "sold_out_forget_all",
    "sold_out_known",
    "sold_out_remember",
    "stream_claim_stale",
    "stream_deliveries",
    "stream_group_ensure",
    "stream_held",
    "stream_read",
    "stream_undelivered",
]
