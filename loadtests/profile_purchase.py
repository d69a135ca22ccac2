"""Where one purchase's web CPU goes: `python -m loadtests.profile_purchase [--floor] [-n N]`.

Calls the WSGI application in this process the way gunicorn's worker does (one environ per
request, the response iterated and closed), for N `redis_async` purchases by N different
shoppers on one deal, on the lab's servers (stack.start_servers). Prints the CPU time per
request and cProfile's top entries, so a change to the request path is measured by what it
takes out of it. `--floor` profiles the lab's floor (apps/lab/floor) instead of the app;
`--regular` a regular order of one line (no deal, no Idempotency-Key: order-tps-limit's).
Runs no Celery worker: the deal's stream fills up, which the profile does not see.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time

from .stack import RESULTS, base_env, prepare, start_servers


def _environ(body: bytes, token: str, key: str | None) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_IDEMPOTENCY_KEY": key,
        "HTTP_USER_AGENT": "k6",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if key is None:
        del environ["HTTP_IDEMPOTENCY_KEY"]
    return environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("loadtests.profile_purchase", description=__doc__)
    parser.add_argument("--floor", action="store_true", help="the lab's floor, not the app")
    parser.add_argument("--regular", action="store_true", help="a regular order, not a deal's")
    parser.add_argument("-n", type=int, default=3000, help="profiled purchases")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    servers = start_servers()
    env = base_env(servers) | {"ORDER_PIPELINE": "redis_async"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    users_file = RESULTS / "profile-users.json"
    warm = 300
    prepare(env, "users", "--count", str(args.n + warm), "--out", str(users_file))
    spec = RESULTS / "profile-deal.json"
    units = 10 * (args.n + warm)
    deal_spec = {"name": "profile", "stock": units, "gate": True}
    if args.regular:
        deal_spec = {"name": "profile", "stock": 0, "extra_stock": units, "product_only": True}
    spec.write_text(json.dumps([deal_spec]))
    prepare(env, "deals", "--spec", str(spec), "--out", str(spec.with_suffix(".out.json")))
    deal = json.loads(spec.with_suffix(".out.json").read_text())["profile"]
    tokens = [u["token"] for u in json.loads(users_file.read_text())]

    settings_module = "apps.lab.floor.settings" if args.floor else env["DJANGO_SETTINGS_MODULE"]
    os.environ.update(env | {"DJANGO_SETTINGS_MODULE": settings_module})
    from django.core.wsgi import get_wsgi_application  # after the environment is set

    application = get_wsgi_application()
    line = {"product_id": deal["product_id"], "deal_id": deal.get("deal_id"), "quantity": 1}
    if args.regular:
        del line["deal_id"]
    body = json.dumps({"items": [line]}).encode()
    statuses: dict[str, int] = {}

    def buy(i: int) -> None:
        def start_response(status, headers, exc_info=None):
            statuses[status] = statuses.get(status, 0) + 1

        key = None if args.regular else f"profile-{time.time_ns()}-{i}"
        response = application(_environ(body, tokens[i], key), start_response)
        b"".join(response)
        response.close()

    for i in range(warm):
        buy(i)
    statuses.clear()
    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on Redis
    cpu = time.process_time()
    profiler.enable()
    for i in range(warm, warm + args.n):
        buy(i)
    profiler.disable()
    cpu = time.process_time() - cpu
    print(f"{'floor' if args.floor else 'app'}: {args.n} purchases, statuses {statuses}, "
          f"{1000 * cpu / args.n:.3f} ms CPU per purchase under cProfile")  # fmt: skip
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
