"""Run a function in several forked processes released together by a barrier.

The children are forks: they see the settings as they are when `run_together` is called (set a
test-only switch with pytest-django's `settings` fixture *before* the call; a change made after
the fork never reaches them), and they share any barrier made by `process_barrier` beforehand.
"""

import multiprocessing
from collections.abc import Callable
from typing import Any

from django.db import connections

from apps.core.tests.forking import close_connections_before_fork


def process_barrier(parties: int, timeout: float = 60) -> Any:
    """A barrier the children of a later `run_together` share (e.g. handed to the app through a
    test-only setting, to order a race inside the app's own code). A racer that never arrives
    breaks it after `timeout` seconds instead of hanging the test."""
    return multiprocessing.get_context("fork").Barrier(parties, timeout=timeout)


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
