"""gunicorn settings for `make run`, load tests and production (override with env vars).

Sync workers, one per core plus one: each request is a few milliseconds of CPU with short waits
on PostgreSQL/Redis, so more workers than cores only adds context switches (measured in
docs/scenarios/order-tps-limit.md). GUNICORN_WORKER_CLASS=gthread and GUNICORN_THREADS let the
load-test lab compare models.
"""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Sync workers behind no proxy: k6 holds connections open; keep-alive needs a threaded worker.
keepalive = 5
backlog = 2048
timeout = 30
graceful_timeout = 10
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
preload_app = False
# Only the proxy in TRUSTED_PROXIES (the same setting Django reads) may tell gunicorn, with
# X-Forwarded-Proto, that the client used HTTPS; unset, gunicorn trusts no one (its own default
# would trust 127.0.0.1). Behind deploy/nginx.conf on the same machine: TRUSTED_PROXIES=127.0.0.1.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "")
# Above deploy/nginx-server.conf's 6 KB buffers, so nginx (whose errors are JSON) refuses an
# oversized request line or header before gunicorn would answer its own HTML 400.
limit_request_line = 8190
limit_request_field_size = 8190
