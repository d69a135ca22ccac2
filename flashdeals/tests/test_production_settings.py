"""Production settings refuse published and weak secrets, pass `check --deploy`, and no server
entry point falls back to the local settings (docs/security.md, "Secrets that were never
published" and "Hardened production settings").

Settings are read once per process, so each case runs in a fresh interpreter with its own env.
"""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from flashdeals.settings.secret_checks import (
    PUBLISHED_SECRETS,
    check_signing_keys,
    secret_problem,
)

ROOT = Path(__file__).resolve().parent.parent.parent
HINT = 'python -c "import secrets; print(secrets.token_urlsafe(64))"'


def _key() -> str:
    return secrets.token_urlsafe(64)


def _production_env(**overrides: str) -> dict[str, str]:
    """A clean environment (nothing inherited from the test run) for production settings."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "flashdeals.settings.production",
        "SECRET_KEY": _key(),
        "JWT_SECRET": _key(),
        "DATABASE_URL": "postgres://app@db.internal:5432/flashdeals",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "ALLOWED_HOSTS": "shop.example.com",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def _dotenv_example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    return dict(pairs)


# --- the rule itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("dev-only-insecure-secret-key-change-me-0123456789", "is a published example value"),
        ("compose-dev-secret-change-me-0123456789abcdef", "is a published example value"),
        ("django-insecure-" + "x" * 60, "is a published example value"),
        ("please-change-me-" + secrets.token_urlsafe(40), "looks like a placeholder"),
        ("a" * 20 + "bcdefgh", "is 27 characters long; it needs at least 50"),
        ("ab" * 40, "has fewer than 5 different characters"),
    ],
)
def test_weak_or_published_keys_are_refused(value, problem):
    assert secret_problem(value) == problem


def test_a_generated_key_is_accepted():
    assert secret_problem(_key()) is None
    check_signing_keys(secret_key=_key(), jwt_secret=_key())  # no exception


def test_jwt_secret_equal_to_secret_key_is_refused():
    key = _key()
    with pytest.raises(ImproperlyConfigured, match="JWT_SECRET equals SECRET_KEY") as info:
        check_signing_keys(secret_key=key, jwt_secret=key)
    assert HINT in str(info.value)


def test_every_example_value_in_the_repository_is_refused():
    # .env.example's placeholders and base.py's dev default (what local settings sign with).
    example = _dotenv_example()
    from flashdeals.settings import base

    for value in (example["SECRET_KEY"], example["JWT_SECRET"], base.SECRET_KEY):
        assert value in PUBLISHED_SECRETS
        assert secret_problem(value) is not None


def test_compose_requires_the_keys_instead_of_defaulting_them():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-app"]["environment"]
    for name in ("SECRET_KEY", "JWT_SECRET"):
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), env[name]
    migrate = " ".join(compose["services"]["migrate"]["command"])
    assert "--operator" not in migrate and "createsuperuser" not in migrate


# --- production settings in a real process ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"JWT_SECRET": None}, "JWT_SECRET is not set"),
        ({"SECRET_KEY": "change-me-to-a-long-random-string"}, "SECRET_KEY is a published"),
        (
            {"JWT_SECRET": "compose-dev-jwt-secret-change-me-0123456789"},
            "JWT_SECRET is a published",
        ),
        ({"JWT_SECRET": "short-but-random-Zx81"}, "JWT_SECRET is 21 characters long"),
        ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY has fewer than 5"),
        ({"DATABASE_URL": None}, "need these environment variables: DATABASE_URL"),
        ({"ALLOWED_HOSTS": "shop.example.com,testserver"}, "must not contain"),
    ],
)
def test_production_settings_refuse_to_start(overrides, message):
    result = _run(["manage.py", "check"], _production_env(**overrides))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_same_key_twice_is_refused_in_a_real_process():
    key = _key()
    result = _run(["manage.py", "check"], _production_env(SECRET_KEY=key, JWT_SECRET=key))
    assert result.returncode != 0
    assert "JWT_SECRET equals SECRET_KEY" in result.stderr
    assert HINT in result.stderr


def test_check_deploy_reports_nothing_with_real_looking_secrets():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], _production_env())

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_values_read_back():
    probe = (
        "from django.conf import settings as s; import json; print(json.dumps(["
        "s.DEBUG, s.SILK_ENABLED, 'silk' in s.INSTALLED_APPS, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, "
        "s.ALLOWED_HOSTS, s.SIMPLE_JWT['SIGNING_KEY'] == s.SECRET_KEY]))"
    )
    plain = _run(["-c", f"import django; django.setup(); {probe}"], _production_env())
    behind = _run(
        ["-c", f"import django; django.setup(); {probe}"],
        _production_env(TRUSTED_PROXIES="127.0.0.1", SILK_ENABLED="true"),
    )

    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == (
        '[false, false, false, 31536000, true, true, null, ["shop.example.com"], false]'
    )
    assert behind.returncode == 0, behind.stderr
    assert '["HTTP_X_FORWARDED_PROTO", "https"]' in behind.stdout  # only with a trusted proxy
    assert behind.stdout.startswith("[false, false, false")  # SILK_ENABLED=true is ignored


@pytest.mark.parametrize("module", ["flashdeals.wsgi", "flashdeals.asgi", "flashdeals.celery"])
def test_servers_do_not_fall_back_to_local_settings(module):
    env = _production_env(DJANGO_SETTINGS_MODULE=None)

    result = _run(["-c", f"import {module}"], env)

    assert result.returncode != 0
    assert "DJANGO_SETTINGS_MODULE is not set" in result.stderr
    assert "flashdeals.settings.production" in result.stderr


def test_wsgi_starts_under_production_settings():
    result = _run(["-c", "import flashdeals.wsgi; print('ok')"], _production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
