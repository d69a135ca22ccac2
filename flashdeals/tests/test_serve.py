"""The web process's launcher (`python -m flashdeals.serve`, the Procfile's `web` line): the exact
command line for each WEB_SERVER, the one-line refusal of an unknown one, and a real granian
serving the app."""

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.core.tests.gunicorn_server import Gunicorn
from flashdeals import serve
from scripts import devstack

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("WEB_SERVER", "HOST", "PORT", "GUNICORN_WORKERS", "GUNICORN_LOGLEVEL")


@pytest.fixture
def clean_env(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_procfile_web_line_is_the_launcher():
    assert devstack.procfile_command("web") == ["python", "-m", "flashdeals.serve"]


@pytest.mark.parametrize("value", [None, "gunicorn"])
def test_gunicorn_is_the_default_and_runs_with_the_shipped_config(clean_env, value):
    if value:
        clean_env.setenv("WEB_SERVER", value)

    assert serve.command() == [
        sys.executable, "-m", "gunicorn", "flashdeals.wsgi:application",
        "-c", "deploy/gunicorn.conf.py",
    ]  # fmt: skip


def test_granian_gets_gunicorn_conf_meaning_option_by_option(clean_env):
    clean_env.setenv("WEB_SERVER", "granian")
    clean_env.setenv("HOST", "0.0.0.0")
    clean_env.setenv("PORT", "8123")
    clean_env.setenv("GUNICORN_WORKERS", "5")
    clean_env.setenv("GUNICORN_LOGLEVEL", "warning")

    assert serve.command() == [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", "0.0.0.0", "--port", "8123",
        "--workers", "5",
        "--blocking-threads", "1",
        "--runtime-threads", "1",
        "--backlog", "2048",
        "--http", "1",
        "--no-ws",
        "--http1-keep-alive",
        "--http1-header-read-timeout", "30000",
        "--http1-buffer-size", "32768",
        "--workers-kill-timeout", "10",
        "--respawn-failed-workers",
        "--log-level", "warning",
        "--no-access-log",
        "flashdeals.wsgi:application",
    ]  # fmt: skip


def test_granian_defaults_to_cores_plus_one_workers_on_localhost_8000(clean_env):
    clean_env.setenv("WEB_SERVER", "granian")

    argv = serve.command()

    assert argv[argv.index("--host") + 1 : argv.index("--host") + 6] == [
        "127.0.0.1", "--port", "8000", "--workers", str(multiprocessing.cpu_count() + 1),
    ]  # fmt: skip
    assert argv[argv.index("--log-level") + 1] == "info"


def _launch(env_file: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    base |= {"FLASHDEALS_ENV_FILE": str(env_file) if env_file else "", **env}
    return subprocess.run(
        [sys.executable, "-m", "flashdeals.serve"], env=base, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def test_an_unknown_web_server_stops_the_launch_with_one_line_naming_it():
    result = _launch(None, WEB_SERVER="uvicorn")

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "configuration error: WEB_SERVER='uvicorn': expected one of gunicorn, granian\n",
    )


def test_an_unknown_web_server_in_dot_env_is_named_with_its_file(tmp_path):
    dot_env = tmp_path / ".env"
    dot_env.write_text("WEB_SERVER=Granian\n")

    result = _launch(dot_env)

    assert (result.returncode, result.stderr) == (
        1,
        f"configuration error: WEB_SERVER='Granian' (from {dot_env}): expected one of "
        "gunicorn, granian\n",
    )


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.django_db
def test_a_real_granian_serves_the_app_its_health_and_json_404():
    # given: the Procfile's web command with WEB_SERVER=granian, on a free port
    web = Gunicorn(workers=1, server="granian").start()
    try:
        # when / then: /health answers, an unknown path is the app's JSON 404
        status, body = _get(web.port, "/health")
        assert (status, json.loads(body)) == (200, {"status": "healthy", "service": "gateway"})
        status, body = _get(web.port, "/no/such/path")
        assert (status, json.loads(body)) == (
            404,
            {"error": "NOT_FOUND", "message": "No such path.", "details": None},
        )
        # the request head limit: 20 KB of header passes (nginx lets up to 4 x 6 KB through),
        # 64 KB is refused by granian itself before the app (hyper checks the 32 KiB buffer
        # limit after each read, so the refusal starts between 45 and 50 KB)
        assert _get(web.port, "/health", {"X-Pad": "a" * 20_000})[0] == 200
        assert _get(web.port, "/health", {"X-Pad": "a" * 64_000})[0] == 431
        # and it is granian answering, not a gunicorn
        assert (
            b"granian"
            in subprocess.run(
                ["ps", "-o", "args=", "-p", str(web.process.pid)], capture_output=True
            ).stdout
        )
    finally:
        web.stop()
