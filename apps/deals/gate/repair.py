"""Reconciliation's view of the gate: read a deal's counters and replace them only if nothing
touched them since (WATCH / MULTI / EXEC).

The orders app decides what the counters should be (it has PostgreSQL); the gate owns the keys.
A purchase, release or write landing between the read and the replacement aborts it with
`CountersChanged`, and reconciliation tries again at its next run.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import redis

from .client import deal_pipeline
from .keys import deal_keys
from .reservation import Reservation


class CountersChanged(Exception):
    """The deal's counters moved while they were being checked; nothing was replaced."""


@dataclass
class WatchedCounters:
    remaining: int
    users: dict[str, int]  # user_id -> units held, as Redis has them
    pending: dict[str, Reservation]  # accepted, not yet written
    _pipe: redis.client.Pipeline
    _deal_id: str
    _closed: bool = False

    def _live(self) -> None:
        # After EXEC, or outside `counters_watched`, nothing is watched: a write would be blind.
        if self._closed:
            raise RuntimeError("these counters are no longer watched; read them again")

    def released(self, order_ids: Sequence[str]) -> list[bool]:
        """Whether each order's units already went back to the deal (release.lua's set)."""
        if not order_ids:
            return []
        key = deal_keys(self._deal_id).released
        return [bool(x) for x in self._pipe.smismember(key, list(order_ids))]

    def unchanged(self) -> bool:
        """Whether nothing touched the counters since they were read (an empty MULTI/EXEC under
        the WATCH): a check that only looks uses it to tell drift from a purchase meanwhile."""
        self._live()
        self._pipe.multi()
        try:
            self._pipe.execute()
        except redis.WatchError:
            return False
        finally:
            self._closed = True  # EXEC ended the WATCH
        return True

    def replace(self, *, remaining: int, users: dict[str, int]) -> None:
        """Sets the counters in one transaction; CountersChanged if they moved since the read."""
        self._live()
        self._closed = True  # EXEC ends the WATCH, whatever it answers
        keys = deal_keys(self._deal_id)
        self._pipe.multi()
        self._pipe.hset(keys.state, "remaining", remaining)
        self._pipe.delete(keys.users)
        held = {user: units for user, units in users.items() if units}
        if held:
            self._pipe.hset(keys.users, mapping=held)  # type: ignore[arg-type]  # str -> int
        try:
            self._pipe.execute()
        except redis.WatchError as exc:
            raise CountersChanged() from exc


@contextmanager
def counters_watched(deal_id: UUID | str) -> Iterator[WatchedCounters | None]:
    """Yields the deal's counters under WATCH (None when it has no state in Redis)."""
    keys = deal_keys(deal_id)
    with deal_pipeline(deal_id) as pipe:  # WATCH: one connection to the deal's server
        pipe.watch(keys.state, keys.users, keys.pending, keys.released)
        remaining = pipe.hget(keys.state, "remaining")
        if remaining is None:
            yield None
            return
        counters = WatchedCounters(
            remaining=int(remaining),
            users={str(user): int(units) for user, units in pipe.hgetall(keys.users).items()},
            pending={
                str(k): Reservation.from_json(v) for k, v in pipe.hgetall(keys.pending).items()
            },
            _pipe=pipe,
            _deal_id=str(deal_id),
        )
        try:
            yield counters
        finally:
            counters._closed = True
