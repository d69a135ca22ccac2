"""The floor's two views. Each answer is a fixed body; the purchase's status and error code are
the contract's (202, 400 DEAL_LIMIT_EXCEEDED, ...) so k6 and the invariant checker read the
floor's runs like the app's."""

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime

import jwt
import redis
from django.conf import settings
from django.http import HttpResponse

from apps.core.errors import ErrorCode  # the codes only: the floor keeps no error machinery
from apps.deals.gate.client import key_redis
from apps.deals.gate.keys import deal_keys, deal_rate_key, idempotency_claim_key
from apps.deals.gate.scripts import script
from apps.deals.gate.stats import OUTCOMES_TTL_SECONDS, RATE_TTL_SECONDS
from apps.deals.gate.stream import DRAIN_FLAG_TTL_SECONDS
from apps.orders.tasks import drain_deal_stream_task

JSON = "application/json"
ACCEPTED = b'{"status":"pending"}'
# reserve.lua's outcome -> (status, error code); anything else is a 503 the lab counts as
# unexpected.
REFUSED = {
    "LIMIT": (400, ErrorCode.DEAL_LIMIT_EXCEEDED),
    "SOLD_OUT": (400, ErrorCode.DEAL_SOLD_OUT),
    "INSUFFICIENT": (400, ErrorCode.INSUFFICIENT_STOCK),
    "KEY_REUSED": (409, ErrorCode.IDEMPOTENCY_KEY_REUSED),
    "DUPLICATE": (202, ""),
}


def ping(request):
    return HttpResponse(b'{"status":"healthy"}', content_type=JSON)


def _gate(key: str) -> redis.Redis:
    """The plain client of the gate's server that holds `key` (what script_durably uses), with
    reserve.lua loaded on it once per process, so the EVALSHA below finds it."""
    client = key_redis(key)
    if id(client) not in _LOADED:
        client.script_load(script("reserve").script)
        _LOADED.add(id(client))
    return client


_LOADED: set[int] = set()


def _answer(status: int, code: str = "") -> HttpResponse:
    body = json.dumps({"error": code}).encode() if code else ACCEPTED
    return HttpResponse(body, status=status, content_type=JSON)


def purchase(request):
    try:
        claims = jwt.decode(
            request.headers.get("Authorization", "")[len("Bearer ") :],
            settings.SIMPLE_JWT["SIGNING_KEY"],
            algorithms=["HS256"],
        )
        user_id = claims["user_id"]
    except (jwt.InvalidTokenError, KeyError):
        return _answer(401, ErrorCode.INVALID_TOKEN)
    body = request.body
    line = json.loads(body)["items"][0]
    deal_id, key = line["deal_id"], request.headers.get("Idempotency-Key", "")
    keys = deal_keys(deal_id)
    now_ms = time.time_ns() // 1_000_000
    reservation = {
        "order_id": str(uuid.uuid4()),
        "item_id": str(uuid.uuid4()),
        "user_id": user_id,
        "quantity": line["quantity"],
        "created_at": datetime.now(UTC).isoformat(),
        "request_hash": hashlib.sha256(body).hexdigest(),
        **({"idempotency_key": key} if key else {}),
    }
    # deal_reserve's keys and arguments (apps/deals/gate/reserve.py), in the same order.
    script_keys = [
        keys.state, keys.users, keys.idem, keys.pending, keys.stream, keys.drain,
        deal_rate_key(deal_id, now_ms // 60_000), keys.outcomes, keys.queue, keys.tickets,
        keys.admitted, keys.expiry, keys.room,
        *([idempotency_claim_key(user_id, key)] if key else []),
    ]  # fmt: skip
    args = [
        user_id, line["quantity"], key, reservation["request_hash"], reservation["order_id"],
        now_ms, json.dumps(reservation, separators=(",", ":")), "async",
        DRAIN_FLAG_TTL_SECONDS, line["product_id"], RATE_TTL_SECONDS, OUTCOMES_TTL_SECONDS,
        settings.IDEMPOTENCY_CLAIM_TTL_SECONDS, "", "",
    ]  # fmt: skip
    # One round trip: the script and WAITAOF on one connection (script_durably without
    # replicas), so the floor's answer is as durable as the app's.
    pipe = _gate(keys.state).pipeline(transaction=False)
    pipe.evalsha(script("reserve").sha, len(script_keys), *script_keys, *args)
    pipe.execute_command("WAITAOF", 1, 0, settings.GATE_WAITAOF_TIMEOUT_MS)
    reply, _ack = pipe.execute()
    if reply[0] == "OK":
        if int(reply[3]):
            drain_deal_stream_task.delay(deal_id)
        return _answer(202)
    status, code = REFUSED.get(reply[0], (503, ErrorCode.SERVICE_UNAVAILABLE))
    return _answer(status, code)
