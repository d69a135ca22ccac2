"""Business metrics of the deals, read from Redis when Prometheus scrapes (one round trip for
all live deals), and whether the gate's server answers. Registered with apps.core.metrics by
DealsConfig.ready()."""

import logging

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import gate

logger = logging.getLogger(__name__)


class DealMetricsCollector:
    """Per live deal (the gate's set of loaded deals): purchases accepted and rejected by reason,
    remaining units, write backlog, dead letters; per live deal with a waiting room (on, or
    joined by someone) the shoppers waiting and admitted now, and the admissions made, lapsed
    and revoked; and the time from acceptance to confirmation across all deals."""

    def describe(self):
        return []

    def collect(self):
        try:
            gauges, latency = gate.live_deal_gauges()
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
        waiting = GaugeMetricFamily(
            "flashdeals_deal_room_waiting",
            "Shoppers in the deal's waiting room line.",
            labels=["deal"],
        )
        outstanding = GaugeMetricFamily(
            "flashdeals_deal_room_admitted_outstanding",
            "Admissions not yet used, lapsed or revoked (at most remaining x overbooking).",
            labels=["deal"],
        )
        admitted = CounterMetricFamily(
            "flashdeals_deal_room_admitted",
            "Shoppers the waiting room admitted (a shopper sent back and admitted again counts "
            "twice).",
            labels=["deal"],
        )
        lapsed = CounterMetricFamily(
            "flashdeals_deal_room_lapsed",
            "Admissions that expired unused: the shopper lost the place.",
            labels=["deal"],
        )
        revoked = CounterMetricFamily(
            "flashdeals_deal_room_revoked",
            "Admissions sent back to the head of the line because the stock fell below them.",
            labels=["deal"],
        )
        for deal in gauges:
            if deal.room is not None:
                waiting.add_metric([deal.deal_id], deal.room.waiting)
                outstanding.add_metric([deal.deal_id], deal.room.admitted_now)
                admitted.add_metric([deal.deal_id], deal.room.admitted)
                lapsed.add_metric([deal.deal_id], deal.room.lapsed)
                revoked.add_metric([deal.deal_id], deal.room.revoked)
            accepted.add_metric([deal.deal_id], deal.outcomes["accepted"])
            for reason, count in deal.outcomes["rejected"].items():
                rejected.add_metric([deal.deal_id, reason], count)
            if deal.remaining is not None:
                remaining.add_metric([deal.deal_id], deal.remaining)
            backlog.add_metric([deal.deal_id], deal.backlog)
            dead.add_metric([deal.deal_id], deal.dead_letters)
        buckets, total, count = gate.confirmation_histogram(latency)
        confirmation = HistogramMetricFamily(
            "flashdeals_order_confirmation_seconds",
            "Time from a deal purchase's acceptance to its order row being committed.",
            buckets=buckets,
            sum_value=total,
        )
        yield from (accepted, rejected, remaining, backlog, dead, confirmation)
        yield from (waiting, outstanding, admitted, lapsed, revoked)


class GateUpCollector:
    """`flashdeals_gate_up`: 1 when the gate's server (each primary of a cluster) answers a PING
    within REDIS_SOCKET_TIMEOUT, else 0. Purchases on the Redis pipelines need it: without it
    they answer 503."""

    def describe(self):
        return []

    def collect(self):
        try:
            gate.gate_ping()
            up = 1
        except Exception as exc:  # noqa: BLE001 - any failure is a gate we can't reach; never a 500
            logger.warning("the gate's server does not answer: %s", exc)
            up = 0
        yield GaugeMetricFamily(
            "flashdeals_gate_up", "1 when the gate's Redis answers a PING, else 0.", value=up
        )
