"""Purchase outcomes per deal, counted in Redis for the live console and the metrics endpoint.

Why Redis and not process-local counters: purchases are answered by several gunicorn workers
on several hosts, and the operator's live page (and a Prometheus scrape that lands on any one
worker) must see all of them. In the Redis pipelines reserve.lua counts its own answers in the
same call that decides the purchase (keep its OUTCOME table in step with REJECTION_REASONS); the
database pipelines, and refusals decided before the script runs, cost one pipelined round trip
of plain commands here (HINCRBY on the current minute's per-second hash and on the deal's
totals, with their TTLs). Counting is best effort: a Redis error is logged and ignored, never
turned into a failed purchase.

Idempotent replays of an accepted purchase count as accepted again (the pipeline answers them
like the original); the counters describe answers, the orders table describes sales.
"""

import logging
import time
from datetime import datetime
from uuid import UUID

import redis
from django.conf import settings

from apps.core.errors import ErrorCode

from .client import gate_redis
from .keys import deal_keys, deal_rate_key

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
# Error code of the refused purchase -> reason shown to operators and exported as a label.
REJECTION_REASONS: dict[ErrorCode, str] = {
    ErrorCode.DEAL_SOLD_OUT: "sold_out",
    # fewer units left than asked for: sold out for this ask
    ErrorCode.INSUFFICIENT_STOCK: "sold_out",
    ErrorCode.DEAL_LIMIT_EXCEEDED: "limit",
    ErrorCode.DEAL_NOT_ACTIVE: "not_active",
    ErrorCode.RATE_LIMITED: "rate_limited",
    ErrorCode.SERVICE_UNAVAILABLE: "unavailable",
    ErrorCode.NOT_ADMITTED: "not_admitted",  # the waiting room is on and no admission was shown
}
OTHER = "other"  # unknown deal, wrong product, idempotency key reused with another body
REASONS = ("sold_out", "limit", "not_active", "not_admitted", "rate_limited", "unavailable", OTHER)
RATE_TTL_SECONDS = 15 * 60  # the chart shows at most the last minutes
OUTCOMES_TTL_SECONDS = 30 * 24 * 3600  # totals outlive the deal for the post-mortem


def outcome_for(error_code: ErrorCode | None) -> str:
    """ACCEPTED for None, else the rejection reason of an error code."""
    if error_code is None:
        return ACCEPTED
    return REJECTION_REASONS.get(error_code, OTHER)


def purchase_outcome_record(*, deal_id: UUID | str, error_code: ErrorCode | None = None) -> None:
    """Counts one answered purchase of `deal_id`: accepted (no error) or refused with
    `error_code`. One round trip; never raises."""
    outcome = outcome_for(error_code)
    now = int(time.time())
    rate_key = deal_rate_key(deal_id, now // 60)
    field = f"{'a' if outcome == ACCEPTED else 'r'}:{now % 60}"
    outcomes_key = deal_keys(deal_id).outcomes
    try:
        pipe = gate_redis().pipeline(transaction=False)
        pipe.hincrby(rate_key, field, 1)
        pipe.expire(rate_key, RATE_TTL_SECONDS)
        pipe.hincrby(outcomes_key, outcome, 1)
        pipe.expire(outcomes_key, OUTCOMES_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("purchase outcome of deal %s not counted: %s", deal_id, exc)


def queue_rate_reads(
    pipe: redis.client.Pipeline, deal_id: UUID | str, *, now: int, seconds: int
) -> int:
    """Queues the HGETALLs of the minute hashes covering the last `seconds` on `pipe` (so the
    caller can read them in the same round trip as everything else). Returns how many."""
    first, last = (now - seconds + 1) // 60, now // 60
    for minute in range(first, last + 1):
        pipe.hgetall(deal_rate_key(deal_id, minute))
    return last - first + 1


def rate_series(hashes: list[dict], *, now: int, seconds: int) -> dict:
    """Per-second counts for the `seconds` up to `now` from the hashes read by
    `queue_rate_reads`, oldest first: purchases accepted and rejected, and shoppers the waiting
    room admitted."""
    start = now - seconds + 1
    first_minute = start // 60
    series = {kind: [0] * seconds for kind in "arq"}
    for offset, values in enumerate(hashes):
        minute = first_minute + offset
        for field, count in values.items():
            kind, _, sec = field.partition(":")
            index = minute * 60 + int(sec) - start
            if kind in series and 0 <= index < seconds:
                series[kind][index] += int(count)
    return {"start": start, "accepted": series["a"], "rejected": series["r"],
            "admitted": series["q"]}  # fmt: skip


def outcome_totals(raw: dict) -> dict:
    """{accepted, rejected: {reason: n}} from a deal's outcomes hash, every reason present."""
    return {
        "accepted": int(raw.get(ACCEPTED, 0)),
        "rejected": {reason: int(raw.get(reason, 0)) for reason in REASONS},
    }


# --- time from acceptance to confirmation (the async writer's lag) ------------------------------

CONFIRMATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def confirmation_latency_key() -> str:
    """hash: bucket upper bound (or "+Inf") -> count, "sum", "count"; one for all deals."""
    return f"{settings.REDIS_KEY_PREFIX}:metrics:confirmation"


def confirmations_record(seconds: list[float]) -> None:
    """Adds the acceptance-to-commit times of a written batch to the shared histogram (one
    round trip per batch, after the commit). Never raises."""
    if not seconds:
        return
    counts: dict[str, int] = {}
    for value in seconds:
        bound = next((b for b in CONFIRMATION_BUCKETS if value <= b), None)
        label = "+Inf" if bound is None else repr(bound)
        counts[label] = counts.get(label, 0) + 1
    key = confirmation_latency_key()
    try:
        pipe = gate_redis().pipeline(transaction=False)
        for label, count in counts.items():
            pipe.hincrby(key, label, count)
        pipe.hincrbyfloat(key, "sum", sum(seconds))
        pipe.hincrby(key, "count", len(seconds))
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("confirmation latency not recorded: %s", exc)


def confirmation_histogram(raw: dict) -> tuple[list[tuple[str, int]], float, int]:
    """(cumulative [(le, count)], sum, count) from the stored hash, Prometheus-style."""
    buckets, running = [], 0
    for bound in CONFIRMATION_BUCKETS:
        running += int(raw.get(repr(bound), 0))
        buckets.append((repr(bound), running))
    running += int(raw.get("+Inf", 0))
    buckets.append(("+Inf", running))
    return buckets, float(raw.get("sum", 0.0)), int(raw.get("count", 0))


def confirmations_since(accepted_at: list[str]) -> None:
    """Records how long ago each reservation (ISO `created_at`) was accepted; call on commit."""
    now = time.time()
    confirmations_record(
        [max(0.0, now - datetime.fromisoformat(t).timestamp()) for t in accepted_at]
    )
