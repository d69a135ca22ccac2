"""Business metrics of the deals, read from Redis when Prometheus scrapes (one round trip for
all live deals). Registered through settings.METRICS_COLLECTORS."""

import logging

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from apps.core.redis import get_redis

from . import gate, stats
from .keys import deal_keys

logger = logging.getLogger(__name__)


class DealMetricsCollector:
    """Per live deal (the gate's set of loaded deals): purchases accepted and rejected by reason,
    remaining units, write backlog, dead letters; and the time from acceptance to confirmation
    across all deals."""

    def describe(self):
        return []

    def collect(self):
        try:
            deal_ids = gate.live_deal_ids()
            pipe = get_redis().pipeline(transaction=False)
            for deal_id in deal_ids:
                keys = deal_keys(deal_id)
                pipe.hgetall(keys.outcomes)
                pipe.hget(keys.state, "remaining")
                pipe.hlen(keys.pending)
                pipe.hlen(keys.dead)
            pipe.hgetall(stats.confirmation_latency_key())
            replies = pipe.execute()
        except redis.RedisError as exc:
            logger.warning("deal metrics unavailable: %s", exc)
            return
        accepted = CounterMetricFamily(
            "flashdeals_deal_purchases_accepted",
            "Deal purchases answered 201/202 (idempotent replays included).",
            labels=["deal"],
        )
        rejected = CounterMetricFamily(
            "flashdeals_deal_purchases_rejected",
            "Deal purchases refused, by reason.",
            labels=["deal", "reason"],
        )
        remaining = GaugeMetricFamily(
            "flashdeals_deal_remaining_units", "Units left in the gate.", labels=["deal"]
        )
        backlog = GaugeMetricFamily(
            "flashdeals_deal_write_backlog",
            "Reservations accepted but not yet written to PostgreSQL (stream backlog).",
            labels=["deal"],
        )
        dead = GaugeMetricFamily(
            "flashdeals_deal_dead_letters", "Reservations parked for the operator.", labels=["deal"]
        )
        for index, deal_id in enumerate(deal_ids):
            outcomes, left, pending, parked = replies[index * 4 : index * 4 + 4]
            totals = stats.outcome_totals(outcomes)
            accepted.add_metric([deal_id], totals["accepted"])
            for reason, count in totals["rejected"].items():
                rejected.add_metric([deal_id, reason], count)
            if left is not None:
                remaining.add_metric([deal_id], int(left))
            backlog.add_metric([deal_id], pending)
            dead.add_metric([deal_id], parked)
        buckets, total, count = stats.confirmation_histogram(replies[-1])
        confirmation = HistogramMetricFamily(
            "flashdeals_order_confirmation_seconds",
            "Time from a deal purchase's acceptance to its order row being committed.",
            buckets=buckets,
            sum_value=total,
        )
        yield from (accepted, rejected, remaining, backlog, dead, confirmation)
