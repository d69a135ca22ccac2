"""DB_TRANSACTION_POOLING=true turns off what PgBouncer in transaction mode cannot carry from one
transaction to the next (flashdeals/settings/pooling.py); unset, the database settings are
Django's. Settings are read once per process, so each case runs in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PRINT_DEFAULT_DATABASE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "db = settings.DATABASES['default']; "
    "print(json.dumps([db.get('DISABLE_SERVER_SIDE_CURSORS', False), db['OPTIONS']]))"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", [True, {"prepare_threshold": None}]),
        ("false", [False, {}]),
        (None, [False, {}]),
    ],
)
def test_the_switch_sets_exactly_the_pooler_settings(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "DB_TRANSACTION_POOLING"}
    if value is not None:
        env["DB_TRANSACTION_POOLING"] = value
    env["DJANGO_SETTINGS_MODULE"] = "flashdeals.settings.test"

    result = subprocess.run(
        [sys.executable, "-c", PRINT_DEFAULT_DATABASE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    assert json.loads(result.stdout) == expected
