"""deal-overload (docs/scenarios/deal-overload.md): the deal traffic spike taken to its end, room
off vs on.

One redis_async stack (gunicorn + the Celery writer) serves every phase, in one run:

1. **Capacity**: closed model, 200 VUs without think time, one purchase each by a fresh shopper
   (no retries) on a deal that never sells out; C = mean accepted purchases/s over the rounds.
2. **Overload**, rounds in alternating order (off on, on off): an open model at
   A = OVERLOAD_FACTOR x C shoppers/s for the arrival window, on a fresh deal of the same stock
   per run. Room off: every arrival POSTs /orders once. Room on (rate R = ROOM_RATE_SHARE x C):
   every arrival joins the line, polls after the server's `poll_after_s`, buys when admitted.
   The stock is what the room admits in the window plus STOCK_EXTRA_S (the line is long by
   then), so admissions run for at least two full 10 s windows, the deal sells out well before
   the tail ends, and the waiters still in line must be told.
3. **The room's own paths**: joins/s sustained (closed model, fresh shoppers, on a room that
   has not started: nobody is admitted, every join keeps its place) and ticket polls at a fixed
   POLL_RATE/s (open model) of the shoppers who joined.

Admissions per second come from the room's own counters (the "q:<sec>" fields of the deal's
rate hashes, `loadtest_prepare room`). Every purchase deal ends with the invariant check.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import report, silk_capture
from .stack import Stack, cpu_snapshot, log, prepare, run_k6, tree_cpu

if TYPE_CHECKING:
    from .run import Lab
    from .scenarios import Scenario

OVERLOAD_FACTOR = 3  # the target's "at least 3x the measured purchase capacity"
# The room's rate as a share of C: the goodput target (>= 90 % of C) caps how low it can go;
# every point above leaves less of the two cores for the joins and polls of the line.
ROOM_RATE_SHARE = 0.9
STOCK_EXTRA_S = 10  # stock = R x (window + this): the room sells out this long after arrivals end
# After the arrivals: the line drains, admissions of shoppers who gave up lapse and go to the
# next in line, the sell-out reaches the waiters. A run ends sooner once every shopper is done.
TAIL_S = 40
REQUEST_TIMEOUT_S = 20  # a shopper's patience: no answer by then is an error, not a design
CAPACITY_VUS = 200
JOIN_SECONDS = 10
POLL_RATE = 750  # the target's "status polls p99 under 20 ms at 750 polls/s"
POLL_SECONDS = 10
# "Time to buy": a flash sale's, not the model's 120 s default (overload_report._method says why).
ROOM_ADMISSION_S = 30
# Between runs: the web tier still works through requests whose shoppers gave up (a sync worker
# can't tell; they wait in the listen backlog), so the next run waits until it is idle: nothing
# in the listen backlog and the web and worker trees quiet.
SETTLE_IDLE_CPU = 0.05  # CPU seconds of the web and worker trees per 0.5 s that count as idle
SETTLE_MAX_S = 90
# The gate server's latency monitor (Valkey LATENCY): events above this many ms are kept, so a
# run that stalls can be told apart from one that is merely slow.
LATENCY_THRESHOLD_MS = 100


def run_overload(lab: Lab, sc: Scenario) -> dict:
    started = time.monotonic()
    duration = lab.args.duration
    spec = sc.stacks["redis_async"]
    stack = Stack(f"{sc.name}-redis_async", {**lab.env, **spec.env}, worker=spec.worker)
    # The floor's capacity beside the app's (apps/lab/floor), measured in the same rounds.
    floor_spec = sc.stacks["floor"]
    floor = Stack(f"{sc.name}-floor", {**lab.env, **floor_spec.env}, worker=floor_spec.worker)
    users = lab.user_count
    names = ["warmup", "floor-warmup"] + [
        f"{kind}-r{r + 1}" for r in range(lab.args.rounds) for kind in ("capacity", "floor")
    ]
    deals = lab.deals([{"name": n, "stock": 500_000} for n in names])
    runs: list[dict] = []
    rooms: dict[str, dict] = {}
    lab.redis.config_set("appendfsync", spec.gate_fsync)
    lab.redis.config_set("latency-monitor-threshold", LATENCY_THRESHOLD_MS)
    try:
        for each in (stack, floor):
            each.start(lab.dir / "logs")
        for each in (stack, floor):
            each.wait_ready()
        warm = {"MODE": "capacity", "VUS": "20"}
        _k6(lab, sc, stack, "warmup", warm, 3, deals["warmup"])
        _k6(lab, sc, floor, "floor-warmup", warm, 3, deals["floor-warmup"])
        for r in range(lab.args.rounds):
            env = {"MODE": "capacity", "VUS": str(CAPACITY_VUS)}
            pair = [(stack, "capacity"), (floor, "floor")]
            for each, kind in pair if r % 2 == 0 else reversed(pair):
                run = _k6(lab, sc, each, f"{kind}-r{r + 1}", env, duration,
                          deals[f"{kind}-r{r + 1}"])  # fmt: skip
                run["model"] = "floor capacity" if kind == "floor" else "capacity"
                runs.append(run)
        capacity = statistics.mean(r["accepted_rps"] for r in runs if r["model"] == "capacity")
        arrival = math.ceil(OVERLOAD_FACTOR * capacity)
        room_rate = max(1, round(ROOM_RATE_SHARE * capacity))
        window = max(5, min(duration, users // arrival))  # a fresh shopper per arrival
        stock = max(1, room_rate * (window + STOCK_EXTRA_S))
        plan = {
            "capacity": round(capacity, 1),
            "arrival_rate": arrival,
            "room_rate": room_rate,
            "window_s": window,
            "tail_s": TAIL_S,
            "stock": stock,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "room_admission_s": ROOM_ADMISSION_S,
        }
        log(f"{sc.name}: plan {plan}")
        room = {
            "room_enabled": True,
            "room_rate": room_rate,
            "room_admission_seconds": ROOM_ADMISSION_S,
            "room_overbooking": "1.00",
            "room_prequeue_seconds": 0,
        }
        spec_list = []
        for r in range(lab.args.rounds):
            spec_list.append({"name": f"room off-r{r + 1}", "stock": stock})
            spec_list.append({"name": f"room on-r{r + 1}", "stock": stock, "room": room})
        # The room's own paths: a line that has not started (joins keep their place, nobody
        # is admitted), open to joins for the whole hour before its start.
        queue_room = {**room, "room_prequeue_seconds": 3600}
        # What Silk sees (loadtests/silk_capture.py): a purchase with the room off, a join of
        # a line that has not started with it on.
        spec_list.append({"name": "room off-probe", "stock": 500_000})
        spec_list.append({"name": "room on-probe", "stock": 1_000, "starts_in": 3000,
                          "room": queue_room})  # fmt: skip
        for r in range(lab.args.rounds):
            spec_list.append({"name": f"queue-r{r + 1}", "stock": 1_000, "starts_in": 3000,
                              "room": queue_room})  # fmt: skip
        deals |= lab.deals(spec_list)
        silk = silk_capture.capture(lab, sc, deals, [])  # the measured stack idles meanwhile
        for r in range(lab.args.rounds):
            order = [v for v in sc.variants if v.purchase]
            for v in order if r % 2 == 0 else reversed(order):
                label = f"{v.name}-r{r + 1}".replace(" ", "_")
                env = {
                    **v.k6_env,
                    "RATE": str(arrival),
                    "TAIL": str(TAIL_S),
                    "REQUEST_TIMEOUT": f"{REQUEST_TIMEOUT_S}s",
                }
                deal = deals[f"{v.name}-r{r + 1}"]
                since = int(time.time())
                run = _k6(lab, sc, stack, label, env, window, deal, variant=v.name)
                run["rate"] = arrival
                runs.append(run)
                if v.k6_env.get("MODE") == "room":
                    rooms[run["label"]] = prepare(
                        lab.env, "room", "--deal", deal["deal_id"], "--since", str(since),
                        "--until", str(int(time.time())),
                    )  # fmt: skip
        for r in range(lab.args.rounds):
            deal = deals[f"queue-r{r + 1}"]
            env = {"MODE": "join", "VUS": str(CAPACITY_VUS)}
            joins = _k6(lab, sc, stack, f"join-r{r + 1}", env, JOIN_SECONDS, deal, purchase=False)
            runs.append(joins)
            held = joins["statuses"].get("201", 0) + joins["statuses"].get("200", 0)
            env = {"MODE": "poll", "RATE": str(POLL_RATE), "JOINED": str(max(1, held))}
            poll = _k6(lab, sc, stack, f"poll-r{r + 1}", env, POLL_SECONDS, deal, purchase=False)
            poll["rate"] = POLL_RATE
            runs.append(poll)
    finally:
        stack.stop()
        floor.stop()
    checks = _check(lab, sc, runs)
    result = {
        "scenario": sc.name,
        "stamp": lab.stamp,
        "duration_s": duration,
        "rounds": lab.args.rounds,
        "vus": CAPACITY_VUS,
        "open_rate": plan["arrival_rate"],
        "plan": plan,
        "queries": {},
        "runs": runs,
        "rooms": rooms,
        "silk": silk,
        "checks": checks,
        "prepared": lab.prepared,
        "wall_s": round(time.monotonic() - started, 1),
    }
    (lab.dir / f"{sc.name}.json").write_text(json.dumps(result, indent=1))
    return result


def _k6(lab: Lab, sc: Scenario, stack: Stack, name: str, env: dict[str, str], seconds: int,
        deal: dict, *, variant: str | None = None, purchase: bool = True) -> dict:  # fmt: skip
    label = f"{sc.name}--{name}"
    summary_file = lab.dir / "k6" / f"{label}.json"
    summary_file.parent.mkdir(exist_ok=True)
    full_env = {
        "BASE_URL": stack.base_url,
        "USERS_FILE": str(lab.users_file),
        "MODEL": "closed",
        "DURATION": f"{seconds}s",
        "SUMMARY_FILE": str(summary_file),
        "RUN_ID": f"{lab.stamp}-{label}",
        "DEAL_ID": deal["deal_id"],
        "PRODUCT_ID": deal["product_id"],
        **env,
    }
    overflows = _listen_overflows()
    lab.redis.execute_command("LATENCY", "RESET")
    rewrites = lab.redis.info("persistence")["aof_rewrites"]
    before = cpu_snapshot(stack, lab.servers)
    t0 = time.monotonic()
    started_at = time.time()
    code, k6_cpu = run_k6(sc.script, full_env, lab.dir / "k6.log")
    wall = time.monotonic() - t0
    drain = lab._drain_time(deal) if purchase else None
    after = cpu_snapshot(stack, lab.servers)
    stalls = {
        event: {"latest_ms": latest, "max_ms": worst}
        for event, _, latest, worst, *_ in lab.redis.execute_command("LATENCY", "LATEST")
    }
    rewrites = lab.redis.info("persistence")["aof_rewrites"] - rewrites
    overflows = _listen_overflows() - overflows
    settle = _settle(stack)
    if code not in (0, 99):
        raise RuntimeError(f"k6 failed (exit {code}) for {label}; see {lab.dir}/k6.log")
    dead = {
        p.args[0]: p.returncode for p in (stack.web, stack.celery) if p and p.poll() is not None
    }
    if dead:  # e.g. a signal from outside: every later number would be connection refused
        raise RuntimeError(f"the stack's processes exited during {label}: {dead}")
    summary = json.loads(summary_file.read_text())
    metrics = report.k6_metrics(summary, seconds)
    result = {
        "label": label,
        "variant": variant or name.rsplit("-r", 1)[0],
        "stack": stack.name,
        "model": env["MODE"] if name != "warmup" else "warmup",
        "round": int(name.rsplit("-r", 1)[1]) if "-r" in name else 0,
        "purchase": purchase and name != "warmup",
        "reference": False,
        "deal": deal,
        "rate": None,
        "seconds": seconds,
        "started_at": started_at,
        "wall_s": round(wall, 2),
        "cpu_s": {k: after[k] - before[k] for k in before} | {"k6": k6_cpu},
        "drain_s": drain,
        "settle_s": settle,
        "gate_stalls": stalls,  # Valkey LATENCY LATEST: events over LATENCY_THRESHOLD_MS
        "aof_rewrites": rewrites,
        "listen_overflows": overflows,  # the machine's, during the run: dropped handshakes
        **metrics,
        "overload": overload_metrics(summary),
    }
    log(
        f"{label}: {metrics['requests']} req, {metrics['rps']:.0f} req/s, p99 "
        f"{metrics['p99']:.1f} ms, accepted {metrics['accepted']}, unexpected "
        f"{metrics['unexpected']}; idle {settle:.1f} s later"
    )
    return result


def _settle(stack: Stack) -> float:
    """Seconds until the web tier and the writer are idle: two half-seconds in a row with an
    empty listen backlog and quiet process trees (a worker blocked on a stalled server uses no
    CPU, so CPU alone would call a stalled stack idle)."""
    t0 = time.monotonic()
    pids = [p.pid for p in (stack.web, stack.celery) if p is not None]
    quiet = 0
    last = sum(tree_cpu(pid) for pid in pids)
    while quiet < 2 and time.monotonic() - t0 < SETTLE_MAX_S:
        time.sleep(0.5)
        now = sum(tree_cpu(pid) for pid in pids)
        idle = now - last < SETTLE_IDLE_CPU and _accept_backlog(stack.port) == 0
        quiet = quiet + 1 if idle else 0
        last = now
    return round(time.monotonic() - t0, 1)


def _listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (TcpExt
    ListenOverflows, machine-wide: other servers' overflows count too); 0 where unreadable.
    Each drop makes the client retry its handshake 1, 3, 7, 15 s later."""
    try:
        header, values = (
            line.split()
            for line in Path("/proc/net/netstat").read_text().splitlines()
            if line.startswith("TcpExt:")
        )
    except (OSError, ValueError):
        return 0
    return int(dict(zip(header, values, strict=True)).get("ListenOverflows", 0))


def _accept_backlog(port: int) -> int:
    """Connections waiting in the listen socket's accept queue (Linux: /proc/net/tcp's rx_queue
    of the LISTEN row); 0 where that can't be read."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    return 0


def overload_metrics(summary: dict) -> dict:
    """deal-overload.js's own figures from a k6 summary: counters as counts, trends as their
    summary statistics (epoch-millisecond trends too: their min and max are instants)."""
    m = summary["metrics"]
    out: dict = {}
    counters = ("arrivals", "admitted_seen", "sold_out_waiters", "sold_out_at_join",
                "still_waiting_at_end", "poll_failures", "purchase_unanswered")  # fmt: skip
    for name in counters:
        out[name] = int(m.get(name, {}).get("values", {}).get("count", 0))
    trends = ("arrival_lag_ms", "join_duration", "poll_duration", "purchase_duration",
              "wait_to_admitted", "first_arrival_at", "accepted_sent_at", "accepted_answered_at",
              "sold_out_seen_at", "sold_out_deadline", "sold_out_poll_interval_s")  # fmt: skip
    for name in trends:
        values = m.get(name, {}).get("values")
        out[name] = dict(values) if values and values.get("max") is not None else None
    out["dropped_iterations"] = int(m.get("dropped_iterations", {}).get("values", {})
                                    .get("count", 0))  # fmt: skip
    return out


def _check(lab: Lab, sc: Scenario, runs: list[dict]) -> dict:
    todo = {
        r["label"]: {
            "deal": r["deal"],
            "accepted": r["accepted"],
            "async": True,
            "unanswered": r["overload"]["purchase_unanswered"],
        }
        for r in runs
        if r["purchase"]
    }
    file = lab.dir / f"check-{sc.name}.json"
    file.write_text(json.dumps(todo))
    return prepare(lab.env, "check", "--runs", str(file))
