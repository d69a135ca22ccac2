"""Real concurrency for invariant tests, every purchase through the full API stack: processes
forked with their own DB and Redis connections (`run_buyers`), or threads of this process
(`start_purchases`), released together by a barrier."""

import multiprocessing as mp
import threading
import time
from collections import Counter
from collections.abc import Callable

from django.db import connections
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.core.redis import get_redis
from apps.core.tests.forking import close_connections_before_fork


def answer_of(response: Response) -> int | str:
    """An accepted purchase as its exact status (201 or 202: the test asserts which), a refusal
    as "<status> <error code>"."""
    code = response.status_code
    return code if code < 300 else f"{code} {response.json()['error']}"


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
        statuses[answer_of(response)] += 1
        if response.status_code < 300:
            accepted.append((response.json()["id"], token, body["items"][0]["quantity"]))
    connections.close_all()
    results.put((dict(statuses), accepted))


def run_buyers(attempts_per_process: list[list[tuple[str, dict]]]) -> tuple[Counter, list]:
    """Forks one process per list of (token, body) attempts; all start at the same instant.
    Returns the answers counted by `answer_of` and the accepted purchases as
    (order id, token, quantity)."""
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


def start_purchases(
    token: str, body: dict | list[dict], n: int, **headers: str
) -> Callable[[], list[Response]]:
    """Starts `n` threads that each POST /orders once as the same shopper, released together by
    a barrier, and returns at once (the caller may hold a lock they are to queue on). `body` is
    every thread's, or a list of `n` bodies, one per thread. The returned function joins them
    and gives their responses. Threads, not processes: they see the test's settings and
    monkeypatches as they are when the requests run."""
    bodies = body if isinstance(body, list) else [body] * n
    assert len(bodies) == n
    barrier = threading.Barrier(n, timeout=60)
    responses: list[Response] = []

    def purchase(body: dict) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait()
            responses.append(client.post("/orders", body, format="json", **headers))
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=purchase, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()

    def finish() -> list[Response]:
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a purchase never answered"
        assert len(responses) == n, "a purchase raised instead of answering (see its traceback)"
        return responses

    return finish


def wait_for_lock_waiters(cursor, n: int, timeout: float = 60) -> None:
    """Polls pg_locks (through `cursor`, on a connection no racer uses) until `n` backends of this
    database wait for a lock: the race is then ordered by the locks, not by timing.

    The cursor may be inside a transaction (the one holding the lock), where PostgreSQL reads
    pg_stat_activity once and then answers from that snapshot: a backend that connected later
    would never be counted. pg_stat_clear_snapshot() before every poll makes each one live."""
    deadline = time.monotonic() + timeout
    while True:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        waiting = cursor.fetchone()[0]
        if waiting >= n:
            assert waiting == n, f"{waiting} backends wait for a lock, expected {n}"
            return
        if time.monotonic() > deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = "\n".join(map(str, cursor.fetchall()))
            raise AssertionError(f"only {waiting} of {n} requests wait for a lock:\n{backends}")
        time.sleep(0.01)  # a poll interval: nothing is ordered by it


def race_purchases(attempts: list[tuple[str, dict, dict[str, str]]]) -> list[Response]:
    """One thread per (token, body, headers) attempt, each a different or the same shopper,
    all released together by a barrier; returns the responses in the order of `attempts`.
    Threads, like `start_purchases`: they see the test's settings and its pinned clock."""
    barrier = threading.Barrier(len(attempts), timeout=60)
    responses: list[Response | None] = [None] * len(attempts)

    def purchase(index: int, token: str, body: dict, headers: dict[str, str]) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait()
            responses[index] = client.post("/orders", body, format="json", **headers)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [
        threading.Thread(target=purchase, args=(i, *attempt)) for i, attempt in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a purchase never answered"
    assert all(r is not None for r in responses), "a purchase raised instead of answering"
    return responses  # type: ignore[return-value]
