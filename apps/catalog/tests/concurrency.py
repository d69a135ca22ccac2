"""Run a function in several forked processes released together by a barrier."""

import multiprocessing
from collections.abc import Callable
from typing import Any

from django.db import connections

from apps.core.tests.forking import close_connections_before_fork


def run_together(target: Callable[..., Any], args: list[tuple], timeout: float = 60) -> list[Any]:
    """Runs `target(barrier, *args[i])` in len(args) forked processes at once; returns results in
    order. Each child opens its own database connection (we close ours before forking so no
    socket is shared); the barrier makes them hit the critical section together."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(args), timeout=timeout)
    results = ctx.Queue()

    def child(index: int, child_args: tuple) -> None:
        try:
            results.put((index, target(barrier, *child_args)))
        except Exception as exc:  # surfaced in the parent
            results.put((index, exc))
        finally:
            connections.close_all()

    close_connections_before_fork()
    # daemon: a child stuck after a failure must not keep the test run alive at exit
    processes = [ctx.Process(target=child, args=(i, a), daemon=True) for i, a in enumerate(args)]
    for process in processes:
        process.start()
    collected = dict(results.get(timeout=timeout) for _ in processes)
    for process in processes:
        process.join(timeout)
    for value in collected.values():
        if isinstance(value, Exception):
            raise value
    return [collected[i] for i in range(len(args))]
