"""Where one purchase's web CPU goes: `python -m loadtests.profile_purchase [--floor]
[--root DIR] [-n N] [--json]`.

Calls the WSGI application in this process the way gunicorn's worker does (one environ per
request, the response iterated and closed), for N `redis_async` purchases by N different
shoppers on one deal, on the lab's servers (stack.start_servers): first without a profiler, for
the CPU time per purchase, then N more under cProfile with a CPU clock, for where it goes (own
time by function, and by package). `--floor` profiles the lab's floor (apps/lab/floor) instead
of the app; `--root` an older checkout's app (stack.checkout). No Celery worker runs: the deal's
stream fills up, which the profile does not see. deal-order-latency's page shows the three.
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
from collections import defaultdict
from pathlib import Path

from .stack import RESULTS, base_env, prepare, start_servers

WARM = 300


def _environ(body: bytes, token: str, key: str) -> dict:
    return {
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


def _package(filename: str) -> str:
    """The package a profiled function belongs to: `django`, `rest_framework`, `jwt`,
    `apps.orders`, `stdlib`, ..."""
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if "apps" in path.parts:
        return "apps." + path.parts[path.parts.index("apps") + 1]
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    return "stdlib" if "python3" in filename else path.parent.name


def profile(args: argparse.Namespace) -> dict:
    servers = start_servers()
    env = base_env(servers) | {"ORDER_PIPELINE": "redis_async"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}"
    users_file = RESULTS / f"profile-users-{tag}.json"
    # Fresh shoppers for every purchase (limit 1 each), from the lab's own user list.
    prepare(env, "users", "--count", str(2 * args.n + WARM), "--out", str(users_file))
    spec = RESULTS / f"profile-deal-{tag}.json"
    spec.write_text(json.dumps([{"name": "profile", "stock": 10 * (2 * args.n + WARM)}]))
    prepare(env, "deals", "--spec", str(spec), "--out", str(spec.with_suffix(".out.json")))
    deal = json.loads(spec.with_suffix(".out.json").read_text())["profile"]
    tokens = [u["token"] for u in json.loads(users_file.read_text())]
    for file in (users_file, spec, spec.with_suffix(".out.json")):
        file.unlink()

    settings_module = "apps.lab.floor.settings" if args.floor else env["DJANGO_SETTINGS_MODULE"]
    os.environ.update(env | {"DJANGO_SETTINGS_MODULE": settings_module})
    if args.root:
        sys.path.insert(0, str(args.root))  # that checkout's apps and settings, not this one's
    from django.core.wsgi import get_wsgi_application  # after the environment and the path

    application = get_wsgi_application()
    line = {"product_id": deal["product_id"], "deal_id": deal["deal_id"], "quantity": 1}
    body = json.dumps({"items": [line]}).encode()
    statuses: dict[str, int] = defaultdict(int)

    def start_response(status, headers, exc_info=None):
        statuses[status.split()[0]] += 1

    def buy(i: int) -> None:
        response = application(_environ(body, tokens[i], f"profile-{tag}-{i}"), start_response)
        b"".join(response)
        response.close()

    for i in range(WARM):
        buy(i)
    statuses.clear()
    cpu = time.process_time()
    for i in range(WARM, WARM + args.n):
        buy(i)
    cpu_ms = 1000 * (time.process_time() - cpu) / args.n
    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on Redis
    profiler.enable()
    for i in range(WARM + args.n, WARM + 2 * args.n):
        buy(i)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, own, cum, callers)}
    own_total = sum(own for _, _, own, _, _ in stats.values()) or 1.0
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, own, _, _) in stats.items():
        by_package[_package(filename)] += own
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]
    return {
        "what": "floor"
        if args.floor
        else ("app as of " + Path(args.root).name if args.root else "app"),  # fmt: skip
        "purchases": args.n,
        "statuses": dict(statuses),
        "cpu_ms_per_purchase": round(cpu_ms, 4),
        "packages": {
            k: round(100 * v / own_total, 1)
            for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])
        },  # fmt: skip
        "top": [
            {
                "function": f"{_package(f)}:{Path(f).name}:{line}({name})",
                "own_share": round(100 * own / own_total, 1),
                "calls_per_purchase": nc / args.n,
            }
            for (f, line, name), (_, nc, own, _, _) in top
        ],  # fmt: skip
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("loadtests.profile_purchase", description=__doc__)
    parser.add_argument("--floor", action="store_true", help="the lab's floor, not the app")
    parser.add_argument("--root", type=Path, help="an older checkout (stack.checkout) to profile")
    parser.add_argument("-n", type=int, default=2000, help="purchases per phase")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="one JSON line (the lab reads it)")
    args = parser.parse_args(argv)
    found = profile(args)
    if args.json:
        print(json.dumps(found))
        return 0
    print(f"{found['what']}: {found['cpu_ms_per_purchase']:.3f} ms CPU per purchase "
          f"({found['purchases']} purchases, statuses {found['statuses']})")  # fmt: skip
    print("own CPU time under cProfile by package (%):", found["packages"])
    for row in found["top"]:
        print(f"{row['own_share']:5.1f}%  {row['calls_per_purchase']:6.1f}/purchase  "
              f"{row['function']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
