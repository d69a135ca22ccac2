"""Configuration means what it says: one precedence rule (the environment over `.env` over the
defaults) for the settings and for `make run`'s launcher, every variable `.env.example` documents
is read somewhere, and a malformed or unknown one stops the start with a message naming it."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flashdeals import envfile

ROOT = Path(__file__).resolve().parents[3]
# The variables these tests set, so a developer's environment can't decide their outcome.
OURS = ("SILK_ENABLED", "LOG_FORMAT", "ORDER_PIPELINE", "PORT", "DATABASE_URL", "REDIS_URL")


def _env(env_file: Path | None, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in OURS}
    base["FLASHDEALS_ENV_FILE"] = str(env_file) if env_file else ""
    return {**base, **env}


def _local_settings(env_file: Path | None, *names: str, **env: str) -> list[str]:
    """`names` from flashdeals.settings.local, imported in a fresh interpreter."""
    code = "import flashdeals.settings.local as s; " + "; ".join(f"print(s.{n})" for n in names)
    env = _env(env_file, DJANGO_SETTINGS_MODULE="flashdeals.settings.local", **env)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_the_environment_wins_over_dot_env_which_wins_over_the_defaults(tmp_path):
    """Before: `.env` lost to `make run`'s own defaults (its SILK_ENABLED=false left Silk on)."""
    dot_env = _write(tmp_path, "SILK_ENABLED=false\nORDER_PIPELINE=db_lock\nLOG_FORMAT=json\n")
    names = ("SILK_ENABLED", "ORDER_PIPELINE", "LOG_FORMAT")

    assert _local_settings(None, *names) == ["True", "redis_async", "plain"]  # local defaults
    assert _local_settings(dot_env, *names) == ["False", "db_lock", "json"]
    assert _local_settings(dot_env, *names, SILK_ENABLED="true", ORDER_PIPELINE="redis") == [
        "True",
        "redis",
        "json",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("SILK_ENABLED=ture", "SILK_ENABLED='ture' (from {file}): expected true or false"),
        (
            "ORDER_PIPELINE=redis-async",
            "ORDER_PIPELINE='redis-async' (from {file}): expected one of db_lock, db_update, "
            "redis, redis_async",
        ),
        ("CATALOG_CACHE_TTL=5m", "CATALOG_CACHE_TTL='5m' (from {file}): expected a whole number"),
        ("SOLD_OUT_MEMORY_SECONDS=-1", "SOLD_OUT_MEMORY_SECONDS='-1' (from {file}): expected a"),
        ("TIME_ZONE=Asia/Sejong", "TIME_ZONE='Asia/Sejong' (from {file}): expected an IANA"),
        ("REDIS_URL=localhost:6379", "REDIS_URL='localhost:6379' (from {file}): expected a URL"),
        ("DATABASE_URL=mysql://x@h/db", "DATABASE_URL='mysql://x@h/db' (from {file}): expected"),
        ("TRUSTED_PROXIES=10.0.0.300", "TRUSTED_PROXIES='10.0.0.300' (from {file}): expected IP"),
        ("RATE_LIMIT_LOGIN_ACCOUNT=5 a minute", "RATE_LIMIT_LOGIN_ACCOUNT='5 a minute' (from"),
        ("ORDER_PIPELNE=redis", "{file}:1: unknown variable ORDER_PIPELNE (did you mean ORDER_PI"),
        ("SILK_ENABLED", "{file}:1: expected NAME=value, got 'SILK_ENABLED'"),
        # secrets are never printed: a URL's password masked, a bad line's value left out
        ("DATABASE_URL=mysql://app:S3cret@db/x", "DATABASE_URL='mysql://app:***@db/x' (from"),
        ("SECRET-KEY=S3cret", "{file}:1: expected NAME=value, got 'SECRET-KEY'\n"),
    ],
)
def test_a_bad_value_stops_manage_py_with_one_line_naming_it(tmp_path, line, message):
    dot_env = _write(tmp_path, line + "\n")
    env = _env(dot_env, DJANGO_SETTINGS_MODULE="flashdeals.settings.local")

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, cwd=ROOT, capture_output=True, text=True
    )

    assert result.returncode == 1
    assert result.stderr.startswith("configuration error: " + message.format(file=dot_env))
    assert "Traceback" not in result.stderr
    assert "S3cret" not in result.stderr


def test_the_environment_is_named_as_the_source_of_a_bad_value():
    env = _env(None, DJANGO_SETTINGS_MODULE="flashdeals.settings.local", SILK_ENABLED="maybe")

    result = subprocess.run(
        [sys.executable, "-m", "flashdeals.envfile", "flashdeals.settings.local"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip

    assert (result.returncode, result.stderr) == (
        2,
        "configuration error: SILK_ENABLED='maybe': expected true or false\n",
    )


def test_dot_env_values_may_be_quoted_exported_and_commented(tmp_path, monkeypatch):
    dot_env = _write(
        tmp_path,
        "# a comment\n\nexport LOG_LEVEL=WARNING\nTIME_ZONE='UTC'\n"
        'ALLOWED_HOSTS="a.example,b.example"\nMETRICS_TOKEN=abc #the token\nCACHE_URL=\n',
    )
    monkeypatch.setenv("FLASHDEALS_ENV_FILE", str(dot_env))
    for name in ("LOG_LEVEL", "TIME_ZONE", "ALLOWED_HOSTS", "METRICS_TOKEN", "CACHE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIME_ZONE", "Europe/Berlin")  # the environment wins

    loaded = envfile.load()

    assert loaded == {
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "a.example,b.example",
        "METRICS_TOKEN": "abc",
        "CACHE_URL": "",
    }
    assert os.environ["TIME_ZONE"] == "Europe/Berlin"


def test_every_documented_variable_is_read_somewhere():
    """A variable in .env.example that no code reads would be a setting that does nothing."""
    sources = [
        *ROOT.glob("flashdeals/**/*.py"),
        *ROOT.glob("apps/**/*.py"),
        *ROOT.glob("scripts/*.py"),
        ROOT / "deploy/gunicorn.conf.py",
    ]
    code = "\n".join(p.read_text() for p in sources if "/tests/" not in str(p))
    documented = envfile.documented_variables()

    by_libraries = {"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}  # the OpenTelemetry SDK's
    unread = sorted(n for n in documented - by_libraries if not re.search(rf"[\"']{n}[\"']", code))

    assert len(documented) > 60
    assert unread == []


def _devstack(dot_env: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.devstack", *args],
        env=_env(dot_env), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_make_run_takes_its_servers_from_dot_env(tmp_path):
    """Before: DATABASE_URL in .env was ignored and the embedded PostgreSQL started anyway.
    `devstack env` prints only the URLs of embedded servers it had to start: none here."""
    dot_env = _write(
        tmp_path, "DATABASE_URL=postgres://u@db.invalid/x\nREDIS_URL=redis://cache.invalid:1/0\n"
    )

    result = _devstack(dot_env, "env")

    assert (result.returncode, result.stdout) == (0, "")
    assert "starting embedded" not in result.stderr


def test_make_run_takes_its_port_from_dot_env(tmp_path):
    """Before: PORT in .env was ignored and `make run` served on :8000. The port named here is
    held by this test, so the launcher stops at its port check, before starting anything."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        dot_env = _write(tmp_path, f"PORT={port}\n")

        result = _devstack(dot_env, "run")

    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "starting embedded" not in result.stderr


def test_make_run_refuses_a_malformed_port_before_starting_anything(tmp_path):
    dot_env = _write(tmp_path, "PORT=80OO\n")

    result = _devstack(dot_env, "run")

    assert result.returncode == 1
    assert f"configuration error: PORT='80OO' (from {dot_env}): expected a port number" in (
        result.stderr
    )
    assert "starting embedded" not in result.stderr


def test_the_readme_shows_the_banner_make_run_prints(monkeypatch):
    from scripts.devstack import banner  # (imports the launcher's modules; this test only)

    for name in ("SILK_ENABLED", "DEMO_ADMIN_EMAIL", "DEMO_ADMIN_PASSWORD", "DEMO_SHOPPER_EMAIL",
                 "DEMO_SHOPPER_PASSWORD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)

    printed = banner("http://127.0.0.1:8000")

    assert printed.startswith("flashdeals is running at http://127.0.0.1:8000\n")
    assert f"```\n{printed}\n```" in (ROOT / "README.md").read_text()
