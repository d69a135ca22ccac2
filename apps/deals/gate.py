"""The deal gate: a live deal's state in Redis, and the atomic reservation on it.

Public functions (other apps call only these):
- deal_state_load(deal)      put a published deal's state in Redis (rebuilding it from
                             PostgreSQL plus not-yet-written reservations if Redis lost it);
                             keeps the live `remaining` when the state is already there.
- deal_state_sync(deal)      copy the operator flags (paused/ended/window) into Redis.
- deal_state_unload(deal_id) drop a closed deal's state.
- deal_remaining(deal_ids)   live remaining units for deals whose state is in Redis.
- deal_backlog(deal_id)      reservations accepted but not yet written to PostgreSQL.
(Work in progress: stubs with the final signatures.)
"""

from collections.abc import Iterable
from uuid import UUID

from .models import Deal


def deal_state_load(deal: Deal) -> None:
    return None


def deal_state_sync(deal: Deal) -> None:
    return None


def deal_state_unload(deal_id: UUID) -> None:
    return None


def deal_remaining(deal_ids: Iterable[UUID]) -> dict[UUID, int]:
    return {}


def deal_backlog(deal_id: UUID) -> int:
    return 0
