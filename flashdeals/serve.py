"""The web process: `python -m flashdeals.serve` (the Procfile's `web` line, so `make run`, the
load-test lab and the test suite's real web nodes; the Docker image's CMD and compose's `web`)
starts the WSGI server WEB_SERVER names.

- `gunicorn` (the default): `deploy/gunicorn.conf.py`, sync workers, cores + 1.
- `granian`: granian's WSGI server with the same meaning as that file, option by option (below),
  one Python thread per worker and HTTP/1.1 keep-alive. Measured against gunicorn in
  docs/scenarios/web-server.md. What granian has no counterpart for: gunicorn's `timeout` (a
  worker silent for 30 s is killed), GUNICORN_MAX_REQUESTS, and the worker class and threads
  (GUNICORN_WORKER_CLASS, GUNICORN_THREADS), which it ignores.

The launcher reads `.env` like the settings do (flashdeals/envfile.py), refuses a WEB_SERVER it
doesn't know with the one-line configuration error, and replaces itself with the server (exec),
so the server is the process that `make run`, Docker or the lab signal.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from flashdeals import envfile
from flashdeals.settings.variables import StrictEnv

SERVERS = ("gunicorn", "granian")
APP = "flashdeals.wsgi:application"
# deploy/gunicorn.conf.py's values that granian takes as options of its own.
BACKLOG = 2048
GRACEFUL_TIMEOUT_S = 10
HEADER_READ_TIMEOUT_MS = 30_000
# granian (hyper) bounds the whole request head, not each line as gunicorn does (8190 per line):
# 32 KiB is above deploy/nginx-server.conf's `large_client_header_buffers 4 6k` (24 KiB at most),
# so nginx, whose errors are JSON, refuses an oversized head before granian's empty 431 would.
# (hyper checks the limit after each read: a head is refused from about 48 KiB, measured in
# flashdeals/tests/test_serve.py.)
HEAD_BUFFER_BYTES = 32_768


def command() -> list[str]:
    """The server's argv for the environment (`.env` already loaded)."""
    env = StrictEnv()
    server = env.choice("WEB_SERVER", SERVERS, default="gunicorn")
    python = sys.executable
    if server == "gunicorn":
        return [python, "-m", "gunicorn", APP, "-c", "deploy/gunicorn.conf.py"]
    host = os.environ.get("HOST", "127.0.0.1")
    port = env.int("PORT", default=8000, minimum=1)
    # The same knobs as gunicorn.conf.py: GUNICORN_WORKERS (cores + 1) and GUNICORN_LOGLEVEL mean
    # the web server's, whichever it is.
    workers = env.int("GUNICORN_WORKERS", default=multiprocessing.cpu_count() + 1, minimum=1)
    loglevel = env.choice(
        "GUNICORN_LOGLEVEL", ("debug", "info", "warning", "error", "critical"), default="info"
    )
    return [
        python, "-m", "granian", "--interface", "wsgi",
        "--host", host, "--port", str(port),
        "--workers", str(workers),
        # One thread runs the app per worker (a sync gunicorn worker's one request at a time);
        # granian's Rust side holds the idle keep-alive connections meanwhile.
        "--blocking-threads", "1",
        "--runtime-threads", "1",
        "--backlog", str(BACKLOG),
        "--http", "1",
        "--no-ws",
        "--http1-keep-alive",
        "--http1-header-read-timeout", str(HEADER_READ_TIMEOUT_MS),
        "--http1-buffer-size", str(HEAD_BUFFER_BYTES),
        # graceful_timeout: a stopping worker gets this long to finish its requests.
        "--workers-kill-timeout", str(GRACEFUL_TIMEOUT_S),
        # gunicorn's arbiter replaces a worker that died; granian only when told to.
        "--respawn-failed-workers",
        "--log-level", loglevel,
        "--no-access-log",
        # No forwarded-header handling in granian (its proxy wrapper is not applied): like
        # gunicorn with TRUSTED_PROXIES unset, X-Forwarded-* never changes the WSGI environ;
        # Django itself trusts X-Forwarded-Proto from TRUSTED_PROXIES only
        # (TrustedProxyMiddleware + SECURE_PROXY_SSL_HEADER, flashdeals/settings/production.py).
        APP,
    ]  # fmt: skip


def main() -> None:
    try:
        envfile.load()
        argv = command()
    except envfile.ConfigError as error:
        sys.exit(f"configuration error: {error}")
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
