"""The chaos suite, short: three seeds whose faults together cover every kind (a web worker,
the Celery worker, the gate's server killed; the gate restored from an earlier copy; lost
`users`/`idem` keys; a broker outage) must pass the invariant checker; and a negative control,
the same runner with the app's own protection switched off, must make the checker fail.

Each runs `python -m apps.lab.chaos` as `make chaos` does, on this test database (its rows are
committed, hence transaction=True), with servers, gunicorn and a worker of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.core.tests.celery_worker import worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
# Seeds 3, 8 and 16 between them inject all six fault kinds (their plans print with each line).
SHORT_SEEDS = "3,8,16"


def chaos(out: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": worker_database_url()}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "apps.lab.chaos", "--out", str(out), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_short_chaos_run_keeps_every_invariant(tmp_path):
    # when
    run = chaos(tmp_path / "run", "--seeds", SHORT_SEEDS)

    # then
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("seed")]
    assert len(lines) == 3 and all(line.endswith("OK") for line in lines), run.stdout
    for seed in SHORT_SEEDS.split(","):
        report = json.loads((tmp_path / "run" / f"seed-{seed}.json").read_text())
        assert report["accepted"] > 0  # the seed sold something while its faults landed
        assert all(deal["checks"]["deal_closed"] for deal in report["deals"].values())


def test_negative_control_the_checker_catches_a_broken_per_user_limit(tmp_path):
    # given: every process runs with the deal row lock of db_lock switched off (the test-only
    # ORDER_UNSAFE_SKIP_DEAL_LOCK, set by a settings module of this test's own: the switch is
    # never read from the environment), and shoppers buy for one shopper from 6 threads at once
    (tmp_path / "chaos_unsafe_settings.py").write_text(
        "from flashdeals.settings.local import *  # noqa: F403\n"
        "ORDER_UNSAFE_SKIP_DEAL_LOCK = True\n"
    )

    # when
    run = chaos(
        tmp_path / "run", "--seed", "1", "--runs", "1", "--pipeline", "db_lock", "--no-faults",
        "--burst", "--threads", "6", "--web-workers", "4", "--duration", "4",
        "--settings", "chaos_unsafe_settings", pythonpath=tmp_path,
    )  # fmt: skip

    # then: the run fails, the checker names the broken limit and prints how to reproduce it
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    assert "per_user_limit" in run.stdout
    assert "reproduce: make chaos SEED=1 RUNS=1" in run.stdout
    report = json.loads((tmp_path / "run" / "seed-1.json").read_text())
    broken = [d for d in report["deals"].values() if not d["checks"]["per_user_limit"]]
    assert broken and all(d["max_units_per_user"] > d["per_user_limit"] for d in broken)
