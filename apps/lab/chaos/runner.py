"""One seed: fresh deals and a fresh gate, shoppers and an operator over a few seconds while the
seed's faults land, then settle (heal, drain, end and close every deal) and check.

The seed decides the deals, the faults and when they land, the operator's actions and every
shopper's choices; thread scheduling does not repeat exactly, so a seed reproduces its plan,
not its exact interleaving.
"""

import contextlib
import json
import random
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import token_pair_for
from apps.catalog.services import product_create
from apps.core.errors import ApplicationError
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.services import deal_close, deal_create, deal_end, deal_pause, deal_resume
from apps.deals.tests.gate_faults import LOSABLE_KEYS
from apps.lab.checks import Accepted, deal_invariants
from apps.orders.services.drain import streams_maintain
from apps.orders.services.lifecycle import deals_prepare
from apps.orders.services.reconcile import reconcile_live_deals

from .stack import ChaosStack
from .traffic import DealInfo, Shopper, Traffic

FAULT_KINDS = ("web_kill", "worker_kill", "gate_kill", "gate_restore", "lost_key", "broker_outage")
EXTRA_UNITS = 5  # product stock beyond the deal's quota (conservation covers both)
SETTLE_TIMEOUT = 60.0


@dataclass
class Event:
    at: float  # seconds after the traffic started
    kind: str
    label: str
    args: dict = field(default_factory=dict)


@dataclass
class Plan:
    seed: int
    duration: float
    deals: list[dict]  # stock, per_user_limit
    faults: list[Event]  # main thread
    operator: list[Event]  # operator thread

    @classmethod
    def draw(cls, seed: int, *, faults: bool = True, duration: float | None = None) -> "Plan":
        rng = random.Random(seed)
        duration = duration or round(rng.uniform(4.0, 7.0), 1)
        deals = [
            {"stock": rng.randint(4, 25), "per_user_limit": rng.randint(1, 3)}
            for _ in range(rng.randint(2, 3))
        ]
        events: list[Event] = []
        kinds = rng.sample(FAULT_KINDS, rng.randint(1, 3)) if faults else []
        if "gate_kill" in kinds and "gate_restore" in kinds:  # one gate fault per seed
            kinds.remove(rng.choice(["gate_kill", "gate_restore"]))
        for kind in kinds:
            at = round(rng.uniform(0.5, duration - 1.0), 1)
            if kind == "web_kill":
                for _ in range(rng.randint(1, 3)):
                    at = round(rng.uniform(0.3, duration - 0.3), 1)
                    events.append(
                        Event(at, "web_kill", f"web_kill@{at}", {"pick": rng.randrange(8)})
                    )
            elif kind == "worker_kill":
                down = round(rng.uniform(0.5, 3.0), 1)
                events.append(Event(at, "worker_kill", f"worker_kill@{at}(+{down}s)"))
                events.append(Event(at + down, "worker_start", ""))
            elif kind == "gate_kill":
                down = round(rng.uniform(0.2, 1.5), 1)
                events.append(Event(at, "gate_kill", f"gate_kill@{at}(+{down}s)"))
                events.append(Event(at + down, "gate_start", ""))
            elif kind == "gate_restore":
                at = round(rng.uniform(0.3, duration - 2.0), 1)
                later = round(at + rng.uniform(0.8, 2.5), 1)
                events.append(Event(at, "gate_snapshot", f"gate_restore@{at}->{later}"))
                events.append(Event(later, "gate_restore", ""))
            elif kind == "lost_key":
                for _ in range(rng.randint(1, 2)):
                    at = round(rng.uniform(0.3, duration - 0.3), 1)
                    name = rng.choice(sorted(LOSABLE_KEYS))
                    deal = rng.randrange(len(deals))
                    events.append(
                        Event(
                            at, "lost_key", f"lost:{name}#{deal}@{at}", {"key": name, "deal": deal}
                        )
                    )
            elif kind == "broker_outage":
                down = round(rng.uniform(1.0, 3.0), 1)
                events.append(Event(at, "broker_down", f"broker_outage@{at}(+{down}s)"))
                events.append(Event(at + down, "broker_up", ""))
        operator: list[Event] = []
        for _ in range(rng.randint(0, 2)):
            at = round(rng.uniform(0.3, duration - 1.0), 1)
            deal = rng.randrange(len(deals))
            back = round(at + rng.uniform(0.3, 1.5), 1)
            operator.append(
                Event(at, "pause", f"pause#{deal}@{at}(+{back - at:.1f}s)", {"deal": deal})
            )
            operator.append(Event(back, "resume", "", {"deal": deal}))
        if rng.random() < 0.3:
            at = round(rng.uniform(1.0, duration - 0.5), 1)
            deal = rng.randrange(len(deals))
            operator.append(Event(at, "end", f"end#{deal}@{at}", {"deal": deal}))
        return cls(seed, duration, deals, sorted(events, key=lambda e: e.at),
                   sorted(operator, key=lambda e: e.at))  # fmt: skip

    def labels(self) -> str:
        found = [e.label for e in (*self.faults, *self.operator) if e.label]
        return " ".join(found) or "no faults"


@dataclass
class SeedResult:
    seed: int
    ok: bool
    line: str
    report: dict[str, Any]


def shoppers(count: int) -> list[Shopper]:
    """The run's shoppers (kept across seeds and runs: deals are fresh per seed)."""
    found = []
    for i in range(count):
        user, _ = User.objects.get_or_create(
            email=f"chaos-{i:02d}@chaos.flashdeals.local",
            defaults={"name": f"Chaos {i}", "password": "!"},
        )
        found.append(Shopper(str(user.id), token_pair_for(user).access_token))
    return found


def make_deals(plan: Plan) -> list[tuple[DealInfo, int]]:
    """Published deals (the API's deal_create), loaded in the gate; (deal, total units)."""
    made = []
    now = timezone.now()
    for n, spec in enumerate(plan.deals):
        product = product_create(
            name=f"Chaos seed {plan.seed} deal {n}", price=20_000,
            stock=spec["stock"] + EXTRA_UNITS, category="chaos",
        )  # fmt: skip
        deal = deal_create(
            product_id=product.id, deal_price=9_900, deal_stock=spec["stock"],
            per_user_limit=spec["per_user_limit"], starts_at=now - timedelta(seconds=5),
            ends_at=now + timedelta(minutes=30), publish=True,
        )  # fmt: skip
        if settings.ORDER_PIPELINE not in gate.REDIS_PIPELINES:
            gate.deal_state_unload(deal.id)  # the database decides; no stale counter in Redis
        info = DealInfo(str(deal.id), str(product.id), spec["per_user_limit"])
        made.append((info, spec["stock"] + EXTRA_UNITS))
    return made


class Beat(threading.Thread):
    """The beat's safety nets, run here every second (a real beat runs them every 5-60 s)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        n = 0
        while not self.stop.wait(1.0):
            n += 1
            jobs = [streams_maintain, deals_prepare] + (
                [reconcile_live_deals] if n % 3 == 0 else []
            )
            for job in jobs:
                try:
                    job()
                except Exception:  # noqa: BLE001 - a fault is down: the next tick retries
                    self.errors += 1
                    close_old_connections()
        connection.close()


class Operator(threading.Thread):
    """Pause/resume/end through the deals services the admin's actions call."""

    def __init__(self, events: list[Event], deals: list[DealInfo], t0: float) -> None:
        super().__init__(daemon=True)
        self.events, self.deals, self.t0 = events, deals, t0
        self.done: list[str] = []

    def run(self) -> None:
        actions = {"pause": deal_pause, "resume": deal_resume, "end": deal_end}
        for event in self.events:
            time.sleep(max(0.0, self.t0 + event.at - time.monotonic()))
            deal_id = uuid.UUID(self.deals[event.args["deal"]].deal_id)
            try:
                actions[event.kind](deal_id=deal_id)
                self.done.append(f"{event.kind}#{event.args['deal']}")
            except ApplicationError as exc:  # e.g. resuming a deal ended meanwhile
                self.done.append(f"{event.kind}#{event.args['deal']}:{exc.code}")
            except Exception as exc:  # noqa: BLE001 - the gate may be down: the operator retries
                self.done.append(f"{event.kind}#{event.args['deal']}:{exc.__class__.__name__}")
        connection.close()


def inject(stack: ChaosStack, event: Event, deals: list[DealInfo], state: dict) -> str:
    """Runs one fault in the main thread; returns what happened, for the log."""
    kind = event.kind
    if kind == "web_kill":
        return f"killed web pid {stack.web_worker_kill(event.args['pick'])}"
    if kind == "worker_kill":
        stack.worker_kill()
    elif kind == "worker_start":
        stack.worker_start()
    elif kind == "gate_kill":
        stack.gate_kill()
    elif kind == "gate_start":
        stack.gate_start()
    elif kind == "gate_snapshot":
        state["restore_window"] = [time.monotonic(), None]  # before the copy's first byte
        state["snapshot"] = stack.gate_snapshot(f"seed-{event.at}")
    elif kind == "gate_restore":
        stack.gate_restore(state["snapshot"])
        state["restore_window"][1] = time.monotonic()
    elif kind == "lost_key":
        try:
            LOSABLE_KEYS[event.args["key"]](deals[event.args["deal"]].deal_id)
        except Exception as exc:  # noqa: BLE001 - the gate is down right now: nothing to lose
            return f"{kind} skipped ({exc.__class__.__name__})"
    elif kind == "broker_down":
        stack.broker_down()
    elif kind == "broker_up":
        stack.broker_up()
    return kind


def settle(stack: ChaosStack, deals: list[DealInfo]) -> list[str]:
    """Heals every fault, resumes, ends and closes every deal, waiting for the writer; returns
    the deals that did not close in time."""
    stack.heal()
    ids = [uuid.UUID(d.deal_id) for d in deals]
    for deal_id in ids:
        for action in (deal_resume, deal_end):
            with contextlib.suppress(ApplicationError):  # already ended or closed
                action(deal_id=deal_id)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        open_ = [d for d in ids if not _closed_everywhere(d)]
        if not open_ or time.monotonic() > deadline:
            return [str(d) for d in open_]
        try:
            streams_maintain()
            deals_prepare()  # drains and closes ended deals
            for deal_id in open_:
                deal_close(deal_id=deal_id)
        except Exception:  # noqa: BLE001 - e.g. the worker still reconnecting: try again
            close_old_connections()
        time.sleep(0.5)


def _closed_everywhere(deal_id: uuid.UUID) -> bool:
    """Closed in PostgreSQL, and the gate holds neither its state nor a backlog."""
    if Deal.objects.filter(pk=deal_id, closed_at__isnull=True).exists():
        return False
    try:
        return gate.deal_counters(deal_id) is None and gate.deal_backlog(deal_id) == 0
    except Exception:  # noqa: BLE001 - the gate still restarting: not settled yet
        return False


def run_seed(
    stack: ChaosStack, seed: int, users: list[Shopper], *, out: Path, faults: bool = True,
    burst: bool = False, threads: int = 6, duration: float | None = None,
) -> SeedResult:  # fmt: skip
    started = time.monotonic()
    plan = Plan.draw(seed, faults=faults, duration=duration)
    stack.heal()
    stack.gate_fresh()
    made = make_deals(plan)
    deals = [d for d, _ in made]
    traffic = Traffic(stack.base_url, seed, users, deals, threads=threads, burst=burst)
    beat = Beat()
    state: dict = {}
    injected = []
    if settings.ORDER_PIPELINE in gate.REDIS_PIPELINES:
        beat.start()
    t0 = time.monotonic()
    operator = Operator(plan.operator, deals, t0)
    traffic.start()
    operator.start()
    try:
        for event in plan.faults:
            time.sleep(max(0.0, t0 + event.at - time.monotonic()))
            injected.append(f"{event.at}:{inject(stack, event, deals, state)}")
        time.sleep(max(0.0, t0 + plan.duration - time.monotonic()))
    finally:
        traffic.join()
        operator.join()
        beat.stop.set()
        if beat.is_alive():
            beat.join()
    stuck = settle(stack, deals)
    report = check(plan, made, traffic, state, t0)
    report.update(
        seed=seed, plan=plan.labels(), injected=injected, operator=operator.done,
        beat_errors=beat.errors, not_closed=stuck, seconds=round(time.monotonic() - started, 1),
    )  # fmt: skip
    ok = all(d["ok"] for d in report["deals"].values()) and not stuck and not report["errors_500"]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"seed-{seed}.json").write_text(json.dumps(report, indent=2, default=str))
    return SeedResult(seed, ok, summary(report, ok), report)


def check(
    plan: Plan, made: list[tuple[DealInfo, int]], traffic: Traffic, state: dict, t0: float
) -> dict:
    attempts = traffic.attempts
    window = state.get("restore_window")
    report: dict[str, Any] = {
        "requests": len(attempts),
        "accepted": sum(a.accepted for a in attempts),
        "unanswered": sum(a.unanswered for a in attempts),
        "statuses": _count(str(a.status or a.error) for a in attempts),
        "cancels": _count(str(s) for s in traffic.cancels.values()),
        # The contract never answers 500 (a fault is a 503 with Retry-After).
        "errors_500": sum(a.status == 500 for a in attempts)
        + sum(s == 500 for s in traffic.cancels.values()),
        "deals": {},
    }
    for n, (info, total) in enumerate(made):
        mine = [a for a in attempts if a.deal_id == info.deal_id]
        accepted = [
            Accepted(a.order_id, a.user_id, a.key) for a in mine if a.accepted and a.order_id
        ]
        try:
            entry = deal_invariants(
                deal_id=uuid.UUID(info.deal_id), total_units=total, accepted_orders=accepted,
                unanswered=sum(a.unanswered for a in mine), closed=True, timeout=5,
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - a checker crash is a failed seed, with its trace
            entry = {"ok": False, "checks": {"checker_ran": False}, "error": traceback.format_exc()}
        if window and entry.get("accepted_lost"):
            entry.update(_explain_by_restore(entry, mine, window))
        lost = set(entry.get("accepted_lost", []))
        if lost:  # every request of a lost order (its id or its key), to set against the faults
            keys = {a.key for a in mine if a.order_id in lost and a.key}
            entry["lost_answers"] = [
                {"order_id": a.order_id, "sent_at": round(a.started - t0, 3),
                 "answered_at": round(a.ended - t0, 3), "status": a.status, "key": a.key,
                 "user_id": a.user_id, "quantity": a.quantity, "error": a.error}
                for a in mine if a.order_id in lost or (a.key and a.key in keys)
            ]  # fmt: skip
            entry["cancels_of_lost"] = {o: traffic.cancels[o] for o in lost if o in traffic.cancels}
        if window:
            entry["restore_window"] = [round(w - t0, 3) if w else None for w in window]
        entry.update(plan.deals[n], deal_id=info.deal_id)
        report["deals"][f"deal#{n}"] = entry
    return report


def _explain_by_restore(entry: dict, attempts: list, window: list) -> dict:
    """A restore to an older copy loses what was accepted after the copy and not yet written
    (no system can keep what its backup never saw); those are reported, not failed. Any other
    lost purchase still fails the check.

    A purchase may have been reserved in the window when its request overlaps it: sent before
    the restore ended, first answered after the copy began. The answer can come well after the
    reservation: a 202 waits for the drain kick, which retries for about half a second when
    the broker is down (seed 76 of the second 200-seed run: answered 0.46 s after the restore,
    reserved before it)."""
    start, end = window
    end = float("inf") if end is None else end
    first: dict[str, Any] = {}  # the first request answered with each order id
    for a in sorted((a for a in attempts if a.accepted), key=lambda a: a.ended):
        first.setdefault(a.order_id, a)
    after_copy = [
        o
        for o in entry["accepted_lost"]
        if o in first and first[o].ended >= start and first[o].started <= end
    ]
    unexplained = [o for o in entry["accepted_lost"] if o not in after_copy]
    checks = dict(entry["checks"])
    if not unexplained and not entry.get("accepted_in_other_deal"):
        checks["accepted_found"] = True
    return {
        "checks": checks,
        "ok": all(checks.values()),
        "accepted_lost": unexplained,
        "lost_to_restore": after_copy,
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items()))


def summary(report: dict, ok: bool) -> str:
    head = (
        f"seed {report['seed']:>4}  {report['seconds']:>5.1f}s  faults: {report['plan']}  "
        f"| {report['requests']} requests, {report['accepted']} accepted, "
        f"{report['unanswered']} unanswered"
    )
    restored = sum(len(d.get("lost_to_restore", [])) for d in report["deals"].values())
    if restored:
        head += f", {restored} lost to the restore (expected)"
    if ok:
        return f"{head}  OK"
    broken = []
    for name, deal in report["deals"].items():
        failed = [k for k, v in deal.get("checks", {}).items() if not v]
        if failed:
            broken.append(f"{name}: {', '.join(failed)}")
    if report["errors_500"]:
        broken.append(f"{report['errors_500']} answers were 500")
    if report["not_closed"]:
        broken.append(f"not closed: {len(report['not_closed'])} deals")
    return f"{head}  FAIL ({'; '.join(broken)})"
