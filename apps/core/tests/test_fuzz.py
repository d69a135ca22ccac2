"""The fuzzer in the suite (docs/security.md, "Fuzzing"): Schemathesis over /api/schema with a
shopper's and a staff token, in this process under test settings and in a process of its own under
production settings. See apps/core/tests/fuzz.py for what is checked, docs/security.md ("Fuzzing")
for the figures and how to run it longer."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse

from apps.catalog.apis import ProductDetailApi
from apps.core.tests import fuzz, nasty
from apps.core.tests.celery_worker import ROOT, worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("role", ["shopper", "staff"])
def test_fuzz(role):
    data, tokens = fuzz.make_data()

    report = fuzz.run(get_wsgi_application(), label=role, token=tokens[role], data=data)

    print(report.text())
    assert report.cases > report.operations > 0
    assert 429 not in report.statuses  # RATE_LIMIT_EXEMPT_ADDRESSES (settings/test.py)
    assert report.findings == {}, report.text()


def test_the_fuzzer_reports_a_500_with_its_cause_and_an_html_error(monkeypatch):
    """Negative control: break one operation and the harness must say so, and why."""
    data, tokens = fuzz.make_data()
    real = ProductDetailApi.get

    def broken(self, request, product_id):
        if str(product_id) == data.product_ids[0]:
            raise RuntimeError("boom")
        if str(product_id) == data.product_ids[1]:
            return HttpResponse("<h1>Gone</h1>", status=410)
        return real(self, request, product_id)

    monkeypatch.setattr(ProductDetailApi, "get", broken)

    report = fuzz.run(
        get_wsgi_application(),
        label="negative-control",
        token=tokens["shopper"],
        data=data,
        operations=["GET /products/{product_id}"],
    )

    causes = {(f.check, f.status): f.cause for f in report.findings}
    assert causes[("not_a_server_error", 500)].startswith("RuntimeError at apps/core/tests/")
    assert causes[("not_a_server_error", 500)].endswith(": boom")
    assert "not JSON" in causes[("error_body_in_contract", 410)]
    assert ("status_code_conformance", 410) in causes


def test_fuzz_under_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashdeals.settings.production",
        # Throwaway keys that pass production's checks (never written anywhere).
        "SECRET_KEY": secrets.token_urlsafe(64),
        "JWT_SECRET": secrets.token_urlsafe(64),
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_URL": settings.CACHES["default"]["LOCATION"],
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "ALLOWED_HOSTS": "localhost",
        # The fuzzer drives two users from one address, as any load generator does.
        "RATE_LIMIT_EXEMPT_ADDRESSES": "127.0.0.1",
        "METRICS_TOKEN": "",
        "LOG_LEVEL": "ERROR",  # the harness reads the exception behind a 500 from the log
    }
    result = subprocess.run(
        [sys.executable, "-m", "apps.core.tests.fuzz_probe"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(result.stderr[-20000:])
    assert result.returncode == 0, result.stderr[-5000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    reports = answers["fuzz"]

    assert [r["label"] for r in reports] == ["production/shopper", "production/staff"]
    # the hand-made hostile requests (nasty.py): each a 4xx in the contract's shape
    assert [(a["case"], a["ok"]) for a in answers["nasty"] if not a["ok"]] == [], answers["nasty"]
    assert len(answers["nasty"]) == len(nasty.CASES)
    assert all(400 <= a["status"] < 500 for a in answers["nasty"]), answers["nasty"]
    for report in reports:
        assert report["cases"] > report["operations"] > 0
        assert "429" not in report["statuses"]  # RATE_LIMIT_EXEMPT_ADDRESSES above
        assert report["findings"] == [], json.dumps(report["findings"], indent=1)
