"""Every process of the scaled-out topology on loopback, started, listed, broken and stopped.

    gate      Valkey Cluster: 3 shards x (primary + replica)     scripts/valkey_cluster.py
    broker    Valkey: Celery's broker (db 0) and REDIS_URL (db 1: rate limits, revocations,
              the beat heartbeat; redbeat's schedule and lock live with the broker)
    cache     Valkey: Django's cache (may evict; never the gate's server)
    postgres  PostgreSQL (embedded, .devdata/topology), reached only through
    pgbouncer PgBouncer, transaction pooling (Debian's pgbouncer)
    web1/2    gunicorn, each its own node (Procfile's web line)
    haproxy   HAProxy in front of web1/2 (deploy/haproxy.cfg, health-checked)
    worker1/2 Celery workers (Procfile's worker line)
    beat1/2   Celery beat on redbeat: one sends, the other waits on its lock

Processes are children of the thread that starts them and die with it (PR_SET_PDEATHSIG).
"""

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from apps.core.tests.celery_worker import _die_with_parent
from apps.core.tests.pgbouncer import PgBouncer
from apps.core.tests.redis_server import RedisServer, free_port
from scripts import devstack
from scripts.valkey_cluster import Cluster, start_cluster

ROOT = Path(__file__).resolve().parents[3]
# Shorter than production so a test run sees the sweeps and the takeover within seconds.
TIMINGS = {
    "ORDER_PENDING_SWEEP_AGE_MS": "3000", "ORDER_STREAM_RECLAIM_IDLE_MS": "2000",
    "BEAT_LOCK_TIMEOUT": "6",
}  # fmt: skip


def missing_tools() -> list[str]:
    """Debian packages the topology drives that this machine lacks."""
    return [name for name in ("haproxy", "pgbouncer")
            if not shutil.which(name) and not Path(f"/usr/sbin/{name}").exists()]  # fmt: skip


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@dataclass
class Proc:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    where: str = ""

    def start(self) -> "Proc":
        with open(self.log, "a") as log:
            self.popen = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """To the whole process group: gunicorn's and Celery's children too."""
        if self.running():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 15) -> None:
        self.signal(signal.SIGTERM)
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Topology:
    workdir: Path
    database_url: str  # PostgreSQL itself (migrations go there directly, not through PgBouncer)
    gate: Cluster | None = None
    broker: RedisServer | None = None
    cache: RedisServer | None = None
    bouncer: PgBouncer | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['haproxy']}"

    # --- start ------------------------------------------------------------------------------

    def start_servers(self, progress: Callable[[str], None]) -> None:
        """The gate's cluster, the broker, the cache and PgBouncer; then `env` is known."""
        self.logs.mkdir(parents=True, exist_ok=True)
        progress("starting the gate's Valkey Cluster (3 shards, a replica each)...")
        self.gate = start_cluster(self.workdir / "gate", shards=3, replicas=1)
        progress("starting the broker and the cache (Valkey)...")
        self.broker = RedisServer(self.workdir / "broker").start()
        self.cache = RedisServer(self.workdir / "cache", appendonly=False).start()
        progress("starting PgBouncer (transaction pooling) in front of PostgreSQL...")
        self._start_pgbouncer()
        self.env = self._environment()

    def start_processes(self, progress: Callable[[str], None]) -> None:
        progress("migrating (directly on PostgreSQL, not through PgBouncer)...")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT,
                       env=self.env | {"DATABASE_URL": self.database_url}, check=True)  # fmt: skip
        progress("starting web1, web2, HAProxy, worker1, worker2, beat1, beat2...")
        for n in (1, 2):
            self.ports[f"web{n}"] = free_port()
            self.web_start(n)
        self._start_haproxy()
        for n in (1, 2):
            self.worker_start(n)
            self.beat_start(n)
        self.wait_healthy()

    def _spawn(self, name: str, command: list[str], env: dict[str, str], where: str = "") -> Proc:
        proc = Proc(name, command, self.env | env, self.logs / f"{name}.log", where=where)
        self.procs[name] = proc.start()
        return proc

    def _environment(self) -> dict[str, str]:
        assert self.gate and self.broker and self.cache
        broker = f"redis://127.0.0.1:{self.broker.port}"
        parts = urlsplit(self.database_url)
        bouncer = urlunsplit(
            parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.bouncer.port}")
        )
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashdeals.settings.local",
            "DATABASE_URL": bouncer,
            "DB_TRANSACTION_POOLING": "true",
            "GATE_REDIS_URL": self.gate.url,
            "GATE_WAITAOF_REPLICAS": "1",
            "REDIS_URL": f"{broker}/1",
            "CELERY_BROKER_URL": f"{broker}/0",
            "CACHE_URL": f"redis://127.0.0.1:{self.cache.port}/0",
            "ORDER_PIPELINE": "redis_async",
            "SILK_ENABLED": "false",
            "LOG_REQUESTS": "false",
            # JSON: the drill finds the active beat by its "Sending due task" lines, which the
            # plain format (make run's) leaves out as idle noise.
            "LOG_FORMAT": "json",
            "FLASHDEALS_ENV_FILE": "",  # the lab's stacks are defined here, not by a .env
            "LOG_LEVEL": "WARNING",
            "GUNICORN_LOGLEVEL": "warning",
            "TRUSTED_PROXIES": "127.0.0.1",
            # Every test shopper comes from 127.0.0.1, as a load generator does.
            "RATE_LIMIT_EXEMPT_ADDRESSES": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            **TIMINGS,
        }

    def _start_pgbouncer(self) -> None:
        parts = urlsplit(self.database_url)
        directory = self.workdir / "pgbouncer"
        directory.mkdir(parents=True, exist_ok=True)
        # A few dozen server connections for every gunicorn and Celery process's own.
        self.bouncer = PgBouncer(directory, upstream=(parts.hostname or "127.0.0.1",
                                 parts.port or 5432), user=parts.username or "postgres",
                                 pool_size=20).start()  # fmt: skip
        self.ports["pgbouncer"] = self.bouncer.port

    def _start_haproxy(self) -> None:
        self.ports["haproxy"], self.ports["stats"] = free_port(), free_port()
        env = {
            "FD_LISTEN": f"127.0.0.1:{self.ports['haproxy']}",
            "FD_STATS": f"127.0.0.1:{self.ports['stats']}",
            "FD_WEB1": f"127.0.0.1:{self.ports['web1']}",
            "FD_WEB2": f"127.0.0.1:{self.ports['web2']}",
        }
        command = [_tool("haproxy"), "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")]
        proc = self._spawn("haproxy", command, env, where=f"{self.base_url} (stats: "
                           f"http://127.0.0.1:{self.ports['stats']}/)")  # fmt: skip
        _wait_port(self.ports["haproxy"], "HAProxy", proc)

    def worker_start(self, n: int) -> Proc:
        command = [c if not c.startswith("worker@") else f"worker{n}@%h"
                   for c in devstack.procfile_command("worker")]  # fmt: skip
        command = ["warning" if c == "info" else c for c in command]
        return self._spawn(f"worker{n}", command, {})

    def beat_start(self, n: int) -> Proc:
        # At INFO: a beat logs every task it sends, which tells the active one from the standby.
        return self._spawn(f"beat{n}", devstack.procfile_command("beat"), {"LOG_LEVEL": "INFO"})

    def web_start(self, n: int) -> Proc:
        return self._spawn(f"web{n}", devstack.procfile_command("web"),
                           {"PORT": str(self.ports[f"web{n}"]), "GUNICORN_WORKERS": "2"},
                           where=f"127.0.0.1:{self.ports[f'web{n}']}")  # fmt: skip

    def wait_healthy(self, timeout: float = 90) -> None:
        """Both web nodes answer through HAProxy's checks, and the readiness endpoint (database
        through PgBouncer, the cluster's every primary, a worker's heartbeat) says ready."""
        deadline = time.monotonic() + timeout
        for name in ("web1", "web2"):
            while not devstack.healthy(f"http://127.0.0.1:{self.ports[name]}/health"):
                self._check_alive(name, deadline)
                time.sleep(0.2)
        while not devstack.healthy(f"{self.base_url}/health/ready"):
            self._check_alive("haproxy", deadline)
            time.sleep(0.5)

    def _check_alive(self, name: str, deadline: float) -> None:
        proc = self.procs[name]
        if not proc.running() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not come up; see {proc.log}")

    # --- what runs where ---------------------------------------------------------------------

    def table(self) -> str:
        assert self.gate and self.broker and self.cache
        rows = []
        for node in self.gate.nodes:
            info = node.client().info("replication") if node.alive() else {"role": "down"}
            role = {"master": "primary", "slave": f"replica of :{info.get('master_port')}"}
            rows.append(("gate", node.name, role.get(info["role"], info["role"])))
        rows += [
            ("broker", f"127.0.0.1:{self.broker.port}", "Celery broker db 0, REDIS_URL db 1"),
            ("cache", f"127.0.0.1:{self.cache.port}", "Django cache"),
            ("postgres", self.database_url.split("@", 1)[1], "the record"),
            ("pgbouncer", f"127.0.0.1:{self.ports['pgbouncer']}", "transaction pooling"),
        ]
        for name, proc in self.procs.items():
            pid = proc.popen.pid if proc.popen else "-"
            rows.append((name, proc.where or "-", f"pid {pid}, log {proc.log.name}"))
        width = max(len(r[1]) for r in rows)
        return "\n".join(f"  {n:<10} {w:<{width}}  {d}" for n, w, d in rows)

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    # --- faults ------------------------------------------------------------------------------

    def haproxy_state(self, server: str) -> str:
        """HAProxy's view of a web node: UP, DOWN, ... (its stats page as CSV)."""
        url = f"http://127.0.0.1:{self.ports['stats']}/;csv"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=2) as response:
            rows = list(csv.DictReader(response.read().decode().lstrip("# ").splitlines()))
        return next(row["status"] for row in rows if row["svname"] == server)

    def active_beat(self) -> str | None:
        """The beat that sent a task last (redbeat's lock holder: the other sends nothing),
        from their logs (beats log each task they send at INFO)."""
        last = {name: self._last_send(name) for name in ("beat1", "beat2")
                if self.procs[name].running()}  # fmt: skip
        sent = {name: at for name, at in last.items() if at is not None}
        return max(sent, key=sent.__getitem__) if sent else None

    def beat_sends(self, name: str) -> int:
        return self.procs[name].log.read_text().count("Sending due task")

    def _last_send(self, name: str) -> float | None:
        lines = [line for line in self.procs[name].log.read_text().splitlines()
                 if "Sending due task" in line]  # fmt: skip
        return len(lines) or None

    def web_kill(self, n: int) -> None:
        self.procs[f"web{n}"].kill()  # SIGKILL to gunicorn's master and its workers

    def worker_kill(self, n: int) -> None:
        self.procs[f"worker{n}"].kill()

    def consumers(self, name: str) -> set[str]:
        """The stream consumer names (gate.stream.consumer_name) of a process tree."""
        proc = self.procs[name]
        assert proc.popen is not None
        root = psutil.Process(proc.popen.pid)
        host = socket.gethostname()
        return {f"{host}-{p.pid}" for p in [root, *root.children(recursive=True)]}

    def beat_kill(self, name: str) -> None:
        self.procs[name].kill()

    def heal(self) -> None:
        """Whatever a fault took down comes back, as a supervisor would restart it: processes
        on their ports, a killed Valkey node on its data (it rejoins as a replica)."""
        assert self.gate
        for node in self.gate.nodes:
            if not node.alive():
                self.gate.restart(node)
        for n in (1, 2):
            if not self.procs[f"web{n}"].running():
                self.web_start(n)
            if not self.procs[f"worker{n}"].running():
                self.worker_start(n)
            if not self.procs[f"beat{n}"].running():
                self.beat_start(n)
        self.wait_healthy()

    def stop(self) -> None:
        for name in ("haproxy", "web1", "web2", "beat1", "beat2", "worker1", "worker2"):
            if name in self.procs:
                self.procs[name].signal(signal.SIGTERM)
        for proc in self.procs.values():
            proc.stop()
        for server in (self.broker, self.cache, self.bouncer):
            if server is not None:
                server.stop()
        if self.gate is not None:
            self.gate.stop()


def _wait_port(port: int, what: str, proc: Proc, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while devstack.port_is_free(port):
        if not proc.running() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start; see {proc.log}")
        time.sleep(0.1)
