"""The seven scenarios of Flash Deals (the Korean flash-sale project flashdeals rebuilds, see the
README), deal-overload and web-server: their variants (settings), k6 script, load and prose.

A *stack* is one web tier configuration (env switches; a Celery worker if it needs one); a
*variant* is what k6 sends to one stack. A reference variant (GET /health) runs on the same stack
as the variant it is compared with, so "x % of /health" is measured on the same server.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StackSpec:
    env: dict[str, str]
    worker: bool = False
    pipeline: str = ""  # purchase scenarios: the ORDER_PIPELINE, which decides the deal's gate
    # The gate server's appendfsync while this stack's variants run (the runner sets it): the
    # shipped `always` (+ WAITAOF in the app), or `everysec` for the not-durable comparison.
    gate_fsync: str = "always"
    # A git revision: the stack serves that commit's code (stack.checkout) instead of this
    # checkout's, so "the code before a change" is a variant of the same run.
    revision: str = ""


@dataclass(frozen=True)
class Variant:
    name: str
    stack: str
    k6_env: dict[str, str] = field(default_factory=dict)
    reference: bool = False  # GET /health on the same server: a ceiling, not a contender
    purchase: bool = False
    floor: bool = False  # the floor's purchase (apps.lab.floor): a reference, not a contender


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    script: str
    vus: int
    stacks: dict[str, StackSpec]
    variants: list[Variant]
    before: str
    after: str
    situation: str
    meaning: str
    model: str = "closed"  # closed | spike | overload (phases of its own: loadtests/overload.py)
    open_model: bool = False  # purchase scenarios also run at a constant arrival rate
    needs: tuple[str, ...] = ()  # catalog | orders | deal | products
    original: str = ""  # Flash Deals' numbers (different hardware, architecture)
    # Purchase scenarios: also profile one purchase in-process (loadtests/profile_purchase.py)
    # for the app, the floor and every revision stack, outside the measured window.
    profile: bool = False


def pipeline(name: str, worker: bool = False) -> StackSpec:
    return StackSpec(env={"ORDER_PIPELINE": name}, worker=worker, pipeline=name)


# The purchase at the floor of a Django request (apps/lab/floor): the same server configuration,
# reserve.lua and batch writer as redis_async, with no middleware, DRF or error contract around
# it. Never a setting the app ships; the lab starts it with its own settings module.
FLOOR = StackSpec(
    env={"ORDER_PIPELINE": "redis_async", "DJANGO_SETTINGS_MODULE": "apps.lab.floor.settings"},
    worker=True,
    pipeline="redis_async",
)
# The last commit before the purchase path was cut to the floor: its redis_async purchase is
# the "before" of that work, measured in the same run (stack.checkout).
BEFORE_FLOOR_WORK = "b770395"
# The last commit before a regular order became one statement (apps/orders/services/regular.py)
# and POST /orders got its direct path: order-tps-limit's "as of" variant, the same stack.
BEFORE_REGULAR_ORDER_WORK = "b770395"

REGULAR_ORDER_BEFORE = f"orjson, 3 sync workers (as of {BEFORE_REGULAR_ORDER_WORK})"


SCENARIOS: dict[str, Scenario] = {}


def _add(scenario: Scenario) -> None:
    SCENARIOS[scenario.name] = scenario


_add(
    Scenario(
        name="product-list-slow",
        title="Product list is slow",
        script="product-list-slow.js",
        vus=50,
        stacks={
            "cache-off": StackSpec(env={"CATALOG_CACHE_ENABLED": "false"}),
            "cache-on": StackSpec(env={"CATALOG_CACHE_ENABLED": "true"}),
        },
        variants=[
            Variant("health", "cache-on", {"TARGET": "health"}, reference=True),
            Variant("uncached", "cache-off"),
            Variant("cached", "cache-on"),
        ],
        before="uncached",
        after="cached",
        needs=("catalog",),
        situation=(
            "Shoppers page through the catalog: `GET /products?page=1..10&size=20` on a "
            "1,000,000-product catalog, 50 VUs without think time. Without the cache every "
            "request counts the catalog (`SELECT COUNT(*)` over a million rows) and reads a page "
            "through the newest-first index (the catalog is `VACUUM ANALYZE`d once it is "
            "generated, as a settled shop's catalog would be: a freshly copied table has no "
            "statistics and no visibility map, which made earlier befores slower than a real "
            "catalog's); with cache-aside (django-redis, versioned keys "
            "bumped on commit) a page is one Redis round trip. `GET /health` on the cached "
            "server is the ceiling of the web tier itself."
        ),
        meaning=(
            "Uncached, PostgreSQL dominates the cost of a request: the total count scans the "
            "whole table on every page, so PostgreSQL's CPU per request dwarfs the web tier's "
            "and the two cores are saturated by the database. Cached, the database is out of "
            "the path and the cost is the Django/DRF request cycle plus one Redis GET; the "
            "bottleneck moves to the web workers (and k6 itself, which shares the two cores), "
            "which is why the cached list lands close to `/health`."
        ),
        original="DB direct 738 ms p95 / 17 req/s -> Redis cache-aside 84 ms / 60 req/s",
    )
)

_add(
    Scenario(
        name="order-list-slow",
        title="Order list is slow (N+1)",
        script="order-list-slow.js",
        vus=50,
        stacks={
            "lazy": StackSpec(env={"ORDER_LIST_PREFETCH": "false"}),
            "prefetch": StackSpec(env={"ORDER_LIST_PREFETCH": "true"}),
        },
        variants=[Variant("lazy items (N+1)", "lazy"), Variant("prefetch", "prefetch")],
        before="lazy items (N+1)",
        after="prefetch",
        needs=("orders",),
        situation=(
            "200 shoppers, each with 30 orders of 3 items, read their first page "
            "(`GET /orders?page=1&size=20`), 50 VUs without think time, a different shopper "
            "(token) per request. Before: each order's items load lazily, one query per order "
            "(N+1). After: one `prefetch_related` query for the whole page."
        ),
        meaning=(
            "The N+1 variant sends 20 more statements per page; each is cheap for PostgreSQL "
            "(an index lookup) but costs a network round trip and ORM work in the web worker, "
            "so both the web tier's and PostgreSQL's CPU per request grow with the page size. "
            "With prefetching the query count is constant and the remaining cost is building "
            "and rendering 20 orders with 60 items."
        ),
        original="N+1 410 ms p95 / 48 req/s -> JOIN 361 ms / 52 req/s",
    )
)

_add(
    Scenario(
        name="deal-traffic-spike",
        title="Deal traffic spike",
        script="deal-traffic-spike.js",
        vus=200,
        model="spike",
        stacks={
            "conn-per-request": StackSpec(env={"DB_CONN_MAX_AGE": "0"}),
            "persistent": StackSpec(env={"DB_CONN_MAX_AGE": "600"}),
        },
        variants=[
            Variant("new DB connection per request", "conn-per-request"),
            Variant("persistent connections", "persistent"),
        ],
        before="new DB connection per request",
        after="persistent connections",
        needs=("deal",),
        situation=(
            "A deal opens: 0 -> 200 VUs in 2 s, held, then ramped down. Each shopper opens the "
            "deal (`GET /products/deals/{id}`, cached, live remaining from Redis) and their "
            "order list (`GET /orders?size=5`, PostgreSQL). Before: `DB_CONN_MAX_AGE=0`, a new "
            "PostgreSQL connection (a forked backend, authentication, session setup) for every "
            "request that touches the database. After: persistent connections with health "
            "checks (the default, 600 s). Redis connections are pooled per process in both."
        ),
        meaning=(
            "Opening a PostgreSQL connection costs more than the queries it serves: the "
            "postmaster forks a backend, which initialises its caches, and the web worker "
            "pays the TCP and protocol handshake. That shows up as PostgreSQL CPU per request; "
            "with persistent connections that cost disappears and the web tier is the limit."
        ),
        original="httpx client per request 1089 ms / 133 req/s -> pooled 295 ms / 498 req/s "
        "-> Kong 129 ms / 982 req/s",
    )
)

_add(
    Scenario(
        name="auth-cpu-bottleneck",
        title="Authentication CPU bottleneck",
        script="auth-cpu-bottleneck.js",
        vus=50,
        stacks={
            "database": StackSpec(env={"AUTH_MODE": "database"}),
            "stateless": StackSpec(env={"AUTH_MODE": "stateless"}),
            # What revocation (docs/security.md) costs the stateless path: the same without the
            # check.
            "unrevocable": StackSpec(
                env={"AUTH_MODE": "stateless", "AUTH_UNSAFE_SKIP_REVOCATION": "true"}
            ),
        },
        variants=[
            Variant("user row per request", "database"),
            Variant("stateless JWT", "stateless"),
            Variant("stateless, no revocation check", "unrevocable"),
        ],
        before="user row per request",
        after="stateless JWT",
        situation=(
            "Every request carries a different shopper's access token (`GET /auth/verify`), "
            "50 VUs without think time. Before: `AUTH_MODE=database` loads the user row on "
            "every request after verifying the signature. After: `AUTH_MODE=stateless` trusts "
            "the signed claims (user id, email, staff flag) and makes no query."
        ),
        meaning=(
            "Both variants verify the HS256 signature (simplejwt); the difference is one "
            "indexed primary-key query per request, plus a database connection's worth of "
            "round trip and ORM work. The stateless variant removes PostgreSQL from the path "
            "entirely, so what is left is the Django/DRF request cycle and JWT decoding. The "
            "third variant skips the revoked-users check (a dictionary lookup in a per-process "
            "copy of the revocation set, re-read from Redis at most once a second): the gap "
            "to `stateless JWT` is what making tokens die with their user costs."
        ),
        original="auth service per request 235 ms / 900 req/s -> Kong JWT + cache 20 ms / "
        "11,337 req/s",
    )
)

_add(
    Scenario(
        name="order-tps-limit",
        title="Order throughput limit",
        script="order-tps-limit.js",
        vus=50,
        stacks={
            "drf-1-sync": StackSpec(env={"API_RENDERER": "drf", "GUNICORN_WORKERS": "1"}),
            "orjson-1-sync": StackSpec(env={"API_RENDERER": "orjson", "GUNICORN_WORKERS": "1"}),
            "orjson-2x4-gthread": StackSpec(
                env={
                    "API_RENDERER": "orjson",
                    "GUNICORN_WORKERS": "2",
                    "GUNICORN_WORKER_CLASS": "gthread",
                    "GUNICORN_THREADS": "4",
                }
            ),
            "orjson-3-sync": StackSpec(env={"API_RENDERER": "orjson", "GUNICORN_WORKERS": "3"}),
            "orjson-3-sync-before": StackSpec(
                env={"API_RENDERER": "orjson", "GUNICORN_WORKERS": "3"},
                revision=BEFORE_REGULAR_ORDER_WORK,
            ),
        },
        variants=[
            Variant("DRF JSON, 1 sync worker", "drf-1-sync"),
            Variant("orjson, 1 sync worker", "orjson-1-sync"),
            Variant("orjson, 2 gthread x 4", "orjson-2x4-gthread"),
            Variant("orjson, 3 sync workers", "orjson-3-sync"),
            Variant(REGULAR_ORDER_BEFORE, "orjson-3-sync-before"),
        ],
        before="DRF JSON, 1 sync worker",
        after="orjson, 3 sync workers",
        needs=("products",),
        situation=(
            "Regular (non-deal) orders, `POST /orders` with one line, spread over 50 products so "
            "no row is hot, a different shopper per request, 50 VUs without think time. Each "
            "order is one SQL statement (`apps/orders/services/regular.py`), in autocommit its "
            "own transaction: it locks the lines' products in id order, checks their stock, "
            "takes it and inserts the order and all its items, or writes nothing; then the "
            "catalog cache version is bumped in Redis. The before is gunicorn's default (one sync "
            "worker) with DRF's JSON renderer; the after is the shipped configuration "
            "(`deploy/gunicorn.conf.py`: cores + 1 sync workers, orjson). The last variant is "
            f"the same shipped stack serving the code as of {BEFORE_REGULAR_ORDER_WORK}, before "
            "the order became one statement and `POST /orders` got its direct path (then: BEGIN, "
            "a SELECT of the products, one conditional UPDATE per line, the order and item "
            "INSERTs, COMMIT, all through DRF's request cycle and serializers): the target is "
            "the after at 1.5× its req/s or more, in the same run."
        ),
        meaning=(
            "The SQL/req column shows the write path: one statement per order against six for "
            f"the code as of {BEFORE_REGULAR_ORDER_WORK} (BEGIN, the SELECT, the UPDATE, two "
            "INSERTs, COMMIT; the one statement needs no BEGIN or COMMIT). Its web CPU per order "
            "is less than half of the older code's: no DRF request cycle or serializer for a plain "
            "body, one round trip, no read back. What a regular order still costs the web tier "
            "is mostly the JWT verification (PyJWT checks the token's base64 in pure Python), "
            "the statement's parameters and the response; PostgreSQL's share is planning and "
            "running the statement and flushing the commit's WAL. With one sync worker only one "
            "request is in flight at a time, so every wait on PostgreSQL (the commit's fsync "
            "included) leaves a core idle; more workers overlap those waits, which is why the "
            "threaded variant, with more requests in flight, can be ahead of three sync "
            "processes now that the CPU per order is small. The renderer matters little: an "
            "order body is small. Once web + PostgreSQL + k6 CPU per request times the request "
            "rate fills the two cores, more workers cannot help."
        ),
        original="HTTP/JSON 867 ms / 46 req/s -> gRPC, uvicorn x2, Go: 20 ms / 295 req/s",
    )
)

_PURCHASE_MEANING_LOCK = (
    "With `db_lock` every purchase takes the hot deal row's lock with `SELECT ... FOR UPDATE` "
    "and holds it through the per-user count, the decrement and both INSERTs up to the commit, "
    "so purchases of one deal run one at a time and their commits (WAL flushes) queue behind "
    "the lock. `db_update` folds the check into a conditional UPDATE, which still locks the row "
    "until commit: the critical section is shorter but the commit is still inside it. `redis` "
    "moves the decision (stock, limit, idempotency) into one Lua call that Redis runs in "
    "microseconds; the request then inserts its order row without any shared row lock, so "
    "commits of different purchases overlap and the web tier becomes the limit."
)

_add(
    Scenario(
        name="deal-lock-contention",
        title="Lock contention on a hot deal",
        script="deal-lock-contention.js",
        vus=200,
        open_model=True,
        stacks={
            "db_lock": pipeline("db_lock"),
            "db_update": pipeline("db_update"),
            "redis": pipeline("redis"),
            "floor": FLOOR,
        },
        variants=[
            Variant("floor", "floor", purchase=True, floor=True),
            Variant("db_lock", "db_lock", purchase=True),
            Variant("db_update", "db_update", purchase=True),
            Variant("redis", "redis", purchase=True),
        ],
        before="db_lock",
        after="redis",
        situation=(
            "A hot deal, 200 VUs, each purchase by a different shopper (per-user limit 1; every "
            "10th attempt retries the previous shopper to exercise the limit under "
            "concurrency), a unique Idempotency-Key per attempt, no think time. Closed model: "
            "enough stock that the deal never sells out (capacity). Open model: a fixed "
            "arrival rate (80 % of the slowest variant's closed-model throughput in this run) "
            "and a stock of 70 % of the offered purchases, so the deal sells out during the run "
            "and the no-oversell check is made at the boundary. `floor` is the lab's floor of "
            "a Django purchase (`apps/lab/floor`: reserve.lua behind a view with no "
            "middleware, as in deal-order-latency), for scale."
        ),
        meaning=_PURCHASE_MEANING_LOCK,
        original="SELECT FOR UPDATE 19 ms / 160 req/s -> Go channel 14 ms / 303 req/s",
    )
)

_add(
    Scenario(
        name="deal-order-latency",
        title="Deal order latency under a burst",
        script="deal-order-latency.js",
        vus=200,
        open_model=True,
        profile=True,
        stacks={
            "db_lock": pipeline("db_lock"),
            "redis": pipeline("redis"),
            "redis_async": pipeline("redis_async", worker=True),
            "floor": FLOOR,
            "redis_async_before": StackSpec(
                env={"ORDER_PIPELINE": "redis_async"},
                worker=True,
                pipeline="redis_async",
                revision=BEFORE_FLOOR_WORK,
            ),
            # What durability costs: the same pipeline answering without WAITAOF, on a gate
            # server that fsyncs once a second (the configuration shipped before the reliability
            # review).
            "redis_async_volatile": StackSpec(
                env={"ORDER_PIPELINE": "redis_async", "GATE_DURABLE_ACK": "false"},
                worker=True,
                pipeline="redis_async",
                gate_fsync="everysec",
            ),
        },
        variants=[
            Variant("health", "redis_async", {"TARGET": "health"}, reference=True),
            Variant("floor /health", "floor", {"TARGET": "health"}, reference=True),
            Variant("floor", "floor", purchase=True, floor=True),
            Variant("db_lock", "db_lock", purchase=True),
            Variant("redis", "redis", purchase=True),
            Variant(f"redis_async as of {BEFORE_FLOOR_WORK}", "redis_async_before", purchase=True),
            Variant("redis_async", "redis_async", purchase=True),
            Variant("redis_async_volatile", "redis_async_volatile", purchase=True),
        ],
        before="redis",
        after="redis_async",
        situation=(
            "The same deal burst as deal-lock-contention (200 VUs, a different shopper per "
            "purchase, per-user limit 1, unique Idempotency-Keys) through `db_lock` "
            "(deal-lock-contention's before), `redis` (Lua gate, the order row inserted in the "
            "request) and "
            "`redis_async` (Lua gate + Redis Stream in one step, 202 at once, a Celery worker "
            "drains the stream in batches with one multi-row INSERT per batch). `GET /health` "
            "on the redis_async server is the web tier's ceiling. `floor` is the same purchase "
            "at the floor of a Django request (`apps/lab/floor`: the same gunicorn "
            "configuration, Celery writer, reserve.lua and WAITAOF, with no middleware, no DRF "
            "and a fixed body; `floor /health` is its own ping), and "
            f"`redis_async as of {BEFORE_FLOOR_WORK}` the app's purchase before it was cut "
            "toward that floor (the commit's own code, served from a `git archive` of it). The "
            "runner measures, after "
            "each burst, how long until the stream backlog is empty, and from PostgreSQL the "
            "time from 202 to `confirmed` (`updated_at - created_at` of every order)."
        ),
        meaning=(
            "In `redis` each purchase still pays a PostgreSQL transaction with a commit (WAL "
            "flush) inside the request. `redis_async` answers after the Lua step and leaves the "
            "writes to the worker, which commits dozens of orders per transaction (it lingers "
            "`ORDER_STREAM_LINGER_MS` to fill a batch): PostgreSQL "
            "CPU per purchase falls, the web tier's work per request shrinks to auth + one "
            "Redis round trip, and the worker's CPU appears as a new, smaller line. The price "
            "is a short window in which the order is `pending`. Against the floor: a purchase "
            "in its common shape (JSON body of plain lines, a valid token) is answered by the "
            "view's own dispatch without DRF's request cycle (negotiation, the Request wrapper, "
            "parser and renderer lookup), with the same checks, services and error bodies (a "
            "test compares both paths answer by answer); the rate limit's address checks are "
            "cached per address, `/orders` is the first URL pattern Django tries, and no "
            "middleware builds the header dict. What is left above the floor is the middleware "
            "the API keeps (request id, metrics, proxy and body guards, security headers, host "
            "validation), simplejwt's checks around PyJWT, the rate limit, the order's input "
            "and the order body. Why redis_async stays "
            "below the target's 60% of `/health`: every process shares the same two cores, and a "
            "purchase costs about twice the web CPU of `/health` (JWT verification, the order "
            "body, one EVALSHA) plus the write behind it (worker, PostgreSQL, Redis) plus k6's "
            "own share; the `total` column is the ceiling. With 200 closed-loop VUs the p95 is "
            "roughly VUs divided by throughput, so p95 < 250 ms would need about 800 purchases/s. "
            "`redis_async_volatile` is `redis_async` without the durable acknowledgement (no "
            "`WAITAOF`, the gate fsyncing once a second, as shipped before the reliability "
            "review): the gap "
            "between the two is what it costs to answer a purchase only once its reservation is "
            "on disk (one fsync per event loop of the gate's server, shared by every purchase "
            "in it)."
        ),
        original="Go channel + DB 313 ms / 949 req/s -> Redis Lua 202 ms / 1667 req/s -> "
        "async (Redis list) 162 ms / 2668 req/s",
    )
)

_add(
    Scenario(
        name="deal-overload",
        title="A deal overloaded: the waiting room off and on",
        script="deal-overload.js",
        vus=200,
        model="overload",
        # The floor is measured beside the capacity (loadtests/overload.py); no variant of its own.
        stacks={"redis_async": pipeline("redis_async", worker=True), "floor": FLOOR},
        variants=[
            Variant("room off", "redis_async", {"MODE": "direct"}, purchase=True),
            Variant("room on", "redis_async", {"MODE": "room"}, purchase=True),
        ],
        before="room off",
        after="room on",
        situation=(
            "The deal traffic spike taken to its end: shoppers keep arriving at three times "
            "what the stack can sell, whatever the answers take (an open model), until the "
            "deal sells out. First the stack's purchase capacity is measured in the same run "
            "(the shipped `redis_async` pipeline, a closed model of 200 shoppers without think "
            "time, a fresh shopper per purchase). Then, at 3x that rate, each arrival is a "
            "different shopper: with the room off (before) they all `POST /orders` at once; "
            "with the room on (after) they join the deal's line "
            "(`POST /products/deals/{id}/queue`), poll their ticket "
            "(`GET .../queue/me`) as often as its `poll_after_s` says, and buy with the "
            "`Admission` header once admitted, or stop when the ticket says `sold_out`. The "
            "same stock in both, sized to sell out before the arrivals end. The lab measures "
            "the room's own paths too: joins per second, ticket polls at 750/s, and the "
            "shoppers admitted in every 10 s against the room's configured rate."
        ),
        meaning=(
            "Without the room every arrival is a purchase. The web tier serves its capacity; "
            "the rest wait in gunicorn's listen queue (2,048), which fills within seconds, and "
            "beyond it the kernel drops the handshake, so those shoppers retry it 1, 3, 7, "
            "15 s later and most give up at 20 s. A sync worker can't know a shopper left: it "
            "serves the queued requests of shoppers who gave up, which is the stack working "
            "for nobody after the run. Still, every request it serves is a purchase, so what "
            "it serves sells stock. With the room on, every arrival "
            "is a join first, and a join or a ticket poll is a Django request with a JWT "
            "check and one Lua call: most of what a `redis_async` purchase costs, which is "
            "itself one Lua call. So the room adds work per shopper (a join, polls, then the "
            "purchase) instead of taking it away; at three times the capacity the joins "
            "alone are more than the stack can serve, and the polls add about the room's "
            "rate on top (a waiter comes back when the turn is due). The admitted shoppers' "
            "purchases then queue behind joins and polls in the same listen queue; admitted "
            "shoppers who hear of their admission too late, or give up, hold their units "
            "until the admission lapses, so the deal does not sell out within the run and "
            "nobody in the line is told `sold_out`. The room can only help where a purchase "
            "costs much more than a join and a poll, or where the line's requests never reach "
            "the purchase's web tier: the room's endpoints on web nodes of their own, or "
            "answered at the edge (docs/scaling.md), and a join and a poll cut to the "
            "floor of a Django request (docs/architecture.md). On one 2-core box that "
            "also runs k6, three times the capacity in joins alone is more CPU than the box "
            "has, whatever the room does."
        ),
        original="- (no counterpart in Flash Deals)",
    )
)

# --- web-server: the same app under three WSGI servers (issue 13, item 3) -----------------------
# One stack per server, each serving everything the scenario asks (the cached list, redis_async
# purchases with their Celery writer); the stack key carries the pipeline, which the invariant
# check reads from the stack's name. gthread: 2 workers (one per core) x 4 threads, keep-alive 5 s
# (deploy/gunicorn.conf.py): threads don't add CPU under the GIL, they overlap the waits on Redis
# (the gate's WAITAOF fsync) and keep idle keep-alive connections off the CPU-bound path; more
# threads would only add GIL handoffs, a third process only context switches.
_WEB_APP = {"ORDER_PIPELINE": "redis_async", "CATALOG_CACHE_ENABLED": "true"}
WEB_SERVERS = {
    "gunicorn sync": "redis_async-gunicorn-sync",
    "gunicorn gthread": "redis_async-gunicorn-gthread",
    "granian": "redis_async-granian",
}
WEB_TARGETS = {"health": "health", "products": "products", "purchase": "orders"}


def _web_server_variants() -> list[Variant]:
    return [
        Variant(f"{server} {target}", stack, {"TARGET": k6}, reference=target == "health",
                purchase=target == "purchase")
        for server, stack in WEB_SERVERS.items()
        for target, k6 in WEB_TARGETS.items()
    ]  # fmt: skip


_add(
    Scenario(
        name="web-server",
        title="The web server, measured",
        script="web-server.js",
        vus=200,
        stacks={
            WEB_SERVERS["gunicorn sync"]: StackSpec(
                env={**_WEB_APP, "WEB_SERVER": "gunicorn"}, worker=True, pipeline="redis_async"
            ),
            WEB_SERVERS["gunicorn gthread"]: StackSpec(
                env={
                    **_WEB_APP,
                    "WEB_SERVER": "gunicorn",
                    "GUNICORN_WORKER_CLASS": "gthread",
                    "GUNICORN_WORKERS": "2",
                    "GUNICORN_THREADS": "4",
                },
                worker=True,
                pipeline="redis_async",
            ),  # fmt: skip
            WEB_SERVERS["granian"]: StackSpec(
                env={**_WEB_APP, "WEB_SERVER": "granian"}, worker=True, pipeline="redis_async"
            ),
        },
        variants=_web_server_variants(),
        before="gunicorn sync purchase",
        after="granian purchase",
        needs=("catalog",),
        situation=(
            "The same app, settings and data behind three web servers, each started by the "
            "Procfile's `web` line (`python -m flashdeals.serve`, which reads `WEB_SERVER`): "
            "**gunicorn sync** as shipped (`deploy/gunicorn.conf.py`: cores + 1 = 3 sync workers, "
            "one request at a time each, no keep-alive), **gunicorn gthread** (2 workers, one per "
            "core, x 4 threads, keep-alive 5 s: threads overlap the waits on Redis and hold idle "
            "keep-alive connections; more would only add GIL handoffs) and **granian**'s WSGI "
            "server (3 workers, one Python thread each, HTTP/1.1 keep-alive, the same backlog, "
            "timeouts and limits). On each: `GET /health`, the cached product list "
            "(`GET /products?page=1&size=20`, `CATALOG_CACHE_ENABLED=true`, a 1,000,000-product "
            "catalog) and a `redis_async` deal purchase (a fresh shopper per attempt, the Celery "
            "writer behind it, invariants checked after every run). 200 VUs without think time, "
            "k6 keeping its connections open wherever the server allows."
        ),
        meaning=(
            "A sync gunicorn worker closes the connection after every response, so each request "
            "also pays a TCP handshake and teardown on both sides (k6's CPU shows it) and the "
            "worker's Python HTTP parser; gthread keeps connections but parses in Python too and "
            "adds thread handoffs under the GIL. granian parses HTTP in Rust and keeps "
            "connections, which is most of `/health`'s cost: that is where it gains most. A "
            "purchase spends most of its web CPU in the application (JWT verification, the "
            "request cycle, one EVALSHA, the body), so the server's share, and what changing it "
            "can win, is smaller there; the choice below is computed on purchases per second."
        ),
        original="- (no counterpart in Flash Deals)",
    )
)

ORDER = list(SCENARIOS)
