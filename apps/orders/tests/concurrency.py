"""Real concurrency for invariant tests: processes forked with their own DB and Redis
connections, released together by a barrier, each posting orders through the full API stack."""

import multiprocessing as mp
from collections import Counter

from django.db import connections
from rest_framework.test import APIClient

from apps.core.redis import get_redis
from apps.core.tests.forking import close_connections_before_fork


def _buyer(barrier, results, attempts: list[tuple[str, dict]]) -> None:
    connections.close_all()  # never share the parent's sockets
    get_redis().connection_pool.reset()
    clients: dict[str, APIClient] = {}
    barrier.wait()
    statuses = Counter()
    accepted: list[tuple[str, str, int]] = []
    for token, body in attempts:
        client = clients.get(token)
        if client is None:
            client = clients[token] = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post("/orders", body, format="json")
        code = response.status_code
        statuses[code if code in (201, 202) else f"{code} {response.json()['error']}"] += 1
        if code in (201, 202):
            accepted.append((response.json()["id"], token, body["items"][0]["quantity"]))
    connections.close_all()
    results.put((dict(statuses), accepted))


def run_buyers(attempts_per_process: list[list[tuple[str, dict]]]) -> tuple[Counter, list]:
    """Forks one process per list of (token, body) attempts; all start at the same instant."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(attempts_per_process), timeout=60)
    results = ctx.Queue()
    close_connections_before_fork()
    procs = [
        ctx.Process(target=_buyer, args=(barrier, results, attempts), daemon=True)
        for attempts in attempts_per_process
    ]
    for p in procs:
        p.start()
    statuses: Counter = Counter()
    accepted: list = []
    for _ in procs:
        s, a = results.get(timeout=300)
        statuses.update(s)
        accepted.extend(a)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0, f"buyer process exited with {p.exitcode}"
    return statuses, accepted
