"""Data and checks for the load-test lab (loadtests/run.py); never used by the app itself.

Everything here runs outside the measured window and talks to the database and Redis directly
through the apps' services where one exists:

  users    N shoppers (bulk insert, unusable password: no hashing) + access tokens -> JSON file
  catalog  at least N products (the catalog app's COPY generator `generate_products`)
  orders   the last L shoppers get K regular orders of I items each (order-list-slow)
  deals    published, loaded deals from a JSON spec (apps.deals.services.deal_create)
  room     a waiting room's figures and admissions per second after a run (deal-overload)
  probe    SQL queries of one request, through Django's test client, under the caller's settings
  check    the invariants of purchase runs (docs/reliability.md) + 202 -> confirmed latency
  silk     what Silk recorded of the requests sent in given time windows (SILK_ENABLED=true:
           it reads Silk's own tables; loadtests/silk_capture.py), and a staff login for its pages

Output is JSON (stdout or --out), so the runner stays free of Django.
"""

import json
import math
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import User
from apps.catalog.models import Product
from apps.catalog.services import product_create
from apps.deals import gate
from apps.deals.gate.stats import RATE_TTL_SECONDS
from apps.deals.services import deal_create
from apps.lab.checks import deal_invariants
from apps.orders.models import Order, OrderItem, OrderStatus
from apps.orders.services import LineInput, OrderInput
from apps.orders.services.rows import regular_order_rows

EMAIL = "lt-{:06d}@loadtest.flashdeals.local"
SILK_STAFF_EMAIL = "silk-reader@loadtest.flashdeals.local"
TOKEN_HOURS = 6  # longer than any `make loadtest-all`; tokens are minted fresh on every run


class Command(BaseCommand):
    help = "Prepare data for, and check the invariants after, the k6 load tests (loadtests/)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        users = sub.add_parser("users")
        users.add_argument("--count", type=int, required=True)
        users.add_argument("--out", type=Path, required=True)
        catalog = sub.add_parser("catalog")
        catalog.add_argument("--products", type=int, required=True)
        orders = sub.add_parser("orders")
        orders.add_argument("--users", type=Path, required=True)
        orders.add_argument("--listers", type=int, default=200)
        orders.add_argument("--per-user", type=int, default=30)
        orders.add_argument("--items", type=int, default=3)
        deals = sub.add_parser("deals")
        deals.add_argument("--spec", type=Path, required=True)
        deals.add_argument("--out", type=Path, required=True)
        probe = sub.add_parser("probe")
        probe.add_argument("--requests", type=Path, required=True)
        room = sub.add_parser("room")
        room.add_argument("--deal", required=True)
        room.add_argument("--since", type=int, required=True, help="epoch seconds")
        room.add_argument("--until", type=int, required=True, help="epoch seconds")
        check = sub.add_parser("check")
        check.add_argument("--runs", type=Path, required=True)
        check.add_argument("--timeout", type=float, default=60.0)
        silk = sub.add_parser("silk")
        silk.add_argument("--windows", type=Path, required=True)
        silk.add_argument("--staff-password", default="")

    def handle(self, *args, action: str, **options) -> None:
        result = getattr(self, f"_{action}")(**options)
        if result is not None:
            self.stdout.write(json.dumps(result, default=str))

    # --- users ------------------------------------------------------------------------------

    def _users(self, *, count: int, out: Path, **_) -> dict:

        started = time.monotonic()
        emails = [EMAIL.format(i) for i in range(count)]
        existing = set(
            User.objects.filter(email__in=emails).values_list("email", flat=True).iterator()
        )
        unusable = make_password(None)  # one "!..." hash for all: nobody logs in with a password
        missing = [
            User(email=e, name=f"Load {e[3:9]}", password=unusable)
            for e in emails
            if e not in existing
        ]
        User.objects.bulk_create(missing, batch_size=5_000)
        by_email = dict(User.objects.filter(email__in=emails).values_list("email", "id"))
        rows = []
        for email in emails:
            user = User(id=by_email[email], email=email, is_staff=False)
            token = AccessToken.for_user(user)
            token.set_exp(lifetime=timedelta(hours=TOKEN_HOURS))
            # The same claims apps.accounts.services.token_pair_for adds (AUTH_MODE=stateless
            # reads them); minted without the refresh token's OutstandingToken row per user.
            token["email"] = email
            token["is_staff"] = False
            rows.append({"id": str(user.id), "token": str(token)})
        out.write_text(json.dumps(rows))
        return {
            "users": count,
            "created": len(missing),
            "seconds": round(time.monotonic() - started, 2),
        }

    # --- catalog ------------------------------------------------------------------------------

    def _catalog(self, *, products: int, **_) -> dict:

        started = time.monotonic()
        have = Product.objects.count()
        if have < products:
            # The seed changes with the count so a top-up never regenerates existing ids.
            call_command("generate_products", count=products - have, seed=have + 1)
        # A settled catalog, as a shop's would be: a freshly COPYed table has no statistics and
        # an unset visibility map, so the uncached list's counts and index scans would read
        # the heap a fresh table's way and the before would be slower than any real catalog.
        vacuumed = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {Product._meta.db_table}")
        return {
            "products": max(have, products),
            "generated": max(0, products - have),
            "vacuum_analyze_seconds": round(time.monotonic() - vacuumed, 2),
            "seconds": round(time.monotonic() - started, 2),
        }

    # --- orders for order-list-slow ----------------------------------------------------------

    def _orders(self, *, users: Path, listers: int, per_user: int, items: int, **_) -> dict:

        started = time.monotonic()
        # The last users: the purchase scripts take shoppers from the start of the list.
        ids = [row["id"] for row in json.loads(users.read_text())[-listers:]]
        have = dict(
            Order.objects.filter(user_id__in=ids)
            .values("user_id")
            .annotate(n=Count("id"))
            .values_list("user_id", "n")
        )
        products = list(Product.objects.filter(category="loadtest-orders")[:items])
        if len(products) < items:
            products += [
                product_create(
                    name=f"Order-list item {i}", price=12_000 + 1_000 * i, stock=0,
                    category="loadtest-orders",
                )
                for i in range(len(products), items)
            ]  # fmt: skip
        now = timezone.now()
        basket = OrderInput(items=tuple(LineInput(product_id=p.id, quantity=1) for p in products))
        by_id = {p.id: p for p in products}
        orders, lines = [], []
        for n, user_id in enumerate(ids):
            for k in range(have.get(uuid.UUID(user_id), 0), per_user):
                order, items = regular_order_rows(
                    user_id=uuid.UUID(user_id), data=basket, products=by_id,
                    status=OrderStatus.CONFIRMED,
                    created_at=now - timedelta(minutes=n * per_user + k),
                )  # fmt: skip
                orders.append(order)
                lines += items
        Order.objects.bulk_create(orders, batch_size=5_000)
        OrderItem.objects.bulk_create(lines, batch_size=5_000)
        return {
            "listers": len(ids),
            "orders_created": len(orders),
            "items_created": len(lines),
            "seconds": round(time.monotonic() - started, 2),
        }

    # --- deals --------------------------------------------------------------------------------

    def _deals(self, *, spec: Path, out: Path, **_) -> dict:
        """spec: [{"name", "stock", "per_user_limit", "gate", "extra_stock", "product_only",
        "starts_in", "room"}]. A deal for a database pipeline is unloaded from the gate, so Redis
        holds no stale counter for it. "product_only" makes just the product (regular orders).
        "starts_in": seconds from now to the start (default -5: open now); "room": the waiting
        room's settings (apps.deals.services.ROOM_FIELDS), e.g. {"room_enabled": true}."""

        started = time.monotonic()
        made = {}
        now = timezone.now()
        for item in json.loads(spec.read_text()):
            extra = item.get("extra_stock", 1_000)
            product = product_create(
                name=f"Load-test deal {item['name']}"[:200],
                price=20_000,
                stock=item["stock"] + extra,
                category="loadtest-deals",
            )
            if item.get("product_only"):
                made[item["name"]] = {"product_id": str(product.id)}
                continue
            deal = deal_create(
                product_id=product.id,
                deal_price=9_900,
                deal_stock=item["stock"],
                per_user_limit=item.get("per_user_limit", 1),
                starts_at=now + timedelta(seconds=item.get("starts_in", -5)),
                ends_at=now + timedelta(minutes=item.get("minutes", 60)),
                publish=True,
                **item.get("room", {}),
            )
            if not item.get("gate", True):
                gate.deal_state_unload(deal.id)
            made[item["name"]] = {
                "deal_id": str(deal.id),
                "product_id": str(product.id),
                "deal_stock": item["stock"],
                "per_user_limit": item.get("per_user_limit", 1),
                "total_units": item["stock"] + extra,
                "gate": item.get("gate", True),
                "backlog_key": gate.deal_backlog_key(deal.id),
            }
        out.write_text(json.dumps(made))
        return {"deals": len(made), "seconds": round(time.monotonic() - started, 2)}

    # --- probe: SQL queries per request ----------------------------------------------------------

    def _probe(self, *, requests: Path, **_) -> dict:
        """requests: {"label": {"method", "path", "token"?, "body"?}}. Each request is sent twice
        and the second is counted (the first may fill a cache). Under the settings of the calling
        environment, so each variant's switches apply."""
        client = Client()
        found = {}
        for label, req in json.loads(requests.read_text()).items():
            counts = []
            for attempt in range(2):
                # "tokens": a different shopper per attempt (a deal's per-user limit is 1).
                token = req["tokens"][attempt] if req.get("tokens") else req.get("token")
                headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
                body = req.get("body")
                if req.get("idempotent_key"):
                    headers["HTTP_IDEMPOTENCY_KEY"] = f"probe-{uuid.uuid4()}"
                with CaptureQueriesContext(connection) as ctx:
                    if req["method"] == "POST":
                        resp = client.post(req["path"], json.dumps(body), "application/json",
                                           **headers)  # fmt: skip
                    else:
                        resp = client.get(req["path"], **headers)
                counts.append(len(ctx.captured_queries))
            found[label] = {"status": resp.status_code, "queries": counts[-1], "first": counts[0]}
        return found

    # --- room: what the waiting room did during a run ----------------------------------------

    def _room(self, *, deal: str, since: int, until: int, **_) -> dict:
        """The room's figures now, and the shoppers it admitted in each second from `since` to
        `until` (epoch seconds; the per-second "q:<sec>" fields queue.lua and reserve.lua count
        in the deal's rate hashes, kept RATE_TTL_SECONDS)."""
        seconds = max(1, min(until - since + 1, RATE_TTL_SECONDS))
        series = gate.deal_live_counts(deal, now=until, seconds=seconds, dead_limit=0)["rate"]
        return {
            "figures": asdict(gate.room_figures(deal)),
            "start": series["start"],
            "admitted": series["admitted"],
            "accepted": series["accepted"],
        }

    # --- check: invariants after purchase runs -----------------------------------------------

    def _check(self, *, runs: Path, timeout: float, **_) -> dict:
        """runs: {"run name": {"deal": <deals entry>, "accepted": n, "async": bool,
        "unanswered": n}}; "unanswered" (optional): purchases whose client saw no answer or a
        5xx, so up to that many orders nobody was told about are explained."""

        report = {}
        for name, run in json.loads(runs.read_text()).items():
            info = run["deal"]
            deal_id = uuid.UUID(info["deal_id"])
            entry = deal_invariants(
                deal_id=deal_id,
                total_units=info["total_units"],
                accepted=run["accepted"],
                unanswered=run.get("unanswered"),
                timeout=timeout,
            )
            if run.get("async"):
                entry["confirm_ms"] = _confirm_latency(deal_id)
            report[name] = entry
        return report

    # --- silk: Silk's records of the lab's requests --------------------------------------------

    def _silk(self, *, windows: Path, staff_password: str, **_) -> dict:
        """windows: {"label": {"timed": [from, until], "profiled": [...]?, "burst": [...]?}} in
        epoch seconds. Needs SILK_ENABLED=true (Silk's app and tables). With --staff-password,
        SILK_STAFF_EMAIL is a staff user with that password afterwards (to log in to /silk/)."""
        # Silk's app is installed only with SILK_ENABLED=true; this command runs without it too.
        from apps.lab.silk_records import summarize_windows

        if staff_password:
            user = User.objects.filter(email=SILK_STAFF_EMAIL).first() or User(
                email=SILK_STAFF_EMAIL, name="Load-test Silk reader"
            )
            user.is_staff = True
            user.set_password(staff_password)
            user.save()
        return summarize_windows(json.loads(windows.read_text()))


def _confirm_latency(deal_id: uuid.UUID) -> dict:
    """202 -> confirmed: the writer stamps updated_at when it inserts the row; created_at is the
    moment the request reserved the unit (before it answered 202)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM (updated_at - created_at)) * 1000 FROM orders_order "
            "WHERE deal_id = %s ORDER BY 1",
            [deal_id],
        )
        values = [float(row[0]) for row in cursor.fetchall()]
    if not values:
        return {"n": 0}

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1)], 1)

    return {"n": len(values), "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": pct(100)}
