"""Revoked access: the users deactivated or deleted within the access-token lifetime.

Stateless authentication (AUTH_MODE=stateless) trusts a signed access token for its 60 minutes
without reading the user row, so a token outlives its user's deactivation or deletion. This
keeps, in Redis, a sorted set of user id -> when their access was revoked (epoch seconds); an
access token issued at or before that second is refused (401 INVALID_TOKEN). A user reactivated
later signs in again and gets a token issued after it.

Reads cost no round trip per request: each process keeps a copy and re-reads the set (one
ZRANGEBYSCORE) at most every AUTH_REVOCATION_REFRESH_SECONDS (1 s), so another process's
revocation takes effect here within that delay; the process that revokes sees it at once.
Entries older than the access-token lifetime are pruned at each write: every token issued
before them has expired.

Written by `user_access_revoke`, which the User signals call on deactivation and deletion
(apps.accounts.signals), inside the operator's transaction: if Redis can't take the record the
deactivation fails (fails closed) instead of leaving a live token for an hour. A read error keeps
the last copy and tries again a second later (fails open, logged, like the catalog cache): an
outage of the gate's Redis must not log every shopper out. The backstop behind a revocation not
seen yet is PostgreSQL: orders of a user who no longer exists are refused (401) or, when
accepted by the async pipeline, end `failed` with their units returned.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import cast
from uuid import UUID

import redis
from django.conf import settings

from apps.core.redis import get_redis, key

logger = logging.getLogger(__name__)

# Past the access-token lifetime, for web servers' clocks that disagree by seconds (and a
# leeway simplejwt may be given): an entry is kept until every token it refuses has expired.
_KEEP_MARGIN_SECONDS = 60


def _revoked_key() -> str:
    return key("auth", "revoked")


def _keep_seconds() -> float:
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    return lifetime + _KEEP_MARGIN_SECONDS


@dataclass
class _Copy:
    """This process's copy of the set: user id -> revoked at (epoch seconds)."""

    revoked: dict[str, int] = field(default_factory=dict)
    read_at: float = float("-inf")  # time.monotonic() of the last read attempt


_copy = _Copy()
_refreshing = threading.Lock()  # one reader per process at a time; the others use the copy
_swapping = threading.Lock()  # held for a dict update only: a revoke here is never lost


def _reset_after_fork() -> None:
    """A forked process re-reads at its first request and never inherits a held lock."""
    global _copy, _refreshing, _swapping
    _copy = _Copy(revoked=_copy.revoked.copy())
    _refreshing, _swapping = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def user_access_revoke(*, user_id: UUID | str) -> None:
    """Refuses every access token of `user_id` issued up to now. One round trip (add, and prune
    what has expired); raises redis.RedisError when Redis can't take it. Idempotent."""
    now = int(time.time())
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(_revoked_key(), {str(user_id): now})
    pipe.zremrangebyscore(_revoked_key(), "-inf", f"({now - _keep_seconds()}")
    pipe.execute()
    with _swapping:
        _copy.revoked[str(user_id)] = now  # this process: at once


def access_revoked(*, user_id: UUID, issued_at: int | None) -> bool:
    """Whether a token of `user_id` issued at `issued_at` (its `iat`, epoch seconds) was
    revoked. Reads Redis at most once per AUTH_REVOCATION_REFRESH_SECONDS per process."""
    revoked_at = _current().revoked.get(str(user_id))
    if revoked_at is None:
        return False
    return issued_at is None or issued_at <= revoked_at


def _current() -> _Copy:
    copy = _copy
    if time.monotonic() - copy.read_at < settings.AUTH_REVOCATION_REFRESH_SECONDS:
        return copy
    if not _refreshing.acquire(blocking=False):
        return copy  # another thread of this process is reading: use the copy meanwhile
    try:
        return _refresh()
    finally:
        _refreshing.release()


def _refresh() -> _Copy:
    global _copy
    started = time.monotonic()
    horizon = time.time() - _keep_seconds()
    try:
        rows = cast(
            list[tuple[str, float]],
            get_redis().zrangebyscore(_revoked_key(), horizon, "+inf", withscores=True),
        )
    except redis.RedisError as exc:
        logger.warning("revoked users not refreshed, keeping the last copy: %s", exc)
        _copy.read_at = started  # try again after the refresh interval, not at every request
        return _copy
    # Entries leave only by age, here as in Redis, so the new copy is the union: a revoke made
    # in this process while the read was on its way is never undone by the older answer.
    with _swapping:
        kept = {user: at for user, at in _copy.revoked.items() if at >= horizon}
        _copy = _Copy(revoked={**kept, **{user: int(at) for user, at in rows}}, read_at=started)
    return _copy
