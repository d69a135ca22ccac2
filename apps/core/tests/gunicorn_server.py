"""A real web node for tests: the Procfile's `web` command (`python -m flashdeals.serve`: gunicorn
with deploy/gunicorn.conf.py, or granian with `server="granian"`) on a free port, wired to the test
database and the test Redis."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
from django.conf import settings

from apps.core.tests.celery_worker import ROOT, _die_with_parent, worker_database_url
from apps.core.tests.redis_server import free_port
from scripts import devstack


class Gunicorn:
    def __init__(
        self, *, workers: int = 2, server: str = "gunicorn", extra_env: dict[str, str] | None = None
    ) -> None:
        self.workers = workers
        self.server = server
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Gunicorn":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashdeals.settings.test",
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "ORDER_PIPELINE": settings.ORDER_PIPELINE,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "GUNICORN_WORKERS": str(self.workers),
            "GUNICORN_LOGLEVEL": "warning",
            "WEB_SERVER": self.server,
            **self.extra_env,
        }
        command = devstack.procfile_command("web")
        assert command[:2] == ["python", "-m"]
        self.process = subprocess.Popen(
            [sys.executable, *command[1:]], cwd=ROOT, env=env, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while not devstack.healthy(f"{self.base_url}/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.server} did not come up (exit {self.process.returncode})"
                )
            time.sleep(0.2)
        return self

    def master_listens(self) -> bool:
        """The master still has its listening socket (it closes it first thing on SIGTERM)."""
        assert self.process is not None
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(self.process.pid).net_connections(kind="tcp"):
                if conn.status == "LISTEN" and conn.laddr.port == self.port:
                    return True
        return False

    def terminate(self) -> None:
        """SIGTERM to the master alone, as `docker stop`, Kubernetes and systemd's main-PID
        signal do: a graceful shutdown."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
