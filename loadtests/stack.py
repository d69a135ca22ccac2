"""The processes a load test drives: embedded PostgreSQL/Redis, gunicorn, Celery, k6.

The lab uses scripts.devstack's own functions to start the embedded servers, pointed at a data
directory of its own (.devdata/loadtest/), so a million-product catalog and tens of thousands of
load-test users never land in the `make run` database, and a `make test` or `make stop` running
meanwhile can't stop the servers under a measurement. DATABASE_URL / REDIS_URL are ignored unless
LOADTEST_USE_ENV_SERVERS=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from scripts import devstack

ROOT = Path(__file__).resolve().parent.parent
LOADTESTS = ROOT / "loadtests"
RESULTS = LOADTESTS / "results"
LAB_DATA = devstack.DATA / "loadtest"
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def log(msg: str) -> None:
    print(f"[loadtest] {msg}", file=sys.stderr, flush=True)


@dataclass
class Servers:
    env: dict[str, str]
    started: list[str] = field(default_factory=list)
    own: bool = True  # False with LOADTEST_USE_ENV_SERVERS=1: their CPU is not ours to read

    @property
    def postgres_pid(self) -> int | None:
        if not self.own:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((devstack.PG_DATA / "postmaster.pid").read_text().splitlines()[0])
        return None

    @property
    def redis_pid(self) -> int | None:
        proc = devstack.redis_process() if self.own else None
        return proc.pid if proc else None

    def stop(self) -> None:
        if self.started:
            devstack.stop_servers(self.started)


def start_servers() -> Servers:
    external = os.environ.get("LOADTEST_USE_ENV_SERVERS") == "1"
    if not external:
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
    devstack.use_data_dir(LAB_DATA)
    LAB_DATA.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    env = devstack.ensure_servers(started)
    if external:
        env.update({k: os.environ[k] for k in ("DATABASE_URL", "REDIS_URL") if k in os.environ})
    servers = Servers(env=env, started=started, own=not external)
    log(f"servers: {env} (started now: {started or 'none'})")
    return servers


def base_env(servers: Servers) -> dict[str, str]:
    """Settings every process of the lab shares; variants add their switches on top."""
    env = dict(os.environ)
    env.update(servers.env)
    env.update(
        DJANGO_SETTINGS_MODULE="flashdeals.settings.local",  # what `make run` serves
        SILK_ENABLED="false",  # Silk records every request: never in a load test
        LOG_REQUESTS="false",
        # A measurement is defined by its scenario's variants, not by a developer's .env.
        FLASHDEALS_ENV_FILE="",
        # k6 drives every shopper from this machine: no rate limit for local clients (the
        # documented exemption, docs/security.md "Rate limits"); a scenario about limits sets it
        RATE_LIMIT_EXEMPT_ADDRESSES="127.0.0.0/8,::1",
        LOG_LEVEL="WARNING",
        GUNICORN_LOGLEVEL="warning",
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, check: bool = True, root: Path = ROOT) -> str:
    """Runs manage.py with `env` (of the checkout at `root`); returns stdout (JSON for
    loadtest_prepare)."""
    proc = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True
    )
    if check and proc.returncode:
        raise RuntimeError(f"manage.py {shlex.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def prepare(env: dict[str, str], *args: str, root: Path = ROOT) -> dict:
    out = manage(env, "loadtest_prepare", *args, root=root).strip().splitlines()
    return json.loads(out[-1]) if out else {}


def checkout(revision: str) -> Path:
    """The project's files as of `revision`, extracted once (git archive) into the lab's data
    directory. A stack run from it serves that revision's code on today's servers, data and
    virtual environment, so a before that is an older commit is measured in the same run as the
    after (e.g. the purchase path before and after it was cut to the floor)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dest = LAB_DATA / "revisions" / sha[:12]
    if not (dest / "manage.py").exists():
        log(f"extracting revision {revision} ({sha[:12]}) into {dest}")
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True)
        partial.rename(dest)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """One variant's web tier (gunicorn on its own port) and, if needed, a Celery worker.
    `serve=False` starts the worker alone (the drain benchmark: nothing is bought over HTTP)."""

    name: str
    env: dict[str, str]
    worker: bool = False
    serve: bool = True
    root: Path = ROOT  # the checkout it runs: this one, or an older revision's (checkout())
    port: int = 0
    web: subprocess.Popen | None = None
    celery: subprocess.Popen | None = None
    logs: list = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> None:
        self.port = free_port()
        self.env = {**self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        if self.root != ROOT:  # its own packages first, whatever the tools put on sys.path
            self.env["PYTHONPATH"] = str(self.root)
        log_dir.mkdir(parents=True, exist_ok=True)
        if self.serve:
            web_log = open(log_dir / f"{self.name}-web.log", "w")  # noqa: SIM115 - see stop()
            self.logs.append(web_log)
            self.web = subprocess.Popen(
                devstack.procfile_command("web", self.root), cwd=self.root, env=self.env,
                stdout=web_log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        if self.worker:
            cmd = self.worker_command()
            worker_log = open(log_dir / f"{self.name}-worker.log", "w")  # noqa: SIM115
            self.logs.append(worker_log)
            self.celery = subprocess.Popen(
                cmd, cwd=self.root, env=self.env, stdout=worker_log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def worker_command(self) -> list[str]:
        """The Procfile's worker, named after the stack, logging warnings only."""
        cmd = devstack.procfile_command("worker", self.root)
        cmd = [c if not c.startswith("worker@") else f"lt-{self.name}@%h" for c in cmd]
        return [c if c != "info" else "warning" for c in cmd]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.serve and not devstack.healthy(f"{self.base_url}/health"):
            if self.web and self.web.poll() is not None:
                raise RuntimeError(f"gunicorn of {self.name} exited; see its log in results/")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: /health did not answer within {timeout}s")
            time.sleep(0.2)
        if self.celery:
            time.sleep(2)  # the worker connects to the broker; its first task must not wait

    def stop(self) -> None:
        for proc in (self.web, self.celery):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.web, self.celery):
            if proc is None:
                continue
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for fh in self.logs:
            fh.close()


# --- CPU accounting ------------------------------------------------------------------------------


def tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process tree: every live process's own time plus the time of children it
    has reaped (so a PostgreSQL backend that exited, e.g. with DB_CONN_MAX_AGE=0, still counts
    through the postmaster)."""
    if not pid:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def cpu_snapshot(stack: Stack, servers: Servers) -> dict[str, float]:
    return {
        "web": tree_cpu(stack.web.pid if stack.web else None),
        "worker": tree_cpu(stack.celery.pid if stack.celery else None),
        "postgres": tree_cpu(servers.postgres_pid),
        "redis": tree_cpu(servers.redis_pid),
    }


def run_k6(script: str, env: dict[str, str], log_file: Path) -> tuple[int, float]:
    """Runs k6 to completion; returns (exit code, CPU seconds k6 used, from wait4's rusage)."""
    k6 = BIN / "k6"
    cmd = [str(k6), "run", "--quiet", str(LOADTESTS / script)]
    full_env = {**os.environ, "K6_NO_USAGE_REPORT": "true", **env}
    with open(log_file, "a") as fh:
        proc = subprocess.Popen(cmd, cwd=LOADTESTS, env=full_env, stdout=fh, stderr=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime
