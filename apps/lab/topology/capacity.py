"""What one purchase costs each tier of the topology, measured in CPU seconds (docs/scaling.md's
capacity table): shoppers buy as fast as they can through HAProxy for a few seconds, and the
CPU each process tree used is divided by the requests. CPU per request, not requests per second,
is what carries over to a bigger machine: this one's two cores are shared by every tier and by
the shoppers themselves.
"""

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from apps.catalog.services import product_create
from apps.deals import gate
from apps.deals.services import deal_create
from apps.lab.chaos.runner import shoppers
from loadtests.stack import tree_cpu

from .stack import Topology

SHOPPERS, THREADS, SECONDS = 400, 12, 8.0


@dataclass
class Cost:
    requests: int
    accepted: int
    seconds: float
    cpu_ms: dict[str, float]  # tier -> CPU milliseconds per request

    def lines(self) -> list[str]:
        rate = self.requests / self.seconds
        head = (f"capacity: {self.requests} purchase requests in {self.seconds:.1f} s "
                f"({rate:.0f}/s on this machine, {self.accepted} accepted)")  # fmt: skip
        per = [f"  {tier:<10} {ms:6.3f} ms CPU per request -> {1000 / ms:8,.0f} requests/s "
               "per core" for tier, ms in self.cpu_ms.items() if ms]  # fmt: skip
        return [head, *per]


def measure(topology: Topology) -> Cost:
    assert topology.gate
    users = shoppers(SHOPPERS)
    product = product_create(name="Topology capacity", price=20_000, stock=10**6,
                             category="topology")  # fmt: skip
    now = timezone.now()
    deal = deal_create(
        product_id=product.id, deal_price=9_900, deal_stock=10**6, per_user_limit=10**4,
        starts_at=now - timedelta(seconds=5), ends_at=now + timedelta(minutes=30), publish=True,
    )  # fmt: skip
    shard = topology.gate.node(gate.deal_server(deal.id)[1])
    trees = {
        "web": [topology.procs["web1"].popen.pid, topology.procs["web2"].popen.pid],
        "haproxy": [topology.procs["haproxy"].popen.pid],
        "gate shard": [shard.process.pid],
        "workers": [topology.procs["worker1"].popen.pid, topology.procs["worker2"].popen.pid],
        "pgbouncer": [topology.bouncer.process.pid],
    }  # type: ignore[union-attr]
    body = json.dumps({"items": [{"product_id": str(product.id), "deal_id": str(deal.id),
                                  "quantity": 1}]})  # fmt: skip
    counts = {"requests": 0, "accepted": 0}
    lock, stop = threading.Lock(), threading.Event()

    def shop(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", topology.ports["haproxy"], timeout=10)
        n = i
        while not stop.is_set():
            n += THREADS
            headers = {"Authorization": f"Bearer {users[n % SHOPPERS].token}",
                       "Content-Type": "application/json",
                       "Idempotency-Key": uuid.uuid4().hex}  # fmt: skip
            try:
                conn.request("POST", "/orders", body=body, headers=headers)
                status = conn.getresponse()
                status.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            with lock:
                counts["requests"] += 1
                counts["accepted"] += status.status in (201, 202)

    before = {tier: sum(tree_cpu(pid) for pid in pids) for tier, pids in trees.items()}
    threads = [threading.Thread(target=shop, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    after = {tier: sum(tree_cpu(pid) for pid in pids) for tier, pids in trees.items()}
    requests = max(counts["requests"], 1)
    return Cost(
        requests=counts["requests"], accepted=counts["accepted"], seconds=seconds,
        cpu_ms={tier: 1000 * (after[tier] - before[tier]) / requests for tier in trees},
    )  # fmt: skip
