"""A real Celery worker process for tests, wired to the test database and test Redis."""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from flashdeals.celery import app

ROOT = Path(__file__).resolve().parents[3]
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test run is killed, the worker goes with it instead
    of lingering and answering the next run's pings."""
    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryWorker:
    """Starts `celery worker` as a child process; `kill()` SIGKILLs it like a crashed host."""

    def __init__(self, *, name: str = "test", concurrency: int = 1, extra_env=None) -> None:
        self.name = name
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> "CeleryWorker":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashdeals.settings.test",
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "GATE_REDIS_URL": settings.GATE_REDIS_URL,
            "ORDER_PIPELINE": settings.ORDER_PIPELINE,
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "flashdeals",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                str(self.concurrency),
                "--pool",
                "prefork",
                "-n",
                f"{self.name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                "celery",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}")
            if self.answers_ping():
                return
        raise TimeoutError("celery worker did not answer a ping in time")

    def answers_ping(self) -> bool:
        """The worker consumes: a warm shutdown stops its consumer (and so its answers to
        pings) first, then waits for the tasks it is running."""
        destination = [f"{self.name}-{os.getpid()}@{socket.gethostname()}"]
        with app.connection_for_write() as conn:  # closed after use: nothing left polling
            return bool(app.control.ping(destination, timeout=0.5, connection=conn))

    def shut_down_warm(self) -> None:
        """SIGTERM to the main process alone: a warm shutdown (no new task; the running ones
        finish). Sent to the whole group it would kill the pool's children at once (they keep
        SIGTERM's default action), which is what stop() does."""
        os.kill(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole worker process group (main process and pool children)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
