"""The floor's two views. Each answer is a fixed body; the purchase's status and error code are
the contract's (202, 400 DEAL_LIMIT_EXCEEDED, ...) so k6 and the invariant checker read the
floor's runs like the app's."""

import hashlib
import json
import uuid

import jwt
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from apps.core.errors import ErrorCode  # the codes only: the floor keeps no error machinery
from apps.deals import gate
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
    deal_id = uuid.UUID(line["deal_id"])
    # The gate's own call (its only owner of a deal's keys): one EVALSHA of reserve.lua with
    # WAITAOF on the same connection, exactly what the app's purchase sends.
    result = gate.deal_reserve(
        deal_id=deal_id,
        product_id=uuid.UUID(line["product_id"]),
        reservation=gate.Reservation.new(
            user_id=uuid.UUID(user_id),
            quantity=line["quantity"],
            created_at=timezone.now(),
            request_hash=hashlib.sha256(body).hexdigest(),
            idempotency_key=request.headers.get("Idempotency-Key") or None,
            shipping=None,
        ),
        mode="async",
        claim=True,
    )
    if result.outcome == "OK":
        if result.kick:
            drain_deal_stream_task.delay(str(deal_id))
        return _answer(202)
    status, code = REFUSED.get(result.outcome, (503, ErrorCode.SERVICE_UNAVAILABLE))
    return _answer(status, code)
