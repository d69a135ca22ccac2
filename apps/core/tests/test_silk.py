"""With Silk on (the `make run` default), hostile requests are 4xx JSON, not 500s, and Silk
stores no token, password or session (docs/security.md, "No leaks")."""

import json
import os
import subprocess
import sys

import pytest

from apps.core.tests.celery_worker import ROOT, worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def probe(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashdeals.settings.local",
            "SILK_ENABLED": "true",
            "DATABASE_URL": worker_database_url(),
            "ALLOWED_HOSTS": "testserver",
            "METRICS_TOKEN": "",
            "LOG_LEVEL": "CRITICAL",
        }
        result = subprocess.run(
            [sys.executable, "-m", "apps.core.tests.silk_probe"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_token_requests_work_with_silk_on(probe):
    assert probe["tokens"] == [200, 200, 200]
    assert probe["recorded"] >= 3  # Silk did record them


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("nul_body", 400, "BAD_REQUEST"),
        ("nul_path", 400, "BAD_REQUEST"),
        ("huge_length", 413, "PAYLOAD_TOO_LARGE"),
        ("deep", 422, "VALIDATION_ERROR"),
        ("metrics_post", 405, "METHOD_NOT_ALLOWED"),  # not the CSRF HTML page
    ],
)
def test_hostile_requests_are_json_4xx_with_silk_on(probe, name, status, code):
    assert probe["hostile"][name] == [status, "application/json", code]


def test_silk_stores_no_token_and_no_password(probe):
    assert probe["leaked"] == []
