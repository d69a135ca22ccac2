"""Cache-aside for catalog and deal reads (scenario product-list-slow).

Keys embed one version number per *scope* ("catalog" for products, "deals" for deals); a write
bumps its scope's version when its transaction commits, so every key written before the change
becomes unreachable at once and a read after a write never sees the old page. Old entries are never
deleted one by one: they simply expire (TTL).

A version starts at the wall clock in nanoseconds, not at 1: if Redis loses the version key (a
restart, an eviction), the new start is far above every version used before, so no stale entry can
ever be addressed again.

Stampede protection for cold keys: the first request takes a short lock with `cache.add` and fills
the key; the others wait a bounded moment for it (polling, at most `WAIT_TOTAL`) and then compute
for themselves, so a lost lock holder costs latency, never an error. This is the only sleep on a
request path, and it happens only on a cold key for requests that lost the race (see
docs/catalog-and-deals.md). A request that starts waiting logs it at DEBUG (`cache_fill="wait"`).
The test-only setting CATALOG_CACHE_NAIVE_FILLS turns the lock off (every miss computes), so the
negative control races this code rather than a copy of it.

Switched off entirely by `settings.CATALOG_CACHE_ENABLED` (the scenario's "before"). Values are
JSON-ready dicts, never model instances. The cache fails open: django-redis ignores connection
errors outside tests (IGNORE_EXCEPTIONS), so an outage degrades to database reads.
"""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")

logger = logging.getLogger(__name__)

CATALOG = "catalog"
DEALS = "deals"
LOCK_SECONDS = 5  # a crashed filler blocks nobody for longer than this
WAIT_STEP = 0.01
WAIT_TOTAL = 0.3


def _version_key(scope: str) -> str:
    return f"cv:{scope}"


def scope_versions(scopes: Iterable[str], *, also: str | None = None) -> tuple[list, Any]:
    """Current versions of `scopes` (and the value at key `also`, read in the same MGET) in one
    round trip (two on the very first read)."""
    keys = [_version_key(scope) for scope in scopes]
    found = cache.get_many([*keys, also] if also else keys)
    missing = [key for key in keys if key not in found]
    if missing:
        for key in missing:
            cache.add(key, time.time_ns(), timeout=None)
        found.update(cache.get_many(missing))
    return [found.get(key) for key in keys], found.get(also) if also else None


# The versions this process saw last, per scope tuple: the guess that lets a hit cost one MGET.
_last_versions: dict[tuple[str, ...], list] = {}


def _full_key(versions: list, key: Iterable[object]) -> str:
    return ":".join(["c", *map(str, versions), *map(str, key)])


def scope_bump(*scopes: str) -> None:
    """Makes every cached entry of `scopes` unreachable. Call only after the write committed."""
    for scope in scopes:
        key = _version_key(scope)
        try:
            cache.incr(key)
        except ValueError:  # no version yet (or Redis lost it): start above every old one
            cache.add(key, time.time_ns(), timeout=None)


def scope_changed(*scopes: str) -> None:
    """Bumps `scopes` when the current transaction commits (at once outside a transaction).

    Bumping before the commit would let a concurrent reader cache the old rows under the new
    version; bumping after it leaves no window in which a later reader can address old data.
    """
    transaction.on_commit(lambda: scope_bump(*scopes), robust=True)


def cache_aside(
    *,
    scopes: Iterable[str],
    key: Iterable[object],
    compute: Callable[[], T],
    ttl: int | Callable[[T], int] | None = None,
) -> T:
    """Returns the cached value for `key` under the current versions of `scopes`, computing and
    storing it on a miss. `ttl` may be a function of the computed value (seconds; <= 0: don't
    store). `compute` must not return None."""
    if not settings.CATALOG_CACHE_ENABLED:
        return compute()
    scopes, key = tuple(scopes), tuple(key)
    # Optimistic read: fetch the versions and the entry under the versions seen last, in one
    # MGET (atomic). The entry is served only if those versions are still current, so a read
    # after a write still never sees the old page; a changed version costs a second GET.
    guess = _last_versions.get(scopes)
    guessed_key = _full_key(guess, key) if guess else None
    versions, value = scope_versions(scopes, also=guessed_key)
    if None in versions:  # cache unreachable (fail open)
        return compute()
    _last_versions[scopes] = versions
    if versions == guess and value is not None:
        return value
    full_key = _full_key(versions, key)
    value = cache.get(full_key)
    if value is not None:
        return value
    if settings.CATALOG_CACHE_NAIVE_FILLS:  # test-only negative control: no stampede lock
        return _fill(full_key, compute, ttl)
    lock = f"{full_key}:fill"
    if cache.add(lock, 1, timeout=LOCK_SECONDS):
        try:
            return _fill(full_key, compute, ttl)
        finally:
            cache.delete(lock)
    logger.debug("waiting for another request to fill %s", full_key, extra={"cache_fill": "wait"})
    value = _wait_for(full_key)
    return compute() if value is None else value


def _fill(full_key: str, compute: Callable[[], T], ttl: int | Callable[[T], int] | None) -> T:
    value = compute()
    seconds = ttl(value) if callable(ttl) else (ttl or settings.CATALOG_CACHE_TTL)
    if seconds > 0:
        cache.set(full_key, value, timeout=seconds)
    return value


def _wait_for(full_key: str) -> Any:
    deadline = time.monotonic() + WAIT_TOTAL
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        value = cache.get(full_key)
        if value is not None:
            return value
    return None
