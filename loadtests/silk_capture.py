"""Silk as the lab's microscope: what Silk sees in a few requests of each variant.

Outside the measured window (the measured stacks run with SILK_ENABLED=false, stack.base_env),
each of a scenario's stacks is started once more with the same settings plus Silk
(`<scenario>-<stack>-silk`). Each variant's request, the one k6 sends (and `loadtest_prepare
probe` counts), goes to its Silk stack: one warm-up, REQUESTS timed ones, one with
`X-Silk-Profile: 1` (Silk's cProfile for that request only, flashdeals/settings/base.py), and for
purchase scenarios a burst of BURST concurrent purchases (a lock wait needs company). Then
`loadtest_prepare silk` reads Silk's own records of them (silk.models.Request and its SQLQuery
rows: queries, duplicated shapes, SQL time against total time, the slowest query, the profile's
top functions). For SCREENSHOTS, headless Chromium (Debian's, through Playwright: the browser
tests' setup) logs in to /silk/ and photographs the SQL page of the before and after request.

Adds a few seconds per variant; a failure here is logged and leaves the doc without the section,
it never costs the scenario's measurements.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import statistics
import time
import traceback
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts import debian_tools

from .stack import RESULTS as RESULTS_DIR
from .stack import ROOT, Stack, base_env, checkout, log, manage, prepare, start_servers

REQUESTS = 3  # timed requests per variant (the table shows the median)
BURST = 12  # concurrent purchases per purchase variant
# Scenario -> which request of a variant its screenshots show: the median timed one, or the
# slowest of the burst (where the lock wait is).
SCREENSHOTS = {"order-list-slow": "median", "deal-lock-contention": "burst"}
STAFF_EMAIL = "silk-reader@loadtest.flashdeals.local"  # loadtest_prepare.SILK_STAFF_EMAIL
# Without the background-networking flags Chromium waits on services a closed network lacks
# (the same flags as apps/deals/tests/test_browser.py).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
_migrated: set[str] = set()


def silk_env(env: dict[str, str]) -> dict[str, str]:
    """The variant's settings plus Silk (bodies recorded, profiling only on request, each profile
    also kept as a pstats file for its exact times)."""
    return {**env, "SILK_ENABLED": "true", "SILK_PYTHON_PROFILER": "false",
            "SILK_RECORD_BODIES": "true", "SILK_PROFILE_FILES": "true"}  # fmt: skip


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


# --- the requests k6 sends ----------------------------------------------------------------------


def variant_requests(sc, v, users: list[dict], listers: int, deals: dict, products: list[str],
                     count: int) -> list[dict]:  # fmt: skip
    """`count` requests of variant `v` as its k6 script sends them, each by another shopper:
    listers (the last `listers` users) read, purchases come from the shoppers just before them
    (none of k6's, none of the probe's) on the variant's probe deal."""
    lister = [u["token"] for u in users[-listers:]]
    buyers = [u["token"] for u in users[-listers - 1 - count : -listers - 1]]
    out = []
    for i in range(count):
        if v.reference:
            req = {"method": "GET", "path": "/health"}
        elif sc.name == "product-list-slow":
            # One page throughout (the probe's): the warm-up fills its cache entry, so the
            # cached variant's timed requests are hits, as nearly all of k6's are.
            req = {"method": "GET", "path": "/products?page=3&size=20"}
        elif v.k6_env.get("MODE") == "room":  # deal-overload's room: the line's first step
            deal = deals[f"{v.name}-probe"]
            req = {"method": "POST", "path": f"/products/deals/{deal['deal_id']}/queue",
                   "token": buyers[i]}  # fmt: skip
        elif v.k6_env.get("TARGET") == "products":  # web-server's cached list
            req = {"method": "GET", "path": "/products?page=1&size=20"}
        elif sc.name == "order-list-slow":
            req = {"method": "GET", "path": "/orders?page=1&size=20", "token": lister[i]}
        elif sc.name == "deal-traffic-spike":
            req = {"method": "GET", "path": "/orders?page=1&size=5", "token": lister[i]}
        elif sc.name == "auth-cpu-bottleneck":
            req = {"method": "GET", "path": "/auth/verify", "token": lister[i]}
        elif sc.name == "order-tps-limit":
            line = {"product_id": products[i % len(products)], "quantity": 1}
            req = {"method": "POST", "path": "/orders", "token": buyers[i],
                   "body": {"items": [line]}}  # fmt: skip
        else:
            deal = deals[f"{v.name}-probe"]
            line = {"product_id": deal["product_id"], "deal_id": deal["deal_id"], "quantity": 1}
            req = {"method": "POST", "path": "/orders", "token": buyers[i],
                   "body": {"items": [line]}, "idempotent": True}  # fmt: skip
        out.append(req)
    return out


def send(base_url: str, req: dict, headers: dict[str, str] | None = None) -> int:
    head = {"Content-Type": "application/json", **(headers or {})}
    if req.get("token"):
        head["Authorization"] = f"Bearer {req['token']}"
    if req.get("idempotent"):
        head["Idempotency-Key"] = f"silk-{uuid.uuid4()}"
    body = json.dumps(req["body"]).encode() if req.get("body") is not None else None
    request = urllib.request.Request(f"{base_url}{req['path']}", data=body, headers=head,
                                     method=req["method"])  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


# --- one scenario -------------------------------------------------------------------------------


def capture(lab, sc, deals: dict, products: list[str]) -> dict | None:
    """Silk's view of each variant of `sc` (see the module docstring); None if it failed."""
    started = time.monotonic()
    stacks: dict[str, Stack] = {}
    try:
        env = silk_env(lab.env)
        if "silk" not in _migrated:  # once per run, as `make run` does: Silk's tables and CSS
            manage(env, "migrate", "--noinput", "-v0")
            manage(env, "collectstatic", "--noinput", "-v0")
            _migrated.add("silk")
        burst = any(v.purchase for v in sc.variants)
        # One request at a time needs one worker (a quicker start); a burst gets the stack's own.
        one = {} if burst else {"GUNICORN_WORKERS": "1"}
        # The floor has no middleware, so no Silk: it has nothing of the app's to show.
        variants = [v for v in sc.variants if not v.floor]
        keys = list(dict.fromkeys(v.stack for v in variants))
        stacks = {k: Stack(f"{sc.name}-{k}-silk", {**env, **sc.stacks[k].env, **one},
                           root=checkout(sc.stacks[k].revision) if sc.stacks[k].revision
                           else ROOT)
                  for k in keys}  # fmt: skip
        for stack in stacks.values():
            stack.start(lab.dir / "logs")
        for stack in stacks.values():
            stack.wait_ready()
        users = json.loads(lab.users_file.read_text())
        booted = time.monotonic()
        windows: dict[str, dict] = {}
        for v in variants:
            base = stacks[v.stack].base_url
            count = 2 + REQUESTS + (BURST if burst and v.purchase else 0)
            reqs = variant_requests(sc, v, users, len(lab.tokens), deals, products, count)
            send(base, reqs[0])  # warm-up: connections, caches
            t0 = time.time()
            for req in reqs[1 : 1 + REQUESTS]:
                send(base, req)
            t1 = time.time()
            send(base, reqs[1 + REQUESTS], {"X-Silk-Profile": "1"})
            windows[v.name] = {"timed": [t0, t1], "profiled": [t1, time.time()]}
            if burst and v.purchase:
                t2 = time.time()
                with ThreadPoolExecutor(BURST) as pool:
                    list(pool.map(lambda r, b=base: send(b, r), reqs[2 + REQUESTS :]))
                windows[v.name]["burst"] = [t2, time.time()]
        file = lab.dir / f"silk-{sc.name}.json"
        file.write_text(json.dumps(windows))
        password = secrets.token_hex(16) if sc.name in SCREENSHOTS else ""
        # "--name=value": a value starting with "-" would read as an option otherwise
        args = ["silk", f"--windows={file}"] + ([f"--staff-password={password}"] if password
                                                 else [])  # fmt: skip
        found = prepare(env, *args)
        shots = {}
        if password:
            pick = SCREENSHOTS[sc.name]
            pages = {}
            for v in (v for v in sc.variants if v.name in (sc.before, sc.after)):
                f = found.get(v.name, {})
                request = f.get("burst", {}).get("slowest") if pick == "burst" else f.get("median")
                if request:
                    pages[v.name] = (stacks[v.stack].base_url, request["id"])
            try:
                shots = screenshots(pages, password, lab.dir / "silk")
            except Exception:  # noqa: BLE001 - the table stands without its pictures
                log(f"silk screenshots of {sc.name} FAILED:\n{traceback.format_exc()}")
        result = {"variants": found, "screenshots": shots, "pick": SCREENSHOTS.get(sc.name),
                  "requests": REQUESTS, "burst": BURST if burst else 0}  # fmt: skip
        result["seconds"] = round(time.monotonic() - started, 1)
        log(f"silk capture of {sc.name}: {result['seconds']} s ({booted - started:.1f} s to "
            f"start its stacks, {len(shots)} screenshots)")  # fmt: skip
        return result
    except Exception:  # noqa: BLE001 - the measurements matter more than the microscope
        log(f"silk capture of {sc.name} FAILED (the doc goes without it):\n"
            f"{traceback.format_exc()}")  # fmt: skip
        return None
    finally:
        for stack in stacks.values():
            stack.stop()


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or debian_tools.find("chromium")


def screenshots(pages: dict[str, tuple[str, str]], password: str, out: Path) -> dict[str, str]:
    """{variant: PNG path} of Silk's SQL page of each (base URL, Silk request id)."""
    chromium = chromium_path()
    if not chromium or not pages:
        log(f"silk: no screenshots without chromium: {debian_tools.install_command(['chromium'])}")
        return {}
    try:
        from playwright.sync_api import sync_playwright  # only the screenshots need playwright
    except ImportError:
        log("silk: no screenshots without playwright (requirements-lab.txt)")
        return {}

    out.mkdir(parents=True, exist_ok=True)
    shots = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for name, (base, request_id) in pages.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(20_000)
                page.goto(f"{base}/admin/login/?next=/silk/request/{request_id}/sql/")
                page.fill("#id_username", STAFF_EMAIL)
                page.fill("#id_password", password)
                page.click("input[type=submit]")
                page.wait_for_url(f"**/silk/request/{request_id}/sql/")
                path = out / f"{slug(name)}.png"
                page.screenshot(path=str(path), full_page=True)
                shots[name] = str(path)
                page.close()
        finally:
            browser.close()
    return shots


# --- the doc's section ----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def short_sql(sql: str, chars: int = 110) -> str:
    """A query for a table cell: its column list elided, cut to `chars`, as inline code."""
    sql = re.sub(r"^SELECT (DISTINCT )?.*? FROM ", r"SELECT \1… FROM ", sql, flags=re.S)
    sql = sql.replace("|", "\\|").replace("`", "'")
    if len(sql) > chars:  # its start and its end (where FOR UPDATE and LIMIT are)
        sql = f"{sql[: chars - 40]} … {sql[-40:]}"
    return f"`{sql}`"


def doc_section(sc, result: dict, docs: Path) -> list[str]:
    """Markdown for docs/scenarios/<name>.md: the Silk table, the burst table, the profiles' top
    functions and the screenshots (copied to docs/scenarios/images/)."""
    silk = result.get("silk")
    if not silk:
        return []
    found = silk["variants"]
    out = [
        "### What Silk sees in one request",
        "",
        f"Each variant's request sent to the same stack with `SILK_ENABLED=true`, outside the "
        f"measured window (`loadtests/silk_capture.py`): one warm-up, then {silk['requests']} "
        "timed requests; the row is the median one by total time, as Silk recorded it "
        "(`silk_request` and its `silk_sqlquery` rows). *Duplicates*: queries beyond the first "
        "of each shape (the same SQL with other literals; an N+1 shows as many). Silk lists the "
        "statements of Django's `SQLCompiler.execute_sql` (the ORM's SELECTs, UPDATEs and "
        "DELETEs): INSERTs, raw SQL and savepoints are in the test client's count "
        "(`CaptureQueriesContext`, the SQL/req column above) but not in Silk's. Silk's own "
        "bookkeeping is in its total time, so compare rows with each other, not with k6.",
        "",
        "| variant | request | queries (Silk / test client) | duplicates | SQL ms | total ms | "
        "slowest query |",
        "|---|---|---|---|---|---|---|",
    ]
    probed = result.get("queries") or {}
    for v in sc.variants:
        f = found.get(v.name, {})
        m = f.get("median")
        if not m:
            why = "the floor runs no middleware, so no Silk" if v.floor else "not recorded"
            out.append(f"| {v.name} | - | - | - | - | - | {why} |")
            continue
        slow = f"{_ms(m['slowest_query_ms'])} ms: {short_sql(m['slowest_query'])}"
        dup = str(m["duplicates"])
        if m["duplicates"]:
            dup += f" ({m['top_shape_count']}× {short_sql(m['top_shape'], 160)})"
        out.append(
            f"| {v.name} | `{m['method']} {m['path']}` → {m['status']} | {m['queries']} / "
            f"{probed.get(v.name, {}).get('queries', '-')} | "
            f"{dup} | {_ms(m['sql_ms'])} | {_ms(m['total_ms'])} | "
            f"{slow if m['queries'] else '-'} |"
        )
    bursts = {v.name: found.get(v.name, {}).get("burst") for v in sc.variants}
    if any(bursts.values()):
        out += [
            "",
            f"{silk['burst']} concurrent purchases per variant on the same Silk stack (its "
            "gunicorn workers take as many at once as they can): the slowest of them.",
            "",
            "| variant | statuses | median total ms | slowest total ms | its SQL ms | its "
            "slowest query |",
            "|---|---|---|---|---|---|",
        ]
        for name, b in bursts.items():
            if not b:
                continue
            s = b["slowest"]
            out.append(
                f"| {name} | {', '.join(f'{k}: {n}' for k, n in sorted(b['statuses'].items()))} "
                f"| {_ms(b['total_ms_median'])} | {_ms(s['total_ms'])} | {_ms(s['sql_ms'])} | "
                + (
                    f"{_ms(s['slowest_query_ms'])} ms: {short_sql(s['slowest_query'])} |"
                    if s["queries"]
                    else "- |"
                )
            )
    profiles = {v.name: found.get(v.name, {}).get("profile") for v in sc.variants}
    if any(profiles.values()):
        out += ["", "Python profile (one request with `X-Silk-Profile: 1`, cProfile, read from the "
                "pstats file Silk keeps with `SILK_PROFILE_FILES=true`; an older revision without "
                "it from Silk's text, which rounds to whole milliseconds): the functions with the "
                "most own time.", ""]  # fmt: skip
        for name, p in profiles.items():
            if p and p["top"]:
                top = "; ".join(f"`{t['function']}` {t['own_ms']:.2f} ms ({t['ncalls']} calls)"
                                for t in p["top"][:3])  # fmt: skip
                source = "" if p.get("source") == "pstats file" else ", from Silk's text"
                out.append(f"- {name} ({_ms(p['total_ms'])} ms profiled{source}): {top}")
    shots = silk.get("screenshots") or {}
    if shots:
        images = docs / "images"
        images.mkdir(parents=True, exist_ok=True)
        what = ("its slowest concurrent purchase" if silk.get("pick") == "burst"
                else "the median request")  # fmt: skip
        out += ["", f"Silk's SQL page of {what}, before and after:", ""]
        for name in (sc.before, sc.after):
            src = Path(shots.get(name, ""))
            if not src.is_file():
                continue
            dest = images / f"{sc.name}-silk-{slug(name)}.png"
            shutil.copyfile(src, dest)
            out += [f"**{name}**", "", f"![Silk, {name}](images/{dest.name})", ""]
    out.append("")
    return out


# --- what Silk costs (docs/profiling.md) ----------------------------------------------------------

COST_CONFIGS = {
    "Silk off": {"SILK_ENABLED": "false"},
    "Silk on (make run)": silk_env({}),
    "Silk on, bodies off": {**silk_env({}), "SILK_RECORD_BODIES": "false"},
    "Silk on + cProfile": {**silk_env({}), "SILK_PYTHON_PROFILER": "true"},
}


def cost(requests: int = 60, rounds: int = 3) -> dict:
    """Client-side latency of GET /orders?page=1&size=20 (prefetch: 3 queries, 20 orders) on one
    gunicorn worker per configuration, `rounds` x `requests` each in alternating order, one
    request at a time, and the bytes Silk's tables grew by per request."""
    servers = start_servers()
    out: dict = {}
    stacks: dict[str, Stack] = {}
    try:
        env = {**base_env(servers), "GUNICORN_WORKERS": "1"}
        work = RESULTS_DIR / f"silk-cost-{time.strftime('%Y%m%dT%H%M%S')}"
        work.mkdir(parents=True)
        users_file = work / "users.json"
        manage(env, "migrate", "--noinput", "-v0")
        manage(silk_env(env), "migrate", "--noinput", "-v0")
        prepare(env, "users", "--count", "30000", "--out", str(users_file))
        prepare(env, "orders", "--users", str(users_file), "--listers", "200")
        tokens = [u["token"] for u in json.loads(users_file.read_text())[-200:]]
        stacks = {name: Stack(f"silk-cost-{slug(name)}", {**env, **extra})
                  for name, extra in COST_CONFIGS.items()}  # fmt: skip
        for stack in stacks.values():
            stack.start(work / "logs")
        for stack in stacks.values():
            stack.wait_ready()
        times: dict[str, list[float]] = {name: [] for name in stacks}
        grew: dict[str, int] = dict.fromkeys(stacks, 0)
        names = list(stacks)
        for rnd in range(rounds):
            for name in names if rnd % 2 == 0 else reversed(names):
                base = stacks[name].base_url
                req = {"method": "GET", "path": "/orders?page=1&size=20"}
                for i in range(5):  # warm-up
                    send(base, {**req, "token": tokens[i]})
                size = _silk_bytes(env)
                for i in range(requests):
                    t = time.perf_counter()
                    status = send(base, {**req, "token": tokens[i % len(tokens)]})
                    times[name].append(1000 * (time.perf_counter() - t))
                    assert status == 200, status
                grew[name] += _silk_bytes(env) - size
        for name, ms in times.items():
            ms.sort()
            out[name] = {
                "requests": len(ms),
                "median_ms": round(statistics.median(ms), 2),
                "mean_ms": round(statistics.mean(ms), 2),
                "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
                "silk_bytes_per_request": round(grew[name] / len(ms)),
            }
        (work / "cost.json").write_text(json.dumps(out, indent=1))
    finally:
        for stack in stacks.values():
            stack.stop()
        servers.stop()
    return out


def _silk_bytes(env: dict[str, str]) -> int:
    """The size of Silk's tables (heap, indexes, TOAST) in the lab's database."""
    import psycopg  # the runner stays free of Django; this one figure needs the database

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname LIKE 'silk\\_%%' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["cost"]:
        sys.exit("usage: python -m loadtests.silk_capture cost")
    print(json.dumps(cost(), indent=1))
