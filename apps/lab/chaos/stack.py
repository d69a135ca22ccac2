"""The processes one chaos run drives and breaks: the gate's server, the Celery broker (a server
of its own, so an outage of one is not an outage of the other), gunicorn and a Celery worker.

PostgreSQL is not here: the caller gives its URL (embedded, see __main__). Every process is a
child of the main thread (PR_SET_PDEATHSIG follows the thread that forked it), so faults are
injected from the main thread only.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from apps.core.tests.celery_worker import _die_with_parent
from apps.core.tests.redis_server import RedisServer, free_port
from scripts import devstack

ROOT = Path(__file__).resolve().parents[3]


class ChaosStack:
    """Servers and processes of one run, reused across seeds; the gate is fresh per seed."""

    def __init__(
        self, workdir: Path, *, gate: RedisServer, broker: RedisServer, web_workers: int = 3
    ) -> None:
        self.workdir = workdir
        self.gate, self.broker = gate, broker
        self.web_port = free_port()
        self.web_workers = web_workers
        self.env: dict[str, str] = {}
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.logs = workdir / "logs"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- servers ---------------------------------------------------------------------------

    def start_servers(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.gate.start()
        self.broker.start()

    def gate_running(self) -> bool:
        return self.gate.process is not None and self.gate.process.poll() is None

    def gate_kill(self) -> None:
        self.gate.stop(kill=True)

    def gate_start(self) -> None:
        """Restarts the gate on its data dir (and port): AOF replay, the shipped settings."""
        if not self.gate_running():
            self.gate.start()

    def gate_fresh(self) -> None:
        """An empty gate for a new seed, on the same port (the web tier keeps its URL)."""
        self.gate.stop(kill=True)
        shutil.rmtree(self.gate.workdir, ignore_errors=True)
        self.gate.start()

    def gate_snapshot(self, name: str) -> Path:
        """Copies the gate's data dir as it is now (a backup taken while it runs)."""
        copy = self.workdir / "snapshots" / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.gate.workdir, copy)
        return copy

    def gate_restore(self, copy: Path) -> None:
        """Kills the gate and brings it back from an earlier copy of its data."""
        self.gate.stop(kill=True)
        shutil.rmtree(self.gate.workdir, ignore_errors=True)
        shutil.copytree(copy, self.gate.workdir)
        self.gate.start()

    def broker_running(self) -> bool:
        return self.broker.process is not None and self.broker.process.poll() is None

    def broker_down(self) -> None:
        self.broker.stop(kill=True)

    def broker_up(self) -> None:
        if not self.broker_running():
            self.broker.start()

    # --- web and worker ----------------------------------------------------------------------

    def _spawn(self, cmd: list[str], log_name: str) -> subprocess.Popen:
        with open(self.logs / log_name, "a") as log:
            return subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )  # fmt: skip

    def start_web(self, timeout: float = 60) -> None:
        self.web = self._spawn(devstack.procfile_command("web"), "web.log")
        deadline = time.monotonic() + timeout
        while not devstack.healthy(f"{self.base_url}/health"):
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up; see {self.logs / 'web.log'}")
            time.sleep(0.2)

    def web_worker_pids(self) -> list[int]:
        if self.web is None:
            return []
        with contextlib.suppress(psutil.Error):
            return sorted(p.pid for p in psutil.Process(self.web.pid).children())
        return []

    def web_worker_kill(self, pick: int) -> int | None:
        """SIGKILLs one gunicorn worker (the `pick`-th, modulo); the master respawns it."""
        pids = self.web_worker_pids()
        if not pids:
            return None
        pid = pids[pick % len(pids)]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def worker_running(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def worker_start(self) -> None:
        if self.worker_running():
            return
        cmd = devstack.procfile_command("worker")
        cmd = ["warning" if c == "info" else c for c in cmd]
        cmd = ["chaos@%h" if c.startswith("worker@") else c for c in cmd]
        self.worker = self._spawn([*cmd, "--without-gossip", "--without-mingle"], "worker.log")

    def worker_kill(self) -> None:
        """SIGKILLs the worker's whole process group (main process and pool), like a crash."""
        if self.worker_running():
            assert self.worker is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(10)

    # --- all ---------------------------------------------------------------------------------

    def start(self, env: dict[str, str]) -> None:
        self.env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.web_port),
            "GUNICORN_WORKERS": str(self.web_workers),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
        self.start_web()
        self.worker_start()

    def heal(self) -> None:
        """Whatever a fault left down comes back up."""
        self.gate_start()
        self.broker_up()
        self.worker_start()

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.web, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.gate.stop()
        self.broker.stop()
