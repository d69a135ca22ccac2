"""`make test-topology`: shoppers buy through HAProxy on deals that live on different shards,
one fault lands mid-burst, everything is healed and closed, and the lab's invariant checker
must pass. One round per fault:

    web_kill       SIGKILL of web1 (gunicorn master and workers); HAProxy routes around it
    worker_kill    SIGKILL of worker1 mid-batch; worker2 and the re-claim finish its entries
    gate_failover  SIGKILL of the primary holding the hot deal; its replica is promoted, and
                   the old primary, restarted, rejoins as its replica
    beat_kill      SIGKILL of the beat that sends; the standby takes redbeat's lock

A shopper may see only the contract's answers: 2xx, a designed 4xx, or a JSON 5xx to retry
(the app's 503, HAProxy's 502/503/504 in the same shape). Each round reports its recovery time.
"""

import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis
from django.db import close_old_connections
from django.utils import timezone

from apps.catalog.services import product_create
from apps.deals import gate
from apps.deals.services import deal_create
from apps.lab.chaos.runner import settle, shoppers
from apps.lab.chaos.traffic import DealInfo, Traffic
from apps.lab.checks import Accepted, deal_invariants

from . import capacity
from .stack import Topology

FAULTS = ("web_kill", "worker_kill", "gate_failover", "beat_kill")
STOCK, EXTRA_UNITS, PER_USER_LIMIT = 40, 5, 2
BEFORE_FAULT, AFTER_FAULT = 2.0, 6.0  # seconds of traffic around the fault
THREADS = 8


@dataclass
class Round:
    fault: str
    ok: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # hot deal / others

    def line(self) -> str:
        facts = ", ".join(f"{k} {v}" for k, v in self.detail.items())
        facts += "; answers " + ", ".join(f"{k} {v}" for k, v in self.statuses.items())
        verdict = "OK" if self.ok else f"FAIL {self.checks}"
        return f"{self.fault:<14} {facts}  {verdict}"


def sharded_deals(topology: Topology, n: int, label: str) -> list[DealInfo]:
    """Published deals, one per shard (a deal's shard comes from its random id)."""
    assert topology.gate
    made: dict[int, DealInfo] = {}
    now = timezone.now()
    while len(made) < n:
        product = product_create(name=f"Topology {label} {len(made)}", price=20_000,
                                 stock=STOCK + EXTRA_UNITS, category="topology")  # fmt: skip
        deal = deal_create(
            product_id=product.id, deal_price=9_900, deal_stock=STOCK,
            per_user_limit=PER_USER_LIMIT, starts_at=now - timedelta(seconds=5),
            ends_at=now + timedelta(minutes=30), publish=True,
        )  # fmt: skip
        _, port = gate.deal_server(deal.id)
        made.setdefault(port, DealInfo(str(deal.id), str(product.id), PER_USER_LIMIT))
    return list(made.values())


def run_round(topology: Topology, fault: str, users: list, seed: int) -> Round:
    deals = sharded_deals(topology, 3, fault)
    hot = deals[0]
    traffic = Traffic(topology.base_url, seed, users, deals, threads=THREADS)
    result = Round(fault)
    traffic.start()
    try:
        time.sleep(BEFORE_FAULT)
        result.detail = inject(topology, fault, hot, traffic)
        time.sleep(AFTER_FAULT)
    finally:
        traffic.join()
    topology.heal()
    not_closed = settle(topology, deals)
    result.checks = check(deals, traffic, not_closed)
    for name, mine in (("hot deal", True), ("others", False)):
        seen = Counter(
            str(a.status) for a in traffic.attempts if (a.deal_id == hot.deal_id) == mine
        )
        result.statuses[name] = dict(sorted(seen.items()))
    result.ok = all(v in (True, 0, []) for v in result.checks.values())
    close_old_connections()
    return result


def inject(topology: Topology, fault: str, hot: DealInfo, traffic: Traffic) -> dict[str, Any]:
    """Lands the fault now; returns what was measured about the recovery."""
    started = time.monotonic()
    if fault == "web_kill":
        topology.web_kill(1)
        down = _until(lambda: topology.haproxy_state("web1") == "DOWN")
        return {"haproxy_marked_down_s": down}
    if fault == "worker_kill":
        dead = topology.consumers("worker1")  # the stream consumer names of its processes
        # Mid-batch: the moment it holds entries it read and has not acknowledged (if that
        # moment does not come within 5 s, now).
        with contextlib.suppress(TimeoutError):
            _until(lambda: _held_by(dead, traffic) > 0, timeout=5, every=0.002)
        held = _held_by(dead, traffic)
        topology.worker_kill(1)
        reclaimed = _until(lambda: _held_by(dead, traffic) == 0)
        return {"entries_held_at_kill": held, "all_written_by_others_s": reclaimed}
    if fault == "gate_failover":
        assert topology.gate
        primary = topology.gate.node(gate.deal_server(hot.deal_id)[1])
        topology.gate.kill(primary)
        _, promoted = topology.gate.wait_promoted(primary)
        rejoined = topology.gate.restart(primary)
        sold = _until(lambda: _accepted_since(traffic, hot.deal_id, started))
        return {"replica_promoted_s": round(promoted, 2), "old_primary_rejoined_s":
                round(rejoined, 2), "hot_deal_selling_again_s": sold}  # fmt: skip
    if fault == "beat_kill":
        active = topology.active_beat()
        assert active, "no beat has sent a task yet"
        standby = "beat2" if active == "beat1" else "beat1"
        sends = topology.beat_sends(standby)
        topology.beat_kill(active)
        took = _until(lambda: topology.beat_sends(standby) > sends, timeout=60)
        return {"killed": active, "standby_sending_after_s": took}
    raise ValueError(fault)


def _held_by(consumers: set[str], traffic: Traffic) -> int:
    """Stream entries the named consumers read and have not acknowledged, over the round's
    deals."""
    total = 0
    for deal_id in {a.deal_id for a in traffic.attempts}:
        held = gate.stream_held(deal_id)
        total += sum(count for name, count in held.items() if name in consumers)
    return total


def _accepted_since(traffic: Traffic, deal_id: str, since: float) -> bool:
    with traffic.lock:
        return any(a.accepted and a.deal_id == deal_id and a.started > since
                   for a in traffic.attempts)  # fmt: skip


def _until(condition, timeout: float = 30.0, every: float = 0.05) -> float:  # noqa: ANN001
    """Seconds until `condition()` holds (polled every `every` s); TimeoutError after
    `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(every)
    return round(time.monotonic() - started, 2)


def check(deals: list[DealInfo], traffic: Traffic, not_closed: list[str]) -> dict[str, Any]:
    attempts = traffic.attempts
    checks: dict[str, Any] = {
        "not_closed": not_closed,
        # Through HAProxy every request gets an answer: never a reset, never a 500, never HTML.
        "no_answer": sum(a.status is None for a in attempts),
        "status_500": sum(a.status == 500 for a in attempts),
        "not_json": sum(a.error == "not JSON" for a in attempts),
        "accepted": sum(a.accepted for a in attempts),
    }
    for n, deal in enumerate(deals):
        mine = [a for a in attempts if a.deal_id == deal.deal_id]
        report = deal_invariants(
            deal_id=uuid.UUID(deal.deal_id), total_units=STOCK + EXTRA_UNITS,
            accepted_orders=[Accepted(a.order_id, a.user_id, a.key)
                             for a in mine if a.accepted and a.order_id],
            unanswered=sum(a.unanswered for a in mine), closed=True, timeout=10,
        )  # fmt: skip
        checks[f"deal#{n}"] = report["ok"] or [k for k, v in report["checks"].items() if not v]
    checks["accepted"] = checks["accepted"] > 0  # the burst sold something
    return checks


def crossslot_errors(topology: Topology) -> int:
    """CROSSSLOT errors every live gate node has answered since it started."""
    assert topology.gate
    total = 0
    for node in topology.gate.live():
        try:
            stats = node.client().info("errorstats")
        except redis.RedisError:
            continue
        total += int(stats.get("errorstat_CROSSSLOT", {}).get("count", 0))
    return total


def drill(topology: Topology, report) -> int:  # noqa: ANN001 - print-like
    for line in capacity.measure(topology).lines():
        report(line)
    users = shoppers(24)
    crossslot = 0
    failed = []
    for seed, fault in enumerate(FAULTS, 1):
        if fault == "gate_failover":  # the node about to be killed takes its count with it
            crossslot += crossslot_errors(topology)
        result = run_round(topology, fault, users, seed)
        report(result.line())
        if not result.ok:
            failed.append(fault)
    crossslot += crossslot_errors(topology)
    # redis-py's cluster client refuses a cross-slot command before sending it: count those in
    # every process's log too (a refused purchase would also be a 500, failing its round).
    refused = sum(log.read_text().count("same key slot") + log.read_text().count("CROSSSLOT")
                  for log in topology.logs.glob("*.log"))  # fmt: skip
    report(f"CROSSSLOT errors over the run: {crossslot} answered by the gate's nodes, "
           f"{refused} refused by the client in the logs")  # fmt: skip
    crossslot += refused
    return 1 if failed or crossslot else 0
