"""After-commit work that must not fail the request whose transaction committed."""

from collections.abc import Callable
from typing import Any

from django.db import transaction


def on_commit_robust(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """`transaction.on_commit(..., robust=True)` for a call with arguments.

    Django logs a robust callback that raised by its `__qualname__`, which a `functools.partial`
    lacks: the log line itself raised AttributeError out of the committed atomic block (a
    cancel whose Redis release failed answered 500, and the callbacks after it never ran).
    The wrapper is a real function named after `func`."""

    def call() -> None:
        func(*args, **kwargs)

    call.__qualname__ = getattr(func, "__qualname__", repr(func))
    transaction.on_commit(call, robust=True)
