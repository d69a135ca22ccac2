"""/admin/ and /silk/ are for staff only."""

import json
import os
import subprocess
import sys

import pytest
from django.test import Client

from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.core.tests.celery_worker import ROOT, worker_database_url

pytestmark = pytest.mark.django_db


def test_admin_refuses_anonymous_and_shoppers_and_admits_staff():
    shopper, operator = UserFactory(), UserFactory(is_staff=True)
    client = Client()

    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    client.login(email=shopper.email, password=DEFAULT_PASSWORD)
    assert client.get("/admin/").status_code == 302
    client.login(email=operator.email, password=DEFAULT_PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_silk_sends_anonymous_visitors_to_the_admin_login():
    # Silk is wired in at settings import, so look at it in a process with SILK_ENABLED=true.
    probe = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/silk/'); print(json.dumps([r.status_code, r.get('Location')]))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashdeals.settings.local",
        "SILK_ENABLED": "true",
        "DATABASE_URL": worker_database_url(),
        "ALLOWED_HOSTS": "testserver",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )

    status, location = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == 302
    assert location == "/admin/login/?next=/silk/"
