"""Rate limits where abuse is cheap for the client and costly for us (docs/security.md, "Rate
limits"): logins, registrations, token refreshes, the readiness probe, purchases and queue
joins (purchase_limit, queue_join_limit).

One library, `limits`, with its moving-window strategy on the app's Redis server: each hit is one
Lua script (EVALSHA) that checks the window and records the hit in the same atomic step, so 20
simultaneous requests against a limit of 5 let exactly 5 through. DRF's throttles read the
history from the cache, decide in Python and write it back, and under concurrency every racer
passes (RATE_LIMIT_UNSAFE_READ_THEN_WRITE reproduces that here for the negative control).

Keys live under `<REDIS_KEY_PREFIX>:ratelimit:` in the gate's database and nowhere near a deal's
`{deal:<id>}` keys; this module is the only one that touches them. Each is a list of at most
`count` timestamps that expires with its window, so a server that never evicts (the gate's, by
design) is never filled by them. The window's clock is the web process's (`time.time()`), so web
hosts need synchronised clocks (NTP); a skew of s seconds moves a window's edge by s.

Callers pass the client address (client_address below) with every hit: an address in
RATE_LIMIT_EXEMPT_ADDRESSES skips every rule, per-account and per-shopper rules included, which
is what a load generator driving many shoppers from one address needs.
"""

import functools
import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.http import HttpRequest
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from .errors import RateLimited, ServiceUnavailable
from .middleware import is_trusted_proxy
from .redis import get_redis, key

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED = Counter(
    "flashdeals_rate_limited_total",
    "Requests refused with 429 RATE_LIMITED, by rate-limit rule.",
    ["rule"],
)
STORAGE_ERRORS = Counter(
    "flashdeals_rate_limit_storage_errors_total",
    "Rate-limit checks that could not reach Redis, by rule (let through unless it fails closed).",
    ["rule"],
)


@dataclass(frozen=True)
class Rule:
    """A named limit; its counts come from settings.RATE_LIMITS[name].

    `fail_open`: with Redis unreachable, let the request through (True, with a warning and a
    counted storage error) or refuse it with 503 (False). Every rule so far fails open: the
    limits protect CPU and the database from a flood, and while the gate's Redis is down no deal
    sells anyway (the gate fails closed), so refusing logins too would only make an outage
    bigger. A rule that guards something worth more than availability fails closed.
    """

    message: str
    fail_open: bool = True


RULES: dict[str, Rule] = {
    "login_account": Rule("Too many login attempts for this account; retry later."),
    "login_address": Rule("Too many login attempts from this address; retry later."),
    "register_address": Rule("Too many registrations from this address; retry later."),
    "refresh_address": Rule("Too many token refreshes from this address; retry later."),
    "readiness_address": Rule("Too many readiness probes from this address; retry later."),
    # Purchases and queue joins. Fail open like the rest: with the gate's Redis down no purchase
    # passes anyway (the stock gate fails closed), and these share that server.
    "purchase_shopper": Rule("Too many purchases from this shopper; retry later."),
    "purchase_address": Rule("Too many purchases from this address; retry later."),
    "queue_join_shopper": Rule("Too many queue joins from this shopper; retry later."),
    "queue_join_address": Rule("Too many queue joins from this address; retry later."),
}

# The negative control's write: record a hit whatever the window holds.
_UNBOUNDED = 1_000_000


@functools.lru_cache(maxsize=4)
def _limiter(client: redis.Redis, prefix: str) -> MovingWindowRateLimiter:
    """One limiter per Redis client (tests swap the client). It shares the client's connection
    pool, so a hit costs no connection of its own; `register_script` makes no round trip."""
    storage = RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix=prefix)
    return MovingWindowRateLimiter(storage)


@functools.lru_cache(maxsize=64)
def _items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


def _identity_key(identity: str) -> str:
    """Keys carry a digest, not the identity: no email addresses in Redis, bounded key length,
    and no separator in a client-chosen value."""
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def rate_limit_hit(rule_name: str, identity: str, *, client_address: str) -> None:
    """Counts one request against `rule_name` for `identity` (an account, a shopper, an address)
    and raises RateLimited (429, Retry-After: seconds until the window lets one more through)
    when the rule's window is full. A refused request is not recorded: however hard a client
    keeps hammering, the wait ends one window after the oldest hit the window holds.

    `client_address` (from client_address()) decides the exemption; for a per-address rule it
    is also the identity. One Redis round trip per limit in the rule (one more on refusal).
    """
    if is_exempt(client_address):
        return
    rule = RULES[rule_name]
    limiter = _limiter(get_redis(), key("ratelimit"))
    ident = _identity_key(identity)
    try:
        for item in _items(settings.RATE_LIMITS[rule_name]):
            if not _hit(limiter, item, rule_name, ident):
                REFUSED.labels(rule_name).inc()
                raise RateLimited(
                    rule.message,
                    retry_after=_retry_after(limiter, item, rule_name, ident),
                    details={"rule": rule_name},
                )
    except redis.RedisError as exc:
        STORAGE_ERRORS.labels(rule_name).inc()
        if not rule.fail_open:
            raise ServiceUnavailable() from exc
        logger.warning("rate limit %s not checked (Redis unreachable): %r", rule_name, exc)


def _hit(limiter: MovingWindowRateLimiter, item: RateLimitItem, rule: str, ident: str) -> bool:
    if not settings.RATE_LIMIT_UNSAFE_READ_THEN_WRITE:
        return limiter.hit(item, rule, ident)  # check and record: one atomic script
    # Negative control only: DRF's SimpleRateThrottle (read the history, compare, write back).
    storage = limiter.storage
    assert isinstance(storage, RedisStorage)
    item_key, expiry = item.key_for(rule, ident), item.get_expiry()
    _, count = storage.get_moving_window(item_key, item.amount, expiry)
    if settings.RATE_LIMIT_UNSAFE_AFTER_READ:
        settings.RATE_LIMIT_UNSAFE_AFTER_READ(rule)
    if count >= item.amount:
        return False
    storage.acquire_entry(item_key, _UNBOUNDED, expiry)
    return True


def _retry_after(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, rule: str, ident: str
) -> int:
    """Whole seconds until the oldest hit in the full window leaves it (at least 1)."""
    try:
        reset = limiter.get_window_stats(item, rule, ident).reset_time
    except redis.RedisError:
        return item.get_expiry()
    return max(1, math.ceil(reset - time.time()))


# --- Purchases and queue joins ---------------------------------------------------------------


def purchase_limit(request: HttpRequest) -> None:
    """POST /orders: raises RateLimited past `purchase_shopper` or `purchase_address`. Call it
    first, once the request is authenticated and before validation or any gate work, so a
    refused purchase costs one or two Redis round trips and nothing else (the direct purchase
    path has read the JSON by then, to decide it is the one that answers)."""
    _shopper_then_address(request, "purchase_shopper", "purchase_address")


def queue_join_limit(request: HttpRequest) -> None:
    """A deal's queue join: the same as purchase_limit with the `queue_join_*` rules."""
    _shopper_then_address(request, "queue_join_shopper", "queue_join_address")


def _shopper_then_address(request: HttpRequest, shopper_rule: str, address_rule: str) -> None:
    """The shopper's rule first: a shopper refused by their own limit then leaves the address's
    budget, which neighbours behind the same NAT share, untouched. (Logins count the address
    first for the mirror reason: there the account is the victim's.) An exempt address makes
    no Redis call at all."""
    address = client_address(request)
    shopper = request.user.pk  # authenticated: the views require it
    rate_limit_hit(shopper_rule, str(shopper), client_address=address)
    rate_limit_hit(address_rule, address, client_address=address)


# --- Client addresses --------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr)


@functools.lru_cache(maxsize=4096)  # per request, for REMOTE_ADDR: the same few peers repeat
def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:51234
        value = value.partition(":")[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def client_address(request: HttpRequest) -> str:
    """The address to count a request against: the TCP peer (REMOTE_ADDR), unless the peer is
    one of settings.TRUSTED_PROXIES; then the right-most X-Forwarded-For hop that is not itself
    a trusted proxy (each proxy appends the address it saw, so everything left of that hop was
    written by the client and proves nothing). IPv6 clients count per /64, the block one
    subscriber gets, or rotating addresses inside it would each get a fresh budget.

    Returns "1.2.3.4", "2001:db8:1:2::/64", or "unknown" for a peer that is not an IP address
    (a unix socket with no trusted proxy configured).
    """
    peer = _parse(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return "unknown"
    ip = peer
    if is_trusted_proxy(str(peer)):
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:  # garbage can only come from the client's side: stop here
                break
            ip = parsed
            if not is_trusted_proxy(str(parsed)):
                break
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def is_exempt(address: str) -> bool:
    """True when `address` (from client_address) is inside RATE_LIMIT_EXEMPT_ADDRESSES."""
    return _exempt(address, tuple(settings.RATE_LIMIT_EXEMPT_ADDRESSES))


@functools.lru_cache(maxsize=4096)
def _exempt(address: str, cidrs: tuple[str, ...]) -> bool:
    """Cached per address: parsing it into a network cost a purchase two ipaddress parses
    (shopper and address rules). The setting is part of the key, so a change is never stale."""
    exempt = _networks(cidrs)
    if not exempt:
        return False
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return False
    return any(
        net.version == other.version and net.subnet_of(other)  # type: ignore[arg-type]
        for other in exempt
    )
