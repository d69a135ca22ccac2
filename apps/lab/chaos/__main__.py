"""`make chaos SEED=1 RUNS=200`: seeds SEED..SEED+RUNS-1, one line each; exit 1 if any failed.

    python -m apps.lab.chaos --seed 1 --runs 200 [--pipeline redis_async] [--out DIR]

PostgreSQL is the embedded one in .devdata/chaos/ unless DATABASE_URL is set (the pytest run
passes its test database); the gate and the broker are servers of the run's own, in --out.
"""

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts import devstack

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / ".devdata" / "chaos"

# Short enough that orphans are swept and stale entries re-claimed within a seed's settle.
TIMINGS = {"ORDER_PENDING_SWEEP_AGE_MS": "3000", "ORDER_STREAM_RECLAIM_IDLE_MS": "2000"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser("chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seeds", default="", help="a comma-separated list instead (3,8,16)")
    parser.add_argument("--pipeline", default=os.environ.get("ORDER_PIPELINE", "redis_async"))
    parser.add_argument("--out", type=Path, default=DATA / "run")
    parser.add_argument(
        "--settings",
        default="flashdeals.settings.local",
        help="Django settings of every process (a negative control passes its own)",
    )
    parser.add_argument("--no-faults", action="store_true", help="traffic and operator only")
    parser.add_argument(
        "--burst", action="store_true", help="every shopper thread buys for one shopper at once"
    )
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--duration", type=float, default=None, help="seconds of traffic")
    parser.add_argument("--fail-fast", action="store_true")
    return parser.parse_args(argv)


def _log_to(path: Path) -> None:
    """The driver's own log lines (a rebuild, a failed beat tick) go to a file, so stdout keeps
    one line per seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a")  # noqa: SIM115 - open for the life of the process
    for handler in logging.root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)


def _span(seeds: Sequence[int]) -> str:
    if isinstance(seeds, range):
        return f"{seeds.start}..{seeds.stop - 1}"
    return ",".join(map(str, seeds))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t0 = time.monotonic()
    db_url, started = devstack.database_url_or_embedded(DATA)
    shutil.rmtree(args.out, ignore_errors=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE=args.settings, DATABASE_URL=db_url, SILK_ENABLED="false",
        LOG_LEVEL="ERROR", GUNICORN_LOGLEVEL="warning", ORDER_PIPELINE=args.pipeline,
        LOG_REQUESTS="false", FLASHDEALS_ENV_FILE="",  # defined here, not by a .env
        PYTHONUNBUFFERED="1", **TIMINGS,
    )  # fmt: skip
    # The gate's and the broker's ports go into the environment before Django reads it.
    from apps.core.tests.redis_server import RedisServer  # no Django needed

    gate, broker = RedisServer(args.out / "gate"), RedisServer(args.out / "broker")
    os.environ.update(REDIS_URL=gate.url, CELERY_BROKER_URL=broker.url)
    import django  # settings are read now, with the URLs above

    django.setup()
    _log_to(args.out / "logs" / "driver.log")
    # After setup: these import models and the Celery app.
    from django.core.management import call_command

    from .runner import run_seed, shoppers
    from .stack import ChaosStack  # imports the Celery app

    stack = ChaosStack(args.out, gate=gate, broker=broker, web_workers=args.web_workers)

    failed: list[int] = []
    seeds: Sequence[int] = [int(s) for s in args.seeds.split(",") if s] or range(
        args.seed, args.seed + args.runs
    )
    try:
        call_command("migrate", verbosity=0)
        stack.start_servers()
        stack.start(dict(os.environ))
        users = shoppers(16)
        up = time.monotonic() - t0
        print(
            f"chaos: seeds {_span(seeds)}, pipeline {args.pipeline}, "
            f"stack up in {up:.1f}s; reports in {args.out}",
            flush=True,
        )
        for seed in seeds:
            result = run_seed(
                stack, seed, users, out=args.out, faults=not args.no_faults, burst=args.burst,
                threads=args.threads, duration=args.duration,
            )  # fmt: skip
            print(result.line, flush=True)
            if not result.ok:
                failed.append(seed)
                print(f"       reproduce: make chaos SEED={seed} RUNS=1   "
                      f"(report: {args.out / f'seed-{seed}.json'})", flush=True)  # fmt: skip
                if args.fail_fast:
                    break
    finally:
        stack.stop()
        if started:
            devstack.stop_servers(started)  # the servers this run started, and only those
    minutes = (time.monotonic() - t0) / 60
    print(f"chaos: {len(seeds)} seeds, {len(failed)} failed {failed or ''} in {minutes:.1f} min",
          flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
