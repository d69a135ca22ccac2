"""The load-test lab: `python -m loadtests.run SCENARIO...` or `--all` (make loadtest[-all]).

For each scenario: prepare data outside the measured window, start one web tier per variant
(gunicorn from the Procfile with deploy/gunicorn.conf.py, the variant's settings, its own port;
a Celery worker where the variant needs one), count SQL queries per request with Django's test
client, warm up, then run the variants in alternating rounds (A B C, C B A, ...), each round
measuring k6's latency/throughput and the CPU seconds of every process kind. Purchase scenarios
add an open-model (constant arrival rate) phase and end with the invariant check. Raw k6
summaries go to loadtests/results/; docs/scenarios/<name>.md and .png are regenerated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime

import redis

from . import report, silk_capture
from .overload import run_overload
from .scenarios import ORDER, SCENARIOS, Scenario, Variant
from .stack import (
    RESULTS,
    ROOT,
    Servers,
    Stack,
    base_env,
    checkout,
    cpu_snapshot,
    log,
    manage,
    prepare,
    run_k6,
    start_servers,
)

USERS = 30_000
CATALOG = 1_000_000
LISTERS = 200
BIG_STOCK = 500_000  # closed-model deals never sell out within a run
TPS_PRODUCTS = 50


class Lab:
    def __init__(self, servers: Servers, args: argparse.Namespace) -> None:
        self.servers = servers
        self.args = args
        self.env = base_env(servers)
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.dir = RESULTS / self.stamp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users_file = self.dir / "users.json"
        self.user_count = USERS
        self.redis = redis.Redis.from_url(servers.env["REDIS_URL"], decode_responses=True)
        self.prepared: dict[str, dict] = {}

    # --- data -----------------------------------------------------------------------------

    def prepare_common(self, scenarios: list[Scenario]) -> None:
        t = time.monotonic()
        manage(self.env, "migrate", "--noinput", "-v0")
        log("preparing users and tokens...")
        self.prepared["users"] = prepare(
            self.env, "users", "--count", str(USERS), "--out", str(self.users_file)
        )
        needs = {need for sc in scenarios for need in sc.needs}
        if "catalog" in needs:
            log(f"preparing a {CATALOG:,}-product catalog (generated once, reused)...")
            self.prepared["catalog"] = prepare(self.env, "catalog", "--products", str(CATALOG))
        if "orders" in needs:
            self.prepared["orders"] = prepare(
                self.env, "orders", "--users", str(self.users_file), "--listers", str(LISTERS)
            )
        self.prepared["seconds"] = round(time.monotonic() - t, 1)
        log(f"prepared in {self.prepared['seconds']}s: {self.prepared}")
        # Listers are the LAST users: purchase runs take shoppers from the start of the list, so
        # a lister's first page never fills up with one-item deal orders.
        self.tokens = [u["token"] for u in json.loads(self.users_file.read_text())[-LISTERS:]]

    def deals(self, spec: list[dict]) -> dict[str, dict]:
        spec_file = self.dir / f"deals-{time.monotonic_ns()}.json"
        out_file = spec_file.with_suffix(".out.json")
        spec_file.write_text(json.dumps(spec))
        prepare(self.env, "deals", "--spec", str(spec_file), "--out", str(out_file))
        return json.loads(out_file.read_text())

    # --- one scenario -----------------------------------------------------------------------

    def run(self, sc: Scenario) -> dict:
        started = time.monotonic()
        log(f"=== {sc.name} ===")
        # The tree may have gained a migration since the run started (a shared checkout).
        manage(self.env, "migrate", "--noinput", "-v0")
        if sc.model == "overload":  # phases of its own: capacity, then open-model overload
            return run_overload(self, sc)
        stacks = {
            key: Stack(f"{sc.name}-{key}", {**self.env, **spec.env}, worker=spec.worker,
                       root=checkout(spec.revision) if spec.revision else ROOT)
            for key, spec in sc.stacks.items()
        }  # fmt: skip
        deals = self._scenario_deals(sc)
        products = self._tps_products(sc)
        runs: list[dict] = []
        try:
            for stack in stacks.values():
                stack.start(self.dir / "logs")
            for stack in stacks.values():
                stack.wait_ready()
            queries = {v.name: self._probe(sc, v, stacks[v.stack], deals, products) for v in
                       sc.variants}  # fmt: skip
            silk = silk_capture.capture(self, sc, deals, products)  # Silk's view, not measured
            profiles = self._profiles(sc) if sc.profile else []  # also outside the window
            for v in sc.variants:
                self._k6(sc, v, stacks[v.stack], deals, products, "warmup", 0, warm=True)
            for rnd in range(self.args.rounds):
                order = sc.variants if rnd % 2 == 0 else list(reversed(sc.variants))
                for v in order:
                    runs.append(
                        self._k6(sc, v, stacks[v.stack], deals, products, sc.model, rnd + 1)
                    )
            open_rate = None
            if sc.open_model:
                open_rate = self._open_rate(sc, runs)
                deals.update(self._open_deals(sc, open_rate))
                for rnd in range(self.args.rounds):
                    order = [v for v in sc.variants if v.purchase]
                    order = order if rnd % 2 == 0 else list(reversed(order))
                    for v in order:
                        runs.append(
                            self._k6(sc, v, stacks[v.stack], deals, products, "open", rnd + 1,
                                     rate=open_rate)
                        )  # fmt: skip
        finally:
            for stack in stacks.values():
                stack.stop()
        checks = self._check(sc, runs, deals)
        result = {
            "scenario": sc.name,
            "stamp": self.stamp,
            "duration_s": self.args.duration,
            "rounds": self.args.rounds,
            "vus": sc.vus,
            "open_rate": open_rate,
            "queries": queries,
            "silk": silk,
            "profiles": profiles,
            "runs": runs,
            "checks": checks,
            "prepared": self.prepared,
            "wall_s": round(time.monotonic() - started, 1),
        }
        (self.dir / f"{sc.name}.json").write_text(json.dumps(result, indent=1))
        return result

    def _profiles(self, sc: Scenario) -> list[dict]:
        """One purchase's CPU, in-process (loadtests/profile_purchase.py): the app, the floor,
        and the app of every revision stack."""
        runs = [[], ["--floor"]] + [
            ["--root", str(checkout(spec.revision))] for spec in sc.stacks.values() if spec.revision
        ]
        found = []
        for extra in runs:
            log(f"profiling one purchase in-process {' '.join(extra) or '(the app)'}...")
            proc = subprocess.run(
                [sys.executable, "-m", "loadtests.profile_purchase", "--json", *extra],
                cwd=ROOT, env=self.env, capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode:
                log(f"profile {extra} FAILED (the page goes without it):\n{proc.stderr[-3000:]}")
                continue
            found.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        return found

    def _scenario_deals(self, sc: Scenario) -> dict[str, dict]:
        spec = []
        if "deal" in sc.needs:
            spec.append({"name": "spike", "stock": BIG_STOCK})
        if any(v.purchase for v in sc.variants):  # closed-model purchases need deals too
            for v in sc.variants:
                if not v.purchase:
                    continue
                gate = sc.stacks[v.stack].pipeline.startswith("redis")
                names = [f"{v.name}-warmup", f"{v.name}-probe"] + [
                    f"{v.name}-{sc.model}-r{r + 1}" for r in range(self.args.rounds)
                ]
                spec += [{"name": n, "stock": BIG_STOCK, "gate": gate} for n in names]
        return self.deals(spec) if spec else {}

    def _open_deals(self, sc: Scenario, rate: int) -> dict[str, dict]:
        stock = max(1, int(0.7 * rate * self.args.duration))
        spec = [
            {
                "name": f"{v.name}-open-r{r + 1}",
                "stock": stock,
                "gate": sc.stacks[v.stack].pipeline.startswith("redis"),
            }
            for v in sc.variants
            if v.purchase
            for r in range(self.args.rounds)
        ]
        return self.deals(spec)

    def _tps_products(self, sc: Scenario) -> list[str]:
        if "products" not in sc.needs:
            return []
        spec = [{"name": f"tps-{i}", "stock": 0, "extra_stock": 5_000_000, "product_only": True}
                for i in range(TPS_PRODUCTS)]  # fmt: skip
        return [d["product_id"] for d in self.deals(spec).values()]

    def _open_rate(self, sc: Scenario, runs: list[dict]) -> int:
        """80 % of the slowest purchase variant's mean closed-model throughput in this run."""
        per_variant = {}
        for r in runs:
            if r["purchase"]:
                per_variant.setdefault(r["variant"], []).append(r["rps"])
        slowest = min(statistics.mean(v) for v in per_variant.values())
        return max(10, int(0.8 * slowest))

    # --- measurements ---------------------------------------------------------------------

    def _probe(self, sc, v: Variant, stack: Stack, deals, products) -> dict:
        """SQL queries of one request of this variant, counted by Django's test client under the
        variant's settings (the second of two identical requests, after any cache fill)."""
        token = self.tokens[0]
        if v.reference:
            req = {"method": "GET", "path": "/health"}
        elif sc.name == "product-list-slow" or v.k6_env.get("TARGET") == "products":
            req = {"method": "GET", "path": "/products?page=3&size=20"}
        elif sc.name == "order-list-slow":
            req = {"method": "GET", "path": "/orders?page=1&size=20", "token": token}
        elif sc.name == "deal-traffic-spike":
            req = {"method": "GET", "path": "/orders?page=1&size=5", "token": token}
        elif sc.name == "auth-cpu-bottleneck":
            req = {"method": "GET", "path": "/auth/verify", "token": token}
        elif sc.name == "order-tps-limit":
            body = {"items": [{"product_id": products[0], "quantity": 1}]}
            req = {"method": "POST", "path": "/orders", "token": token, "body": body}
        else:
            deal = deals[f"{v.name}-probe"]
            line = {"product_id": deal["product_id"], "deal_id": deal["deal_id"], "quantity": 1}
            # Two different shoppers: the second request must be a purchase, not a limit refusal.
            req = {"method": "POST", "path": "/orders", "token": token, "body": {"items": [line]},
                   "idempotent_key": True, "tokens": self.tokens[1:3]}  # fmt: skip
        file = self.dir / f"probe-{sc.name}-{stack.name}-{len(v.name)}.json"
        file.write_text(json.dumps({v.name: req}))
        found = prepare(stack.env, "probe", "--requests", str(file), root=stack.root)
        return found[v.name]

    def _k6(self, sc, v: Variant, stack: Stack, deals, products, model, rnd, *, warm=False,
            rate=None) -> dict:  # fmt: skip
        label = f"{sc.name}--{v.name}--{model}-r{rnd}".replace(" ", "_").replace(",", "")
        summary_file = self.dir / "k6" / f"{label}.json"
        summary_file.parent.mkdir(exist_ok=True)
        env = {
            "BASE_URL": stack.base_url,
            "USERS_FILE": str(self.users_file),
            "MODEL": "closed" if warm else model,
            "VUS": str(min(sc.vus, 20) if warm else sc.vus),
            "DURATION": f"{3 if warm else self.args.duration}s",
            "SUMMARY_FILE": str(summary_file),
            "LISTERS": str(LISTERS),
            "RUN_ID": f"{self.stamp}-{label}",
            **v.k6_env,
        }
        deal = None
        if v.purchase:
            deal = deals[f"{v.name}-{'warmup' if warm else f'{model}-r{rnd}'}"]
        elif "deal" in sc.needs:
            deal = deals["spike"]
        if deal:
            env |= {"DEAL_ID": deal["deal_id"], "PRODUCT_ID": deal["product_id"]}
        if products:
            env["PRODUCT_IDS"] = ",".join(products)
        if rate:
            env["RATE"] = str(rate)
        self.redis.config_set("appendfsync", sc.stacks[v.stack].gate_fsync)
        before = cpu_snapshot(stack, self.servers)
        t0 = time.monotonic()
        code, k6_cpu = run_k6(sc.script, env, self.dir / "k6.log")
        wall = time.monotonic() - t0
        after = cpu_snapshot(stack, self.servers)
        drain = None
        if deal and stack.worker:
            drain = self._drain_time(deal)
            after = cpu_snapshot(stack, self.servers)  # the writer's work belongs to the run
        if code not in (0, 99):
            raise RuntimeError(f"k6 failed (exit {code}) for {label}; see {self.dir}/k6.log")
        summary = json.loads(summary_file.read_text())
        m = report.k6_metrics(summary, 3 if warm else self.args.duration)
        cpu = {k: after[k] - before[k] for k in before} | {"k6": k6_cpu}
        result = {
            "label": label,
            "variant": v.name,
            "stack": stack.name,
            "model": "warmup" if warm else model,
            "round": rnd,
            "purchase": v.purchase,
            "reference": v.reference,
            "deal": deal,
            "rate": rate,
            "wall_s": round(wall, 2),
            "cpu_s": cpu,
            "drain_s": drain,
            **m,
        }
        log(
            f"{label}: {m['requests']} req, {m['rps']:.0f} req/s, p95 {m['p95']:.1f} ms, "
            f"accepted {m['accepted']}, unexpected {m['unexpected']}"
            + (f", drained {drain:.2f}s after the burst" if drain is not None else "")
        )
        return result

    def _drain_time(self, deal: dict, timeout: float = 60) -> float:
        """Seconds from the end of the burst until the stream backlog (accepted reservations not
        yet in PostgreSQL) is empty."""
        t0 = time.monotonic()
        while self.redis.hlen(deal["backlog_key"]):
            if time.monotonic() - t0 > timeout:
                break
            time.sleep(0.02)
        return round(time.monotonic() - t0, 3)

    def _check(self, sc: Scenario, runs: list[dict], deals: dict) -> dict:
        variants = {v.name: v for v in sc.variants}
        todo = {
            r["label"]: {
                "deal": r["deal"],
                "accepted": r["accepted"],
                "async": sc.stacks[variants[r["variant"]].stack].pipeline == "redis_async",
            }
            for r in runs
            if r["purchase"]
        }
        if not todo:
            return {}
        file = self.dir / f"check-{sc.name}.json"
        file.write_text(json.dumps(todo))
        return prepare(self.env, "check", "--runs", str(file))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("loadtests.run", description=__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"any of: {', '.join(ORDER)}")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="don't regenerate docs/scenarios")
    parser.add_argument("--keep-servers", action="store_true")
    args = parser.parse_args(argv)
    names = ORDER if args.all else args.scenarios
    unknown = [n for n in names if n not in SCENARIOS]
    if not names or unknown:
        parser.error(f"choose scenarios from {', '.join(ORDER)} (unknown: {unknown})")
    if args.rounds < 2:
        parser.error("at least 2 rounds: the spread across rounds is part of the result")
    t0 = time.monotonic()
    servers = start_servers()
    failed = []
    results = []
    try:
        lab = Lab(servers, args)
        scenarios = [SCENARIOS[n] for n in names]
        lab.prepare_common(scenarios)
        for sc in scenarios:
            try:
                result = lab.run(sc)
            except Exception:  # noqa: BLE001 - one broken scenario must not lose the others
                log(f"{sc.name} FAILED:\n{traceback.format_exc()}")
                failed.append(sc.name)
                continue
            results.append(result)
            broken = [k for k, c in result["checks"].items() if not c.get("ok")]
            if broken:
                failed.append(sc.name)
                log(f"INVARIANTS BROKEN in {sc.name}: {broken}")
            if not args.no_docs:
                report.write_scenario_doc(SCENARIOS[sc.name], result)
        total = round(time.monotonic() - t0, 1)
        log(f"total time {total}s ({total / 60:.1f} min) for {', '.join(names)}")
        if not args.no_docs:
            report.write_index(total_s=total if args.all else None, names=names)
        (lab.dir / "total.json").write_text(json.dumps({"scenarios": names, "total_s": total}))
    finally:
        if not args.keep_servers:
            servers.stop()
    if failed:
        log(f"FAILED (crashed or invariants broken): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
