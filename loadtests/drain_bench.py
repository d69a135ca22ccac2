"""Drain benchmark (docs/scaling-drain.md): order rows per second one Celery worker writes from a
deal's backlog, and reservations per second one Valkey shard takes.

    make drain-bench [DRAIN_ARGS="--reservations 100000 --repeat 2"]
    .venv/bin/python -m loadtests.drain_bench --reservations 100000

On the lab's own servers (loadtests/stack.py: .devdata/loadtest/, started if needed), per
repetition:

1. **Deal**: a fresh one (stock N, per-user limit 1) created, published and loaded into the gate
   by `loadtest_prepare deals`; the N shoppers come from `loadtest_prepare users` (the limit
   of 1 makes every reservation another shopper's).
2. **Fill, no worker running**: N reservations through the real gate function
   (`apps.deals.gate.deal_reserve`, mode async: reserve.lua and WAITAOF in one round trip,
   with an Idempotency-Key and its claim, as a purchase sends them), in stages of P processes x
   T threads (`--clients 1x1,1x8,2x8`): each stage's rate is reservations/s on one Valkey shard
   from that many clients. The drain kicks reserve.lua asks for are counted, not sent.
3. **Drain**: the Procfile's worker command as the lab starts it (loadtests.stack.Stack: same
   concurrency, log level warning), then one `drain_deal_stream_task`, the kick the first
   purchase would have sent. Timed from that kick until the backlog is empty (the writer drops
   a reservation's Redis copies only after its order committed) and the deal has N orders;
   CPU seconds of the worker's process tree, PostgreSQL's (postmaster and backends) and
   Valkey's over the same window.
4. **Invariants**: the lab's checker (`apps.lab.checks.deal_invariants`) on the deal, with
   N purchases accepted.

The writer's settings come from the environment as everywhere (`ORDER_STREAM_BATCH=2000 make
drain-bench` compares a batch size). Results: loadtests/results/<stamp>-drain/drain.json, and a
markdown table on stdout (docs/scaling-drain.md keeps the committed runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import psutil

from .stack import RESULTS, Servers, Stack, base_env, log, manage, prepare, start_servers, tree_cpu

PROGRESS_EVERY = 200  # reservations a fill thread makes between updates of the shared counter


def _clients(spec: str) -> list[tuple[int, int, int | None]]:
    """'1x1:5000,2x8' -> [(1, 1, 5000), (2, 8, None)]: processes x threads per fill stage, and
    how many reservations it makes (the last stage without a count makes the rest)."""
    stages: list[tuple[int, int, int | None]] = []
    for part in spec.split(","):
        clients, _, count = part.strip().partition(":")
        procs, _, threads = clients.partition("x")
        stages.append((int(procs), int(threads or 1), int(count) if count else None))
    return stages


# --- fill: reservations through the gate, from P processes x T threads -------------------------


def _fill_process(
    deal: dict,
    user_ids: list[str],
    threads: int,
    start: mp.synchronize.Barrier,
    made: Synchronized,
    refused: Synchronized,
    ended: Synchronized,
) -> None:
    """One client process (spawned: its own Django, its own Redis connections)."""
    import django

    django.setup()
    # Django's modules only after setup: this module is imported before any settings exist.
    from django.utils import timezone

    from apps.deals import gate
    from apps.deals.gate import Outcome, Reservation
    from apps.orders.services import LineInput, OrderInput

    deal_id, product_id = uuid.UUID(deal["deal_id"]), uuid.UUID(deal["product_id"])
    line = LineInput(product_id=product_id, quantity=1, deal_id=deal_id)

    def reserve_all(users: list[str]) -> None:
        done = bad = 0
        for user_id in users:
            data = OrderInput(items=(line,), idempotency_key=f"drain-bench-{uuid.uuid4()}")
            reservation = Reservation.new(
                user_id=uuid.UUID(user_id), quantity=1, created_at=timezone.now(),
                request_hash=data.request_hash, idempotency_key=data.idempotency_key,
                shipping=data.shipping,
            )  # fmt: skip
            result = gate.deal_reserve(
                deal_id=deal_id, product_id=product_id, reservation=reservation, mode="async",
                claim=True,
            )  # fmt: skip
            done += 1
            bad += result.outcome != Outcome.OK
            if done == PROGRESS_EVERY:
                with made.get_lock():
                    made.value += done
                with refused.get_lock():
                    refused.value += bad
                done = bad = 0
        with made.get_lock():
            made.value += done
        with refused.get_lock():
            refused.value += bad

    gate.scripts_preload()
    workers = [
        threading.Thread(target=reserve_all, args=(user_ids[i::threads],)) for i in range(threads)
    ]
    start.wait()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with ended.get_lock():
        ended.value = max(ended.value, time.monotonic())


def fill(
    deal: dict,
    user_ids: list[str],
    stages: list[tuple[int, int, int | None]],
    redis_pid: int | None,
) -> list[dict]:
    """Gives each stage its count of shoppers (the last one the rest); one result per stage."""
    ctx = mp.get_context("spawn")  # fresh interpreters: no Redis or database connection shared
    results, taken = [], 0
    for n, (procs, threads, count) in enumerate(stages):
        last = n == len(stages) - 1
        users = user_ids[taken : None if last or count is None else taken + count]
        taken += len(users)
        made, refused = ctx.Value("q", 0), ctx.Value("q", 0)
        ended = ctx.Value("d", 0.0)
        start = ctx.Barrier(procs + 1)
        children = [
            ctx.Process(
                target=_fill_process,
                args=(deal, users[p::procs], threads, start, made, refused, ended),
            )
            for p in range(procs)
        ]
        for child in children:
            child.start()
        start.wait(timeout=120)  # every client has Django up and the scripts loaded
        t0, valkey0 = time.monotonic(), tree_cpu(redis_pid)
        last_print = t0
        while any(child.is_alive() for child in children):
            time.sleep(0.1)
            if time.monotonic() - last_print >= 1:
                last_print = time.monotonic()
                rate = made.value / (last_print - t0)
                log(f"fill {procs}x{threads}: {made.value:,}/{len(users):,} ({rate:,.0f}/s)")
        valkey1 = tree_cpu(redis_pid)
        if any(child.exitcode for child in children):
            raise RuntimeError(f"a fill process of stage {procs}x{threads} failed")
        if refused.value:
            raise RuntimeError(f"{refused.value} reservations were refused: the deal is wrong")
        seconds = ended.value - t0
        stage = {
            "clients": f"{procs}x{threads}",
            "processes": procs,
            "threads": threads,
            "reservations": made.value,
            "seconds": round(seconds, 2),
            "per_s": round(made.value / seconds),
            "valkey_cpu_s": round(valkey1 - valkey0, 2),
        }
        log(f"fill {stage['clients']}: {made.value:,} in {seconds:.2f}s = {stage['per_s']:,}/s, "
            f"Valkey CPU {stage['valkey_cpu_s']}s")  # fmt: skip
        results.append(stage)
    return results


# --- drain: one worker, timed from the kick to the last row -------------------------------------


def drain(deal: dict, expected: int, env: dict[str, str], servers: Servers, log_dir: Path):
    # Django's modules are imported where used: main() sets Django up after the servers start.
    from celery import current_app

    from apps.deals import gate
    from apps.orders.models import Order
    from apps.orders.tasks import drain_deal_stream_task

    deal_id = deal["deal_id"]
    stack = Stack("drain-bench", env, worker=True, serve=False)
    try:
        stack.start(log_dir)
        assert stack.celery is not None
        name = f"lt-{stack.name}@{socket.gethostname()}"
        deadline = time.monotonic() + 60
        while not current_app.control.ping(destination=[name], timeout=0.5):
            if stack.celery.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not answer a ping; see {log_dir}")
        log(f"worker {name} is up (pid {stack.celery.pid}); kicking the drain")
        cpu0 = _cpu(stack, servers)
        t0 = time.monotonic()
        drain_deal_stream_task.delay(deal_id)
        last_print, last_count = t0, 0
        while (backlog := gate.deal_backlog(deal_id)) > 0:
            time.sleep(0.02)
            now = time.monotonic()
            if now - last_print >= 1:
                count = Order.objects.filter(deal_id=deal_id).count()
                log(f"drain: {count:,}/{expected:,} orders, backlog {backlog:,}, "
                    f"{(count - last_count) / (now - last_print):,.0f} rows/s")  # fmt: skip
                last_print, last_count = now, count
            if now - t0 > 600:
                raise RuntimeError("the backlog did not drain within 10 minutes")
        seconds = time.monotonic() - t0
        cpu1 = _cpu(stack, servers)
    finally:
        stack.stop()
    orders = Order.objects.filter(deal_id=deal_id).count()
    cpu = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2) for k in {**cpu0, **cpu1}}
    return {
        "orders": orders,
        "seconds": round(seconds, 2),
        "rows_per_s": round(orders / seconds),
        "cpu_s": cpu,
        "us_per_row": {k: round(v / max(orders, 1) * 1e6, 1) for k, v in cpu.items()},
    }


def _cpu(stack: Stack, servers: Servers) -> dict[str, float]:
    return {
        "worker": tree_cpu(stack.celery.pid if stack.celery else None),
        "postgres": tree_cpu(servers.postgres_pid),
        "valkey": tree_cpu(servers.redis_pid),
        **{f"postgres {kind}": cpu for kind, cpu in _postgres_split(servers.postgres_pid).items()},
    }


def _postgres_split(pid: int | None) -> dict[str, float]:
    """PostgreSQL's CPU seconds by process kind: client backends, the WAL writer, the
    checkpointer, ..., and "exited" (processes the postmaster reaped: autovacuum workers)."""
    if not pid:
        return {}
    split: dict[str, float] = defaultdict(float)
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        t = root.cpu_times()
        split["exited"] += t.children_user + t.children_system
        for child in root.children():
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline()).strip()
                kind = "backends" if "127.0.0.1(" in title else title.partition(": ")[2]
                t = child.cpu_times()
                split[kind or "other"] += t.user + t.system
    return dict(split)


# --- the run ------------------------------------------------------------------------------------


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def writer_settings() -> dict:
    from django.conf import settings

    return {
        "ORDER_STREAM_BATCH": settings.ORDER_STREAM_BATCH,
        "ORDER_STREAM_LINGER_MS": settings.ORDER_STREAM_LINGER_MS,
    }


def repetition(n: int, args, env, servers: Servers, user_ids: list[str], out_dir: Path) -> dict:
    from apps.lab.checks import deal_invariants

    spec = [{"name": f"drain-bench {out_dir.name} r{n}", "stock": args.reservations,
             "per_user_limit": 1}]  # fmt: skip
    (spec_file := out_dir / f"deal-r{n}.json").write_text(json.dumps(spec))
    prepare(env, "deals", "--spec", str(spec_file), "--out", str(out_dir / f"deal-r{n}.out.json"))
    deal = next(iter(json.loads((out_dir / f"deal-r{n}.out.json").read_text()).values()))
    load = os.getloadavg()[0]
    log(f"--- repetition {n}: deal {deal['deal_id']}, load average {load:.2f}")
    stages = fill(deal, user_ids, _clients(args.clients), servers.redis_pid)
    drained = drain(deal, args.reservations, env, servers, out_dir / "logs")
    log(f"drain: {drained['orders']:,} orders in {drained['seconds']}s = "
        f"{drained['rows_per_s']:,} rows/s; CPU s {drained['cpu_s']}, "
        f"us/row {drained['us_per_row']}")  # fmt: skip
    check = deal_invariants(
        deal_id=uuid.UUID(deal["deal_id"]), total_units=deal["total_units"],
        accepted=args.reservations, timeout=10,
    )  # fmt: skip
    log(f"invariants: {'ok' if check['ok'] else 'BROKEN'} {check['checks']}")
    if not args.keep_orders:
        forget(deal["deal_id"])
    return {"repetition": n, "deal": deal, "load_avg_1m": round(load, 2), "fill": stages,
            "drain": drained, "invariants_ok": check["ok"], "checks": check}  # fmt: skip


def forget(deal_id: str) -> None:
    """Deletes the repetition's orders and drops its deal from the gate once checked, so every
    repetition inserts into tables of the same size: left in place, each run's 100,000 orders
    grew the indexes past shared_buffers and PostgreSQL's CPU per row with them."""
    from django.db import connection, transaction

    from apps.deals import gate

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderitem WHERE deal_id = %s", [deal_id])
        cursor.execute("DELETE FROM orders_order WHERE deal_id = %s", [deal_id])
        cursor.execute("UPDATE deals_deal SET ended_at = now() WHERE id = %s", [deal_id])
    gate.deal_state_unload(deal_id)


def table(result: dict) -> str:
    runs = result["runs"]
    lines = [
        "| rep | fill (clients: reservations/s) | drain s | rows/s | worker CPU s (us/row) "
        "| PostgreSQL CPU s (us/row) | Valkey CPU s | invariants |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        d = r["drain"]
        fills = ", ".join(f"{s['clients']}: {s['per_s']:,}" for s in r["fill"])
        lines.append(
            f"| {r['repetition']} | {fills} | {d['seconds']} | {d['rows_per_s']:,} "
            f"| {d['cpu_s']['worker']} ({d['us_per_row']['worker']}) "
            f"| {d['cpu_s']['postgres']} ({d['us_per_row']['postgres']}) "
            f"| {d['cpu_s']['valkey']} | {'ok' if r['invariants_ok'] else 'BROKEN'} |"
        )
    rates = [r["drain"]["rows_per_s"] for r in runs]
    lines.append("")
    lines.append(f"rows/s: median {statistics.median(rates):,.0f}, min {min(rates):,}, "
                 f"max {max(rates):,} over {len(rates)} repetitions")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        "loadtests.drain_bench", description=__doc__, formatter_class=raw
    )
    parser.add_argument("--reservations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--clients", default="1x1:5000,1x8:10000,2x8:20000,4x8",
                        help="fill stages: processes x threads[:reservations], the last one "
                        "makes the rest (default %(default)s)")  # fmt: skip
    parser.add_argument("--keep-servers", action="store_true")
    parser.add_argument("--keep-orders", action="store_true",
                        help="leave each repetition's orders in the database")  # fmt: skip
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS / f"{stamp}-drain"
    out_dir.mkdir(parents=True, exist_ok=True)
    servers = start_servers()
    try:
        env = base_env(servers)
        os.environ.update(env)  # this process and the fill processes it spawns
        import django

        django.setup()
        manage(env, "migrate", "--noinput", "-v0")
        log(f"preparing {args.reservations:,} shoppers...")
        users_file = out_dir / "users.json"
        prepare(env, "users", "--count", str(args.reservations), "--out", str(users_file))
        user_ids = [u["id"] for u in json.loads(users_file.read_text())]
        users_file.unlink()  # tokens: not needed here, and not worth keeping
        result = {
            "command": " ".join(["python -m loadtests.drain_bench", *(argv or sys.argv[1:])]),
            "stamp": stamp,
            "machine": machine(),
            "worker_command": " ".join(Stack("drain-bench", env, worker=True).worker_command()),
            "writer": writer_settings(),
            "runs": [
                repetition(n + 1, args, env, servers, user_ids, out_dir) for n in range(args.repeat)
            ],
        }
    finally:
        if not args.keep_servers:
            servers.stop()
    (out_dir / "drain.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\n{result['command']}  ({stamp}, {result['machine']}, writer {result['writer']})")
    print(f"worker: {result['worker_command']}\n")
    print(table(result))
    return 0 if all(r["invariants_ok"] for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
