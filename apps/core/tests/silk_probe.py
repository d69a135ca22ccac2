"""Run by test_silk.py in a process of its own with SILK_ENABLED=true (Silk is wired in at
settings import). Sends hostile and token-carrying requests through the whole middleware chain,
then prints one JSON line: the statuses, and which secrets ended up in Silk's tables."""

import base64
import json

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from apps.accounts.models import User  # noqa: E402

call_command("migrate", "silk", verbosity=0)  # Silk's tables, in this (test) database

from silk.models import Request, Response, SQLQuery  # noqa: E402

EMAIL, PASSWORD = "silk-probe@example.com", "silk-probe-pass-42"
User.objects.filter(email=EMAIL).delete()
User.objects.create_user(email=EMAIL, password=PASSWORD, name="Silk Probe")
Request.objects.all().delete()

client = Client(raise_request_exception=False)
out: dict = {}


def post(path: str, body: bytes, **extra):
    return client.generic("POST", path, body, content_type="application/json", **extra)


login = post("/auth/login", json.dumps({"email": EMAIL, "password": PASSWORD}).encode())
tokens = login.json()
refresh = post("/auth/refresh", json.dumps({"refresh_token": tokens["refresh_token"]}).encode())
me = client.get("/auth/users/me", HTTP_AUTHORIZATION=f"Bearer {refresh.json()['access_token']}")
out["tokens"] = [login.status_code, refresh.status_code, me.status_code]
hostile = {
    "nul_body": post("/auth/login", b'{"email":"a\x00@x.io","password":"x"}'),
    "nul_path": client.get("/products/%00"),
    "huge_length": post("/auth/login", b"{}", CONTENT_LENGTH="9" * 15),
    "deep": post("/auth/login", b"[" * 950 + b"]" * 950),
    "metrics_post": client.post("/metrics"),
}
out["hostile"] = {
    name: [r.status_code, r.get("Content-Type"), r.json().get("error")]
    for name, r in hostile.items()
}

stored = []
for row in Request.objects.all():
    stored += [row.body, row.raw_body or "", row.encoded_headers, row.query_params]
for row in Response.objects.all():
    stored += [row.body, row.encoded_headers, base64.b64decode(row.raw_body or "").decode()]
stored += list(SQLQuery.objects.values_list("query", flat=True))
text = "\n".join(stored)
secrets = {
    "password": PASSWORD,
    "login access": tokens["access_token"],
    "login refresh": tokens["refresh_token"],
    "refresh access": refresh.json()["access_token"],
    "refresh refresh": refresh.json()["refresh_token"],
}
out["leaked"] = sorted(name for name, value in secrets.items() if value in text)
out["recorded"] = Request.objects.count()
User.objects.filter(email=EMAIL).delete()
print(json.dumps(out))
