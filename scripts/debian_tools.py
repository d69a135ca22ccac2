"""The Debian programs some test suites drive for real, and how to get each.

`make test` installs the missing ones first when it can (root with apt-get; scripts/devstack.py),
otherwise it names the command once; the suites that need a missing one skip themselves with
the same command as the reason (`require`), except on CI, which always installs them (.ci/run),
where a missing one fails the suite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# program -> (Debian package, the suites that drive it)
TOOLS = {
    "chromium": ("chromium", "the browser test (apps/deals/tests/test_browser.py)"),
    "nginx": ("nginx-light", "deploy/nginx.conf's test (apps/core/tests/test_nginx_conf.py)"),
    "openssl": ("openssl", "deploy/nginx.conf's TLS test"),
    "pgbouncer": ("pgbouncer", "the PgBouncer suite (apps/orders/tests/test_pgbouncer.py)"),
    "promtool": ("prometheus", "the alert rules' check (apps/core/tests/test_observability.py)"),
}


def find(program: str) -> str | None:
    """The program's path: on PATH, or in /usr/sbin (not on a non-root user's PATH)."""
    sbin = Path("/usr/sbin") / program
    return shutil.which(program) or (str(sbin) if sbin.exists() else None)


def missing() -> list[str]:
    return [program for program in TOOLS if find(program) is None]


def install_command(programs: list[str]) -> str:
    return "sudo apt-get install -y " + " ".join(TOOLS[p][0] for p in programs)


def require(program: str) -> str:
    """In a test: the program's path, or skip (fail on CI) naming how to install it."""
    if path := find(program):
        return path
    missing_on_ci_fails(f"{program} is not installed: `{install_command([program])}`")
    raise AssertionError("unreachable: skipped or failed")


def missing_on_ci_fails(message: str) -> None:
    """In a test, for a tool that is missing: skip with `message`, except on CI, which installs
    every tool the suites drive, where the test fails instead."""
    import pytest  # (tests only; the launcher imports this module without pytest)

    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it in .ci/run)")
    pytest.skip(message)
