"""Run by test_fuzz.py in a process of its own under flashdeals.settings.production (DEBUG off,
Silk off, the SSL redirect, production's hosts and middleware), with throwaway strong keys and
the test database and Redis. Fuzzes the schema with a shopper's and a staff token over HTTPS and
prints one JSON line: each run's report, and what the hand-made hostile requests of
apps/core/tests/nasty.py got."""

import json
import sys

import django

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402

from apps.core.tests import fuzz, nasty  # noqa: E402

app = get_wsgi_application()
data, tokens = fuzz.make_data()
reports = []
for role in ("shopper", "staff"):
    report = fuzz.run(
        app, label=f"production/{role}", token=tokens[role], data=data, base_url="https://localhost"
    )
    print(report.text(), file=sys.stderr)
    reports.append(report.as_dict())
print(json.dumps({"fuzz": reports, "nasty": nasty.send_all(tokens["shopper"], data)}))
