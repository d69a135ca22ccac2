"""The gate's Redis: one server, or a Valkey (Redis) Cluster when GATE_REDIS_URL says so.

    GATE_REDIS_URL unset          the gate shares REDIS_URL's client (apps.core.redis)
    redis://host:port/0           a server of its own
    redis+cluster://h1:p1,h2:p2   a cluster, through redis-py's RedisCluster; the nodes listed
                                  are seeds, the client discovers the rest and follows failovers

Every key of a deal carries the hash tag `{deal:<id>}` (keys.py), so a deal lives in one slot,
on one shard, and every script runs there. Two ways in:

- `gate_redis()` routes each command by its key: single-key commands, scripts (their KEYS are in
  one slot), and pipelines that read many deals (RedisCluster splits them by node).
- `key_redis(key)` is a plain client to the primary that holds the key now (`deal_pipeline`
  for a deal's), for what must run on one server connection: a script followed by WAITAOF
  (which waits for the writes of the connection that sends it), MULTI/EXEC, WATCH.
  RedisCluster would send WAITAOF to a default node, and its transactions are newer than the
  rest of it.

A plain client does not follow a failover by itself: a routing error on it (the primary gone,
MOVED from a demoted one, CLUSTERDOWN) goes through `routing_failed`, and the next
`key_redis` re-reads the slot map, at most every ROUTING_REFRESH_SECONDS. The request that
met the error answers 503 (retryable), as with any gate outage.

The cache (django-redis has no cluster support) and the Celery broker (kombu can't use a
cluster) stay on servers of their own; so do rate limits, token revocation, the beat heartbeat
(REDIS_URL) and redbeat's lock (the broker).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import redis
from django.conf import settings
from redis.client import Pipeline
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)  # fmt: skip

from apps.core.redis import GateServerUnsafe, get_redis

from .keys import deal_keys

CLUSTER_SCHEME = "redis+cluster"
ROUTING_REFRESH_SECONDS = 0.5
# What a stale slot map looks like from a plain client: the node is gone, or no longer serves
# the slot (MOVED / READONLY from a demoted primary), or the cluster is re-electing.
_ROUTING_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    AskError,
    ClusterDownError,
    ReadOnlyError,
    TryAgainError,
)  # fmt: skip  (MovedError is an AskError)


def on_cluster() -> bool:
    return urlsplit(settings.GATE_REDIS_URL).scheme == CLUSTER_SCHEME


def gate_redis() -> redis.Redis | RedisCluster:
    """The gate's client: routes each command by its keys (see the module's docstring). A
    cluster none of whose seeds answers raises redis.ConnectionError, as a server down does."""
    url = settings.GATE_REDIS_URL
    if not url:
        return get_redis()
    try:
        return _client(url)
    except RedisClusterException as exc:  # (not a RedisError: callers would answer 500)
        raise redis.ConnectionError(f"the gate's cluster is unreachable: {exc}") from exc


@contextmanager
def deal_pipeline(deal_id: UUID | str, *, transaction: bool = True) -> Iterator[Pipeline]:
    """A pipeline on one connection to the server that holds this deal's keys now (MULTI/EXEC,
    WATCH); a routing error inside the block marks the slot map stale."""
    try:
        with key_redis(deal_keys(deal_id).state).pipeline(transaction=transaction) as pipe:
            yield pipe
    except redis.RedisError as exc:
        routing_failed(exc)
        raise


def key_redis(key: str) -> redis.Redis:
    """A plain client to the server that holds `key` now. A slot no node serves (a shard
    with no node left), or a map that can't be read, is a redis.ConnectionError."""
    client = gate_redis()
    if not isinstance(client, RedisCluster):
        return client
    routing = _routing(client)
    try:
        routing.refresh_if_stale()
        return client.get_redis_connection(client.get_node_from_key(key))
    except RedisClusterException as exc:  # SlotNotCoveredError too; not RedisErrors
        routing.stale = True
        raise redis.ConnectionError(f"no node of the gate's cluster serves {key}: {exc}") from exc


def deal_server(deal_id: UUID | str) -> tuple[str, int]:
    """(host, port) of the server that holds the deal's keys now: for tools that place deals on
    shards or break the one a deal is on (the lab's topology drill)."""
    address = key_redis(deal_keys(deal_id).state).connection_pool.connection_kwargs
    return str(address["host"]), int(address["port"])


def routing_failed(exc: BaseException) -> None:
    """Called with an error met on a `key_redis` client: if it says the slot map is stale, the
    next `key_redis` re-reads it. Anything else is left alone."""
    client = gate_redis()
    if not isinstance(client, RedisCluster):
        return
    if isinstance(exc, _ROUTING_ERRORS):
        _routing(client).stale = True


def gate_nodes() -> list[redis.Redis]:
    """A plain client per primary: one for a single server. For what must be done on each
    (loading scripts, checking the server's configuration)."""
    client = gate_redis()
    if not isinstance(client, RedisCluster):
        return [client]
    return [client.get_redis_connection(node) for node in client.get_primaries()]


class _Routing:
    """Whether the cluster's slot map may be stale, and when it was last re-read."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.stale = False
        self.refreshed = 0.0

    def refresh_if_stale(self) -> None:
        now = time.monotonic()
        if not self.stale or now - self.refreshed < ROUTING_REFRESH_SECONDS:
            return
        self.refreshed = now
        try:
            self.cluster.nodes_manager.initialize()
        except (redis.RedisError, RedisClusterException):
            return  # still stale: the next call tries again
        self.stale = False


@cache
def _routing(cluster: RedisCluster) -> _Routing:
    return _Routing(cluster)


@cache
def _client(url: str) -> redis.Redis | RedisCluster:
    """One client per URL and process (redis-py resets its pools after a fork)."""
    options: dict[str, Any] = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": 1,
        "health_check_interval": 30,
        "decode_responses": True,
    }
    if urlsplit(url).scheme != CLUSTER_SCHEME:
        return redis.Redis.from_url(url, **options)
    seeds = [
        ClusterNode(host, int(port))
        for host, _, port in (seed.rpartition(":") for seed in urlsplit(url).netloc.split(","))
    ]
    # A shard that is failing over must not stop the others: the client keeps serving the slots
    # it can reach (the servers run with cluster-require-full-coverage no).
    return RedisCluster(startup_nodes=seeds, require_full_coverage=False, **options)


def gate_ping() -> None:
    """PING the gate's server (each primary of a cluster, one round trip each): raises
    redis.RedisError when one does not answer within REDIS_SOCKET_TIMEOUT. The metrics'
    `flashdeals_gate_up` (apps.deals.metrics)."""
    for node in gate_nodes():
        node.ping()


def check_gate_server() -> None:
    """Raises GateServerUnsafe unless the gate's server (each primary of a cluster; a replica
    must be configured the same, as it may become one) never evicts (maxmemory-policy
    noeviction) and, with GATE_DURABLE_ACK, keeps an AOF (appendonly yes; without one every
    purchase would be refused as not durable). The cache may share the server: with
    noeviction a full server refuses cache writes, which fail open, and never drops a gate key.
    Where CONFIG is disabled (some managed services) set these there and
    REDIS_EVICTION_CHECK=false."""
    if not settings.REDIS_EVICTION_CHECK:
        return
    for node in gate_nodes():
        _check_node(node)


def _check_node(node: redis.Redis) -> None:
    try:
        config = node.config_get("maxmemory-policy", "appendonly")
    except redis.ResponseError:
        config = {}
    policy = config.get("maxmemory-policy", "unknown (CONFIG is disabled)")
    if policy != "noeviction":
        raise GateServerUnsafe(
            f"maxmemory-policy is {policy}; the deal gate's Redis needs "
            "maxmemory-policy noeviction (an evicted key loses accepted purchases)"
        )
    if settings.GATE_DURABLE_ACK and config.get("appendonly") != "yes":
        raise GateServerUnsafe(
            "appendonly is no; the deal gate's Redis needs appendonly yes (and appendfsync "
            "always): purchases are answered only once WAITAOF confirms them on disk"
        )
