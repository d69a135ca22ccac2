"""Settings shared by every environment. Every knob comes from the environment (.env.example).

The entry modules (local, production, test) read `.env` first (flashdeals/envfile.py: the
environment wins over `.env`, which wins over the defaults here); every value is read strictly
(variables.py), so a malformed one stops the start with a message naming the variable."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ

from .pooling import transaction_pooling
from .variables import StrictEnv

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = StrictEnv()

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Feature switches compared by the performance scenarios (docs/scenarios/) ---------------------
# Silk profiles every request; on in `make run`, off in tests and load tests.
SILK_ENABLED = env.bool("SILK_ENABLED", default=False)
# "stateless": trust the signed JWT claims (no user row per request).
# "database": load the user row on every request (the auth-cpu-bottleneck "before").
AUTH_MODE = env.choice("AUTH_MODE", ("stateless", "database"), default="stateless")
# Stateless mode: how often each process re-reads the users deactivated or deleted within the
# token lifetime (apps.accounts.revocation): the delay before another process refuses them.
AUTH_REVOCATION_REFRESH_SECONDS = env.float("AUTH_REVOCATION_REFRESH_SECONDS", default=1.0)
# Cache-aside for product/deal reads (product-list-slow); off is the "before".
CATALOG_CACHE_ENABLED = env.bool("CATALOG_CACHE_ENABLED", default=True)
CATALOG_CACHE_TTL = env.int("CATALOG_CACHE_TTL", default=300)
# Deal order pipeline: db_lock | db_update | redis | redis_async (deal-lock-contention, ...).
ORDER_PIPELINE = env.choice(
    "ORDER_PIPELINE", ("db_lock", "db_update", "redis", "redis_async"), default="redis_async"
)
# The redis_async batch writer: batch size, when a dead consumer's entries are re-claimed, how
# many failed deliveries dead-letter an entry, when an orphaned reservation is swept.
ORDER_STREAM_BATCH = env.int("ORDER_STREAM_BATCH", default=500)
ORDER_STREAM_LINGER_MS = env.int("ORDER_STREAM_LINGER_MS", default=100)
ORDER_STREAM_RECLAIM_IDLE_MS = env.int("ORDER_STREAM_RECLAIM_IDLE_MS", default=15_000)
ORDER_STREAM_MAX_DELIVERIES = env.int("ORDER_STREAM_MAX_DELIVERIES", default=3)
ORDER_PENDING_SWEEP_AGE_MS = env.int("ORDER_PENDING_SWEEP_AGE_MS", default=30_000)
# How long a shopper's Idempotency-Key stays bound to the body it first came with, across all
# of their orders (apps.deals.gate.idempotency); PostgreSQL's unique key is the backstop after.
IDEMPOTENCY_CLAIM_TTL_SECONDS = env.int("IDEMPOTENCY_CLAIM_TTL_SECONDS", default=24 * 3600)
# The waiting room (apps/deals/gate/room.py; docs/operator-guide.md). A deal whose admission rate
# is "automatic" (0) admits this many shoppers per second: set it to about 80% of the accepted
# purchases per second `make loadtest SCENARIO=deal-overload` measures for your stack (its
# capacity phase), so admitted shoppers find the servers below saturation.
WAITING_ROOM_AUTO_RATE = env.int("WAITING_ROOM_AUTO_RATE", default=400)
# Longest pause a waiting shopper is told to make between polls (each is told to come back when
# their turn is due, within this): a sell-out reaches every waiter within it. Shorter costs more
# polls per second from the back of a long line.
WAITING_ROOM_MAX_POLL_SECONDS = env.int("WAITING_ROOM_MAX_POLL_SECONDS", default=20)
# Seconds a web process answers a sold-out deal's purchases from memory, without the gate
# (apps.deals.gate.sold_out). Units given back in another process can't clear this process's
# flag, so it expires by itself: after a cancel, other processes may still answer "sold out"
# for up to this long. 2 s is that price; a crowd retrying a sold-out deal then costs Redis
# one purchase per process every 2 s. 0 turns the memory off.
SOLD_OUT_MEMORY_SECONDS = env.float("SOLD_OUT_MEMORY_SECONDS", default=2.0)
# Remembering a sell-out reads which shoppers bought the deal with an Idempotency-Key (their keyed
# retries still go to the gate, which answers with their order); past this many keyed purchases
# that read is skipped and every keyed purchase goes to the gate.
SOLD_OUT_MEMORY_MAX_KEYED = env.int("SOLD_OUT_MEMORY_MAX_KEYED", default=20_000)
# Order list: prefetch items ("after") or touch them lazily per order (order-list-slow "before").
ORDER_LIST_PREFETCH = env.bool("ORDER_LIST_PREFETCH", default=True)
# JSON renderer: "orjson" (fast) or "drf" (DRF's default, the order-tps-limit "before").
API_RENDERER = env.choice("API_RENDERER", ("orjson", "drf"), default="orjson")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here (no CDN; works offline)
    "apps.core",
    "apps.accounts",
    "apps.catalog",
    "apps.deals",
    "apps.orders",
    "apps.lab",
]

# Addresses (or CIDR networks) of the reverse proxy in front of the app, e.g. "127.0.0.1" for
# deploy/nginx.conf on the same machine. Only these may set X-Forwarded-Proto/-For/-Host
# (apps.core.middleware.TrustedProxyMiddleware drops them from anyone else); empty: nobody.
TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES")

MIDDLEWARE = [
    "apps.core.middleware.TrustedProxyMiddleware",
    # Before anything that reads the body (Silk included): 413 from Content-Length, 400 for NUL.
    "apps.core.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Sessions, CSRF, auth and messages only serve the admin and Silk; the JSON API skips them
    # (they cost ~40% of a trivial view). See apps/core/middleware.py.
    "apps.core.middleware.BrowserOnlyMiddleware",
]
# The admin's checks look for its middleware by name in MIDDLEWARE; BrowserOnlyMiddleware runs
# exactly those for /admin, so the checks are satisfied in substance.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]
if SILK_ENABLED:
    # Silk needs session/auth middleware globally; a profiling run pays for them anyway.
    from apps.core.middleware import BROWSER_MIDDLEWARE

    INSTALLED_APPS.append("silk")
    MIDDLEWARE[-1:] = [*BROWSER_MIDDLEWARE, "silk.middleware.SilkyMiddleware"]
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True  # staff only
    # Python profiling (cProfile, docs/profiling.md): every request with SILK_PYTHON_PROFILER=true;
    # otherwise only a request that asks with an `X-Silk-Profile: 1` header (the lab's capture).
    SILK_PYTHON_PROFILER = env.bool("SILK_PYTHON_PROFILER", default=False)

    def _silk_profile(request) -> bool:  # type: ignore[no-untyped-def]
        return SILK_PYTHON_PROFILER or request.headers.get("X-Silk-Profile") == "1"

    SILKY_PYTHON_PROFILER = SILK_PYTHON_PROFILER
    SILKY_PYTHON_PROFILER_FUNC = _silk_profile
    # The profile as a pstats file too: Silk's text rounds every time to 1 ms, which hides all of
    # a light request's functions (the lab's capture reads the file: apps/lab/silk_records.py).
    SILKY_PYTHON_PROFILER_BINARY = env.bool("SILK_PROFILE_FILES", default=False)
    SILKY_PYTHON_PROFILER_RESULT_PATH = str(BASE_DIR / ".devdata" / "silk-profiles")
    if SILKY_PYTHON_PROFILER_BINARY:  # Silk opens the file there without creating the directory
        Path(SILKY_PYTHON_PROFILER_RESULT_PATH).mkdir(parents=True, exist_ok=True)
    SILKY_DELETE_PROFILES = True  # "Clear DB" removes the files with the rows
    # Request and response bodies (masked, apps/core/silk.py): -1 records any size, 0 none.
    SILKY_MAX_REQUEST_BODY_SIZE = SILKY_MAX_RESPONSE_BODY_SIZE = (
        -1 if env.bool("SILK_RECORD_BODIES", default=True) else 0
    )
    # Silk's own garbage collection keeps its tables bounded in a long `make run`: on this
    # percentage of its saves it deletes the oldest requests (their queries and profiles with
    # them) down to max - 100 / percent (docs/profiling.md, "Bounded").
    SILKY_MAX_RECORDED_REQUESTS = env.int("SILK_MAX_RECORDED_REQUESTS", default=10_000, minimum=1)
    SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = env.int(
        "SILK_MAX_RECORDED_REQUESTS_CHECK_PERCENT", default=10, minimum=1
    )
    SILKY_META = True
    # Never store secrets (apps/core/silk.py): request/response JSON values under keys matching
    # these (case-insensitive substrings), the Authorization and Cookie headers, Set-Cookie, and
    # SQL whose text carries a refresh token, a session key or a password hash.
    SILKY_SENSITIVE_KEYS = {
        "password",
        "token",  # access_token, refresh_token, token_type's siblings
        "access",
        "refresh",
        "secret",
        "key",  # also the Idempotency-Key header
        "authorization",
        "signature",
        "session",
        "csrf",
        "api",
        "username",
    }
    SILKY_HIDE_COOKIES = True
    SILKY_IGNORE_QUERIES = [
        "token_blacklist_",
        "django_session",
        "pbkdf2_sha256$",
        "argon2$",
        "bcrypt",
        "md5$",
    ]

# The largest request body accepted (bytes), checked from Content-Length before anything reads
# it: 413 PAYLOAD_TOO_LARGE above it (apps.core.middleware.RequestGuardMiddleware). The API
# takes small JSON bodies (an order is ~200 bytes); the admin's largest form, an action on a
# full page of selected rows, is a few KB. deploy/nginx.conf's client_max_body_size matches.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

ROOT_URLCONF = "flashdeals.urls"
WSGI_APPLICATION = "flashdeals.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": environ.Env.db_url_config(
        env.url(
            "DATABASE_URL",
            ("postgres", "postgresql"),
            default="postgres://postgres@127.0.0.1:5432/flashdeals",
        )
    )
}
# Persistent connections with health checks: opening a PostgreSQL connection per request costs
# more than most of our queries (deal-traffic-spike).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# True when DATABASE_URL points at PgBouncer (or another pooler) in transaction mode: a server
# connection is ours for one transaction only, so no server-side cursor and no named prepared
# statement may outlive one (flashdeals/settings/pooling.py; deploy/README.md, "PgBouncer").
DB_TRANSACTION_POOLING = env.bool("DB_TRANSACTION_POOLING", default=False)
if DB_TRANSACTION_POOLING:
    DATABASES["default"] = transaction_pooling(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the deal gate and streams (db from REDIS_URL), the cache, and the Celery broker -------


def redis_db(url: str) -> int:
    """The database a redis://, rediss:// or unix:// URL names: its `db` query argument (which
    redis-py prefers), else its path, else 0."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    return int(path) if path else 0


def redis_url_with_db(url: str, db: int) -> str:
    """`url` naming database `db` of the same server (the path, or `?db=` for a unix socket)."""
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "db"]
    if parts.scheme == "unix":  # (urlunsplit would drop the empty host: unix:/path)
        return f"{url.split('?', 1)[0]}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


REDIS_SCHEMES = ("redis", "rediss", "unix")
REDIS_URL = env.url("REDIS_URL", REDIS_SCHEMES, default="redis://127.0.0.1:6379/0")
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="fd")
# The deal gate's server (apps/deals/gate/client.py); unset: REDIS_URL's. A Valkey/Redis Cluster
# is named by its seed nodes: redis+cluster://host1:port1,host2:port2 (docs/scaling.md). REDIS_URL
# keeps what needs no sharding (rate limits, token revocation, the beat's heartbeat).
GATE_REDIS_URL = env.url("GATE_REDIS_URL", (*REDIS_SCHEMES, "redis+cluster"), default="")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)
# /health/ready and the go-live preflight refuse a gate server (GATE_REDIS_URL's, else REDIS_URL's;
# each primary of a cluster) whose maxmemory-policy is not noeviction or (with GATE_DURABLE_ACK)
# that has no AOF. Turn off only where CONFIG is disabled
# and the provider sets both.
REDIS_EVICTION_CHECK = env.bool("REDIS_EVICTION_CHECK", default=True)
# Durable acknowledgement (docs/reliability.md): every reservation is followed, in the same round
# trip, by WAITAOF: the purchase is answered only once the gate's server has fsynced it to its AOF
# (and GATE_WAITAOF_REPLICAS replicas have it). Needs appendonly yes; appendfsync always makes
# the wait one shared fsync per event loop (everysec would make every purchase wait for the next
# second's fsync). Off only to measure what durability costs (the lab's deal-order-latency).
GATE_DURABLE_ACK = env.bool("GATE_DURABLE_ACK", default=True)
GATE_WAITAOF_REPLICAS = env.int("GATE_WAITAOF_REPLICAS", default=0)
GATE_WAITAOF_TIMEOUT_MS = env.int("GATE_WAITAOF_TIMEOUT_MS", default=1000)
# The cache never shares the gate's database: by default it takes the next database of the same
# server (REDIS_URL .../0 -> .../1; set CACHE_URL when REDIS_URL names the server's last one). In
# production give it a server of its own (CACHE_URL), which may evict (allkeys-lru): the gate's
# must not (noeviction, checked above), and a cache filling a shared noeviction server turns into
# failed cache writes. An empty CACHE_URL counts as unset.
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": env.url("CACHE_URL", REDIS_SCHEMES, default="")
        or redis_url_with_db(REDIS_URL, redis_db(REDIS_URL) + 1),
        "KEY_PREFIX": f"{REDIS_KEY_PREFIX}:cache",
        "OPTIONS": {
            "PARSER_CLASS": "redis.connection._HiredisParser",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # A cache outage must not take reads down: fall back to the database, log a warning.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CELERY_BROKER_URL = env.url("CELERY_BROKER_URL", REDIS_SCHEMES, default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Safety nets around the prompt, per-purchase drain kick: re-claim, sweep, restart drains.
    "streams-maintain": {"task": "apps.orders.tasks.streams_maintain_task", "schedule": 5.0},
    # Load deal state into Redis ahead of starts_at (and rebuild it if Redis lost it); close
    # deals past their end once their stream is drained.
    "deals-prepare": {"task": "apps.orders.tasks.deals_prepare_task", "schedule": 15.0},
    "deals-reconcile": {"task": "apps.orders.tasks.reconcile_deals_task", "schedule": 60.0},
    # Drop reconciliation reports past RECONCILIATION_RETENTION_DAYS (each deal's newest stays).
    "reconciliation-prune": {
        "task": "apps.orders.tasks.prune_reconciliation_reports_task",
        "schedule": 3600.0,
    },
}
# Days a reconciliation report is kept (beat writes one per open deal every minute); a deal's
# newest report is kept whatever its age, as the result its post-sale report shows.
RECONCILIATION_RETENTION_DAYS = env.int("RECONCILIATION_RETENTION_DAYS", default=7, minimum=1)

AUTH_USER_MODEL = "accounts.User"
# Silk (and any staff-only page) sends anonymous visitors to the admin's login.
LOGIN_URL = "/admin/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": [
        "apps.core.renderers.OrjsonRenderer"
        if API_RENDERER == "orjson"
        else "rest_framework.renderers.JSONRenderer"
    ],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ContractAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SECRET", default=SECRET_KEY),
    "TOKEN_TYPE_CLAIM": "type",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "flashdeals API",
    "DESCRIPTION": "First come, first served flash sales. Errors are always "
    '`{"error", "message", "details"}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the pinned drf-spectacular-sidecar package, as static files of this app:
    # no CDN, no `@latest`, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.time_zone("TIME_ZONE", default="Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOG_LEVEL = env.choice(
    "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), default="INFO"
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# seed_demo (make run) may create accounts with the published demo passwords below. Production
# settings turn this off: there, seed_demo needs passwords of the operator's own (docs/security.md).
DEMO_PUBLISHED_PASSWORDS_ALLOWED = True
DEMO_ADMIN_EMAIL = env.str("DEMO_ADMIN_EMAIL", default="admin@flashdeals.local")
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="admin-pass-123")
DEMO_SHOPPER_EMAIL = env.str("DEMO_SHOPPER_EMAIL", default="shopper@flashdeals.local")
DEMO_SHOPPER_PASSWORD = env.str("DEMO_SHOPPER_PASSWORD", default="shopper-pass-123")

# --- Operator console, metrics and logs (docs/operator-guide.md) ---------------------------------
# Request ids first (every later log line carries one), request metrics right after.
MIDDLEWARE.insert(0, "apps.core.logging.RequestIdMiddleware")
MIDDLEWARE.insert(1, "apps.core.metrics.MetricsMiddleware")
# Live deal page: how many seconds of purchases/s the chart shows.
CONSOLE_RATE_WINDOW_SECONDS = env.int("CONSOLE_RATE_WINDOW_SECONDS", default=300)
# Live deal page and deal admin: reservations accepted longer ago than this and still not written
# are listed (the writer takes under a second; the sweep writes leftovers after
# ORDER_PENDING_SWEEP_AGE_MS, so one still listed is stuck).
CONSOLE_PENDING_OVERDUE_SECONDS = env.int("CONSOLE_PENDING_OVERDUE_SECONDS", default=30)
# Operator console: the one zone every time is shown in (labelled, with the stored UTC instant as
# its tooltip), and the currency of every amount. Amounts are stored as integers in the
# currency's minor unit (KRW has none: 199000 is KRW 199,000; USD 1999 is USD 19.99).
CONSOLE_TIME_ZONE = env.time_zone("CONSOLE_TIME_ZONE", default=TIME_ZONE)
CURRENCY_MINOR_UNITS = {"KRW": 0, "JPY": 0, "USD": 2, "EUR": 2}  # ISO 4217 exponents
CURRENCY = env.choice("CURRENCY", CURRENCY_MINOR_UNITS, default="KRW")
# Go-live preflight: how long to wait for a Celery worker to answer a ping, and how old beat's
# heartbeat may be before beat counts as down (the heartbeat task runs every 10 s).
PREFLIGHT_PING_TIMEOUT = env.float("PREFLIGHT_PING_TIMEOUT", default=1.0)
BEAT_HEARTBEAT_MAX_AGE = env.int("BEAT_HEARTBEAT_MAX_AGE", default=45)
CELERY_BEAT_SCHEDULE["beat-heartbeat"] = {
    "task": "apps.core.tasks.beat_heartbeat_task",
    "schedule": 10.0,
}

# Prometheus endpoint /metrics: open to staff sessions, or to `Authorization: Bearer <token>`
# with this token (empty: staff only). Under gunicorn with several workers set
# PROMETHEUS_MULTIPROC_DIR (an empty directory) so the request metrics add up across workers.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Logs: "json" (one object per line, with request_id and Celery task ids, for a log shipper) or
# "plain" (one short line for a terminal, apps.core.logging.PlainFormatter).
LOG_FORMAT = env.choice("LOG_FORMAT", ("json", "plain"), default="json")
# Traces (apps.core.tracing, docs/observability.md): off unless an OTLP/HTTP endpoint is set
# (the collector's base URL; spans go to <endpoint>/v1/traces). Off, no instrumentation is loaded.
OTEL_EXPORTER_OTLP_ENDPOINT = env.url("OTEL_EXPORTER_OTLP_ENDPOINT", ("http", "https"), default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="flashdeals")
# One line per request (method, path with query string, status, milliseconds, request id) from
# apps.core.metrics.MetricsMiddleware, logger `flashdeals.request`. gunicorn's access log stays
# off (deploy/gunicorn.conf.py): this line replaces it.
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=False)
if LOG_REQUESTS:
    # That line has the status: Django's own "Not Found: /x" warning for every 4xx would be a
    # second line per request. Its 5xx errors, with their tracebacks, still show.
    LOGGING["loggers"]["django.request"] = {"level": "ERROR"}
LOGGING["filters"] = {"request_id": {"()": "apps.core.logging.RequestIdFilter"}}
LOGGING["formatters"]["json"] = {"()": "apps.core.logging.JsonFormatter"}
LOGGING["formatters"]["plain"] = {"()": "apps.core.logging.PlainFormatter"}
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
LOGGING["handlers"]["console"]["filters"] = ["request_id"]
if LOG_FORMAT == "plain":
    # A terminal shows what the tasks did (their own lines), not Celery's note of every run:
    # "Task ... received", "Task ... succeeded in 0.002s: None" and beat's "Sending due task"
    # for every periodic task, about 70 lines a minute on an idle stack. A failing task still
    # logs at ERROR. The worker and beat log through this LOGGING too (apps.core.logging).
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        LOGGING["loggers"][name] = {"level": "WARNING"}

# --- One scheduler on many nodes (deploy/README.md "One scheduler, graceful shutdown") -----------
# celery-redbeat keeps the schedule (each entry's last run) in Redis and sends only while it holds
# a lock there, so every node may run `celery beat`: one sends, the others block on the lock. The
# active beat renews the lock (to BEAT_LOCK_TIMEOUT from now) on every tick, and it ticks at least
# every BEAT_MAX_LOOP_INTERVAL; a standby tries to take it every BEAT_MAX_LOOP_INTERVAL. A beat
# stopped with SIGTERM releases the lock, so a standby sends within BEAT_MAX_LOOP_INTERVAL (5 s);
# one that dies (SIGKILL, a lost machine) holds it until it expires, so a standby sends within
# BEAT_LOCK_TIMEOUT + BEAT_MAX_LOOP_INTERVAL (20 s) of the death. The timeout is 3 ticks, so one
# slow tick does not hand the lock over; a beat whose renewal finds the lock taken exits (a
# supervisor restarts it as a standby) instead of sending alongside the new owner.
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = env.float("BEAT_MAX_LOOP_INTERVAL", default=5.0)
# redbeat reads its settings under their own names (redbeat_*): behind the CELERY_ namespace its
# check for "is this set?" misses them, so it would ignore the options below and could not be
# told REDBEAT_LOCK_KEY = None (the test settings' negative control).
REDBEAT_LOCK_TIMEOUT = env.int("BEAT_LOCK_TIMEOUT", default=15)
# The broker's Redis, not the gate's (REDIS_URL): the gate may be a Valkey Cluster, which
# Celery's Redis transport cannot use and redbeat is not set up for here (its cluster mode needs
# redis-cluster:// URLs and options of its own); the broker is always one plain server.
REDBEAT_REDIS_URL = CELERY_BROKER_URL
REDBEAT_KEY_PREFIX = f"{REDIS_KEY_PREFIX}:redbeat:"  # keys fd:redbeat:<entry>, ...::lock
# Without options of its own redbeat would read (and warn about) the broker's transport options.
REDBEAT_REDIS_OPTIONS = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
}

# --- Rate limits (docs/security.md "Rate limits") -------------------------------------------------
# Each rule is a `limits` string: "<count>/<period>" ("5/minute", "10/30 seconds"), several
# separated by ";" ("5/minute;50/hour"). Moving window, in the gate's Redis under their own key
# prefix, every key expiring with its window (apps/core/ratelimit.py). The client address is the
# peer's, or with TRUSTED_PROXIES the right-most X-Forwarded-For hop that is not a trusted proxy.
RATE_LIMITS = {
    # Wrong passwords against one account, from every address together, checked before the
    # password hash. Small and short: a guesser gets 5 a minute, and a real user locked out by
    # one waits at most a minute after the guessing stops.
    "login_account": env.rate_limits("RATE_LIMIT_LOGIN_ACCOUNT", default="5/minute"),
    # Logins from one client address (API and /admin/login/), whatever the account: bigger, for
    # shoppers behind one NAT.
    "login_address": env.rate_limits("RATE_LIMIT_LOGIN_ADDRESS", default="30/minute"),
    "register_address": env.rate_limits("RATE_LIMIT_REGISTER_ADDRESS", default="10/hour"),
    "refresh_address": env.rate_limits("RATE_LIMIT_REFRESH_ADDRESS", default="60/minute"),
    "readiness_address": env.rate_limits("RATE_LIMIT_READINESS_ADDRESS", default="120/minute"),
    # Purchases (POST /orders) and waiting-room joins, per shopper and per client address.
    # One window each (every extra window is one more Redis round trip on the hot path). A
    # person clicking "buy" does it a few times a second at most, so 5 a second never meets an
    # honest shopper; a script behind one account gets no more than that.
    "purchase_shopper": env.rate_limits("RATE_LIMIT_PURCHASE_SHOPPER", default="5/second"),
    # An address may be a NAT, a campus or a carrier's CGNAT with hundreds of shoppers buying
    # in the deal's first seconds, so 20 times the shopper's limit. It stops one host cycling
    # through many accounts; the lab and black-box drivers that run thousands of shoppers from
    # one address are exempted (RATE_LIMIT_EXEMPT_ADDRESSES), not given a bigger number.
    "purchase_address": env.rate_limits("RATE_LIMIT_PURCHASE_ADDRESS", default="100/second"),
    "queue_join_shopper": env.rate_limits("RATE_LIMIT_QUEUE_JOIN_SHOPPER", default="5/second"),
    "queue_join_address": env.rate_limits("RATE_LIMIT_QUEUE_JOIN_ADDRESS", default="100/second"),
}
# Client addresses (or CIDR networks) no rate limit applies to: the load-test lab, black-box
# clients that drive many shoppers from one address, test suites. Empty: everyone is limited.
RATE_LIMIT_EXEMPT_ADDRESSES = env.networks("RATE_LIMIT_EXEMPT_ADDRESSES")

# --- Negative controls: test-only switches that turn a real protection off -----------------------
# Never set these outside tests, and never from the environment: each exists only so a negative
# control can race the app's own code path with its protection off and show the race is real
# (docs/style-guide.md, Tests). Tests flip them with pytest-django's `settings` fixture.
# True: apps.catalog.services.product_stock_adjust reads the stock, checks and adds in Python and
# writes the result back (lost updates) instead of its conditional UPDATE.
CATALOG_STOCK_NAIVE_WRITES = False
# With CATALOG_STOCK_NAIVE_WRITES: a callable that naive write calls between its read and its
# write (e.g. a barrier's `wait`), so a control can make every racer read before any writes.
CATALOG_STOCK_NAIVE_AFTER_READ = None
# True: apps.catalog.cache.cache_aside fills a cold key without the stampede lock, so every
# concurrent miss computes the value.
CATALOG_CACHE_NAIVE_FILLS = False
# True: the db_lock pipeline (apps.orders.services.db_pipelines) reads the deal without locking
# its row, so its per-user-limit check (read the units held, then insert) races.
ORDER_UNSAFE_SKIP_DEAL_LOCK = False
# True: apps.deals.gate.deal_reserve checks stock and the per-user limit in a read of its own
# and then runs reserve.lua with its checks block cut out (check-then-act over two round trips)
# instead of deciding in the script's one atomic step.
GATE_UNSAFE_SPLIT_RESERVE = False
# With GATE_UNSAFE_SPLIT_RESERVE: a callable the split reserve calls between its read and the
# script (e.g. a barrier's `wait`), so a control can make every racer read before any writes.
GATE_UNSAFE_SPLIT_RESERVE_AFTER_READ = None
# True: apps.orders.services.order_place skips the Idempotency-Key claim, so a key reused with
# another body on another deal (or a regular order) is caught only by PostgreSQL afterwards.
ORDER_UNSAFE_SKIP_IDEMPOTENCY_CLAIM = False
# True: apps.deals.gate.deal_reserve runs reserve.lua with its "claim order" block cut out: a
# keyed retry whose key the deal's idem hash lost (the claim still names the order) is accepted
# again as a second order for the key instead of getting the first one.
GATE_UNSAFE_SKIP_CLAIM_ORDER = False
# True: apps.deals.gate.deal_reserve runs reserve.lua with its admission block cut out, so a
# purchase on a deal whose waiting room is on passes without an admission.
WAITING_ROOM_UNSAFE_SKIP_ADMISSION = False
# True: stateless authentication (apps.accounts.authentication) skips the revoked-users check,
# so a deactivated or deleted user's unexpired token reaches the services and their backstops.
AUTH_UNSAFE_SKIP_REVOCATION = False
# True: apps.core.ratelimit reads a window, decides in Python and then records the hit (DRF's
# throttles' read-then-write) instead of the library's one atomic script, so racers all pass.
RATE_LIMIT_UNSAFE_READ_THEN_WRITE = False
# With RATE_LIMIT_UNSAFE_READ_THEN_WRITE: a callable that split hit calls with the rule's name
# between its read and its write (e.g. a barrier's `wait`).
RATE_LIMIT_UNSAFE_AFTER_READ = None
# True: apps.orders.admin.export_rows reads through a server-side cursor (`.iterator()`, as it
# did before keyset pagination), which PgBouncer in transaction mode breaks unless
# DB_TRANSACTION_POOLING turns server-side cursors off.
ORDER_EXPORT_UNSAFE_SERVER_CURSOR = False
