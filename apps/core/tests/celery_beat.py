"""Real `celery beat` processes for tests, and a record of what they send.

No worker runs beside them: the tasks a beat sends stay in the test broker's queue, where
`SentTasks` reads them, so a test counts sends (not runs, which a worker could merge or lose).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil
import redis
from django.conf import settings

from apps.core.tests.celery_worker import ROOT, _die_with_parent
from scripts import devstack

# Where kombu's Redis transport keeps the default queue (a list, newest message first).
QUEUE = "celery"


class CeleryBeat:
    """The Procfile's `beat` command as a child process, under the test settings."""

    def __init__(self, *, extra_env: dict[str, str] | None = None) -> None:
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> "CeleryBeat":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashdeals.settings.test",
            "REDIS_URL": settings.REDIS_URL,
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", *devstack.procfile_command("beat")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connected(self) -> bool:
        """The scheduler is set up: redbeat opened its connection to the broker's server (it
        does so to store the schedule, right before it asks for the lock)."""
        assert self.process is not None
        port = urlsplit(settings.CELERY_BROKER_URL).port
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(self.process.pid).net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == port and conn.status == "ESTABLISHED":
                    return True
        return False

    def kill(self) -> None:
        """SIGKILL, like a lost machine: the lock stays until it expires."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class SentTasks:
    """Every task message that reaches the broker's queue, with the moment (time.monotonic())
    this process first saw it. Polls every 20 ms: a send is timed to within that."""

    def __init__(self, broker: redis.Redis) -> None:
        self.broker = broker
        self.seen = broker.llen(QUEUE)
        self.sends: list[tuple[float, str]] = []

    def poll(self) -> None:
        length = self.broker.llen(QUEUE)
        if length > self.seen:
            now = time.monotonic()
            newest_first = self.broker.lrange(QUEUE, 0, length - self.seen - 1)
            for raw in reversed(newest_first):
                self.sends.append((now, json.loads(raw)["headers"]["task"]))
            self.seen = length

    def watch(self, until: float) -> None:
        while time.monotonic() < until:
            self.poll()
            time.sleep(0.02)
        self.poll()

    def first(self, task: str, *, after: float, timeout: float) -> float:
        """When `task` was first sent at or after `after`; waits up to `timeout` for it."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for at, name in self.sends:
                if name == task and at >= after:
                    return at
            if time.monotonic() > deadline:
                raise AssertionError(f"{task} was not sent within {timeout} s")
            time.sleep(0.02)

    def count(self, task: str, *, since: float, until: float) -> int:
        return sum(1 for at, name in self.sends if name == task and since <= at < until)

    def closest_repeat(self, task: str) -> float | None:
        """The shortest time between two sends of `task` (None: sent at most once)."""
        times = [at for at, name in self.sends if name == task]
        return min((b - a for a, b in zip(times, times[1:], strict=False)), default=None)


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
