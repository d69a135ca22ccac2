"""The hand-made hostile requests of a security review (docs/security.md, "Every malformed request
is a 4xx in the contract's shape"), as one list any settings module can be driven with: test_fuzz.py
sends them under production settings (fuzz_probe), test_hostile_requests.py holds the test-settings
cases one by one. Each answer must be a 4xx in the contract's shape: never a 5xx, never HTML."""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.test import Client

from .fuzz import FuzzData

DEEP = ("[" * 950 + "]" * 950).encode()  # ~2 KB: DRF's JSON parser recursed out of the stack


@dataclass(frozen=True)
class Nasty:
    name: str
    send: Callable[[Client, dict, FuzzData], object]


def _post(path: str, body: bytes, **extra):
    def send(client: Client, auth: dict, data: FuzzData):
        return client.generic("POST", path, body, "application/json", secure=True, **auth, **extra)

    return send


def _get(path: str, **extra):
    def send(client: Client, auth: dict, data: FuzzData):
        return client.get(path, secure=True, **{**auth, **extra})

    return send


def _order(quantity: object):
    def send(client: Client, auth: dict, data: FuzzData):
        body = json.dumps({"items": [{"product_id": data.product_ids[1],
                                      "deal_id": data.deal_ids[0]}]})  # fmt: skip
        body = body.replace("}]}", f', "quantity": {quantity}}}]}}')
        return client.generic("POST", "/orders", body.encode(), "application/json", secure=True,
                              **auth)  # fmt: skip

    return send


def _cancel_with(body: bytes):
    def send(client: Client, auth: dict, data: FuzzData):
        return client.generic("POST", f"/orders/{data.order_ids[0]}/cancel", body,
                              "application/json", secure=True, **auth)  # fmt: skip

    return send


CASES = [
    Nasty("deep JSON, anonymous login", _post("/auth/login", DEEP)),
    Nasty("deep JSON, purchase", _post("/orders", DEEP)),
    Nasty("a body over the limit", _post("/auth/login", b'{"email": "' + b"a" * 400_000 + b'"}')),
    Nasty("only a huge Content-Length", _post("/auth/login", b"{}", CONTENT_LENGTH="999999999")),
    Nasty(
        "a NUL byte in the body", _post("/auth/login", b'{"email": "a\\u0000b", "password": "x"}')
    ),
    Nasty("a raw NUL byte in the body", _post("/auth/login", b'{"email": "a\x00b"}')),
    Nasty("%00 in the path", _get("/products/%00")),
    Nasty("the schema with a bad token", _get("/api/schema", HTTP_AUTHORIZATION="Bearer nope")),
    Nasty("the docs with a bad token", _get("/api/docs", HTTP_AUTHORIZATION="Bearer nope")),
    Nasty("a quantity as a string", _order('"1"')),
    Nasty("a quantity as 1E1", _order("1E1")),
    Nasty("a quantity as 1.0", _order("1.0")),
    Nasty("cancel with the body false", _cancel_with(b"false")),
    Nasty("a write on /metrics", _post("/metrics", b"{}")),
]


def send_all(token: str, data: FuzzData) -> list[dict]:
    """Each case once, with the shopper's token; what came back, and whether it is allowed."""
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    results = []
    for case in CASES:
        response = case.send(client, auth, data)
        status = response.status_code
        try:
            body = json.loads(response.content)
            contract = set(body) == {"error", "message", "details"}
        except ValueError:
            contract = False
        ok = status < 500 and (status < 400 or contract)
        results.append({"case": case.name, "status": status, "ok": ok})
    return results
