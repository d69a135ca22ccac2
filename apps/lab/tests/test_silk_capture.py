"""The lab's Silk capture (loadtests/silk_capture.py, `loadtest_prepare silk`) on a real gunicorn
with Silk on, against the test database: what Silk records of order-list-slow's request is the
query count Django's test client measures for it (`loadtest_prepare probe`), with and without the
N+1; and Silk's own garbage collection keeps exactly the bound it is given."""

import cProfile
import json
import marshal
import os
import pstats
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from apps.core.tests.celery_worker import ROOT, worker_database_url
from apps.core.tests.gunicorn_server import Gunicorn
from apps.lab.silk_records import (
    PROFILE_TOP,
    duplicates,
    profile_file_top,
    profile_top,
    query_shape,
)
from loadtests import silk_capture
from loadtests.scenarios import SCENARIOS

ORDERS = 5  # the shopper's orders, 3 items each: fewer than a page (20)


def _env(**extra: str) -> dict[str, str]:
    """The lab's environment (stack.base_env) on the test database and Redis."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashdeals.settings.local",
        "FLASHDEALS_ENV_FILE": "",
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SILK_ENABLED": "false",
        "LOG_REQUESTS": "false",
        "LOG_LEVEL": "WARNING",
        "METRICS_TOKEN": "",
        **extra,
    }


def _manage(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _silk_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM silk_request")
        return int(cursor.fetchone()[0])


@pytest.fixture
def silk_tables(transactional_db) -> None:
    """Silk's tables in the test database (its app is installed only with SILK_ENABLED=true),
    empty."""
    _manage(_env(SILK_ENABLED="true"), "migrate", "silk", "--noinput", "-v0")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE silk_request CASCADE")


@pytest.fixture
def lister(tmp_path, silk_tables) -> dict:
    """One shopper with ORDERS orders of 3 items, made by the lab's own preparation."""
    users = tmp_path / "users.json"
    _manage(_env(), "loadtest_prepare", "users", "--count", "1", "--out", str(users))
    _manage(_env(), "loadtest_prepare", "orders", "--users", str(users), "--listers", "1",
            "--per-user", str(ORDERS))  # fmt: skip
    return json.loads(users.read_text())[0]


@pytest.mark.parametrize(("prefetch", "queries"), [("false", 2 + ORDERS), ("true", 3)])
def test_silk_capture_counts_what_the_test_client_counts(tmp_path, lister, prefetch, queries):
    request = {"method": "GET", "path": "/orders?page=1&size=20", "token": lister["token"]}
    probe_file = tmp_path / "probe.json"
    probe_file.write_text(json.dumps({"list": request}))
    switches = {"ORDER_LIST_PREFETCH": prefetch}

    probed = _manage(_env(**switches), "loadtest_prepare", "probe", "--requests", str(probe_file))
    server = Gunicorn(workers=1, extra_env=silk_capture.silk_env(_env(**switches))).start()
    try:
        assert silk_capture.send(server.base_url, request) == 200  # warm-up, as the lab does
        t0 = time.time()
        statuses = [silk_capture.send(server.base_url, request) for _ in range(3)]
        t1 = time.time()
        silk_capture.send(server.base_url, request, {"X-Silk-Profile": "1"})
        windows = tmp_path / "windows.json"
        windows.write_text(json.dumps({"list": {"timed": [t0, t1], "profiled": [t1, time.time()]}}))
        found = _manage(_env(SILK_ENABLED="true", **switches), "loadtest_prepare", "silk",
                        "--windows", str(windows))["list"]  # fmt: skip
    finally:
        server.stop()

    assert statuses == [200] * 3
    assert probed["list"] == {"status": 200, "queries": queries, "first": queries}
    assert found["query_counts"] == [queries] * 3  # Silk's records, request by request
    median = found["median"]
    assert (median["queries"], median["silk_num_sql_queries"]) == (queries, queries)
    # the N+1: one items query per order, the same shape each time; none with prefetching
    assert median["duplicates"] == (ORDERS - 1 if prefetch == "false" else 0)
    assert 0 < median["sql_ms"] < median["total_ms"]
    profile = found["profile"]  # only the request that asked was profiled
    assert profile["total_ms"] > 0
    assert profile["source"] == "pstats file"  # the capture's SILK_PROFILE_FILES=true
    assert len(profile["top"]) == PROFILE_TOP
    assert all(0 < t["own_ms"] <= t["cum_ms"] for t in profile["top"])


def test_silk_keeps_exactly_its_bound(silk_tables):
    """With SILK_MAX_RECORDED_REQUESTS=5 and a check on every save, Silk trims to 5 - 100/100 = 4
    requests whenever it saves one: 12 requests leave the newest 4. Without the bound (the
    default 10,000) all 12 stay."""
    bounded = {"SILK_MAX_RECORDED_REQUESTS": "5", "SILK_MAX_RECORDED_REQUESTS_CHECK_PERCENT": "100"}
    kept = {}
    for name, extra in (("bounded", bounded), ("default", {})):
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE silk_request CASCADE")
        server = Gunicorn(workers=1, extra_env=silk_capture.silk_env(_env(**extra))).start()
        try:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE silk_request CASCADE")  # the start-up's /health checks
            for i in range(12):
                request = {"method": "GET", "path": f"/health?n={i}"}
                assert silk_capture.send(server.base_url, request) == 200
        finally:
            server.stop()
        with connection.cursor() as cursor:
            cursor.execute("SELECT query_params FROM silk_request ORDER BY start_time")
            kept[name] = [row[0] for row in cursor.fetchall()]

    assert len(kept["bounded"]) == 4
    assert [json.loads(q)["n"] for q in kept["bounded"]] == ["8", "9", "10", "11"]
    assert len(kept["default"]) == 12


def test_query_shapes_make_an_n_plus_one_a_duplicate():
    items = 'SELECT "orders_orderitem"."id" FROM "orders_orderitem" WHERE "order_id" IN ({})'
    queries = [
        'SELECT COUNT(*) AS "__count" FROM "orders_order" WHERE "user_id" = 42',
        items.format("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        items.format("6fa459ea-ee8a-3ca4-894e-db77e160355e"),
        items.format("16fd2706-8baf-433b-82eb-8c7fada847da"),
    ]

    assert query_shape(queries[1]) == query_shape(queries[2])
    assert query_shape(queries[0]).endswith('"user_id" = ?')
    assert duplicates(queries) == (2, query_shape(queries[1]), 3)
    assert duplicates([]) == (0, "", 0)


def test_profile_top_sorts_silk_profile_text_by_own_time():
    text = """         2000 function calls in 0.050 seconds

   Ordered by: cumulative time

   ncalls  tottime  percall  cumtime  percall filename:lineno(function)
        1    0.001    0.001    0.050    0.050 /x/site-packages/django/core/handlers/base.py:1(h)
       20    0.004    0.000    0.030    0.002 /x/apps/orders/selectors.py:30(order_list)
    40/20    0.012    0.000    0.020    0.001 {method 'execute' of 'psycopg.Cursor' objects}
        3    0.000    0.000    0.000    0.000 /x/apps/orders/selectors.py:9(page)
"""

    top = profile_top(text, 5)  # the function under Silk's 1 ms resolution is left out

    assert top == [
        {"function": "{method 'execute' of 'psycopg.Cursor' objects}", "ncalls": "40/20",
         "own_ms": 12.0, "cum_ms": 20.0},
        {"function": "apps/orders/selectors.py:30(order_list)", "ncalls": "20", "own_ms": 4.0,
         "cum_ms": 30.0},
        {"function": "django/core/handlers/base.py:1(h)", "ncalls": "1", "own_ms": 1.0,
         "cum_ms": 50.0},
    ]  # fmt: skip


def test_profile_file_top_reads_silk_pstats_file_exactly(tmp_path):
    """What Silk writes with SILKY_PYTHON_PROFILER_BINARY (silk/collector.py): the marshalled
    stats of its pstats.Stats; times come back unrounded, calls exact, recursion as n/primitive."""

    def walk(n: int) -> int:
        return 0 if n == 0 else 1 + walk(n - 1)

    def busy() -> int:
        return sum(walk(9) for _ in range(40))

    profiler = cProfile.Profile()
    profiler.runcall(busy)
    path = tmp_path / "request.prof"
    path.write_bytes(marshal.dumps(pstats.Stats(profiler).stats))

    rows = profile_file_top(str(path), 50)
    top = {t["function"].split("(")[-1].rstrip(")"): t for t in rows}

    assert top["walk"]["ncalls"] == "400/40"  # 40 calls from busy, each recursing 9 deep
    assert top["busy"]["ncalls"] == "1"
    assert top["walk"]["own_ms"] > 0  # well under a millisecond: Silk's text would say 0.000
    # nothing rounded away: the own times add up to the whole run's
    assert sum(t["own_ms"] for t in rows) == pytest.approx(top["busy"]["cum_ms"], abs=0.01)


def test_the_scenario_doc_gets_silk_table_and_screenshots(tmp_path):
    sc = SCENARIOS["order-list-slow"]
    shots = {}
    for name in (sc.before, sc.after):
        shots[name] = tmp_path / f"{silk_capture.slug(name)}.png"
        shots[name].write_bytes(b"\x89PNG " + name.encode())

    def median(queries: int, dup: int, sql_ms: float, total_ms: float) -> dict:
        return {"id": "x", "method": "GET", "path": "/orders?page=1&size=20", "status": 200,
                "queries": queries, "duplicates": dup, "top_shape_count": dup + 1,
                "top_shape": 'SELECT … FROM "orders_orderitem" WHERE "order_id" = ?',
                "sql_ms": sql_ms, "total_ms": total_ms, "slowest_query_ms": 3.25,
                "slowest_query": 'SELECT … FROM "orders_order" LIMIT 20'}  # fmt: skip

    result = {
        "queries": {sc.before: {"queries": 22}, sc.after: {"queries": 3}},
        "silk": {
            "requests": 3, "burst": 0, "pick": "median",
            "variants": {sc.before: {"median": median(22, 19, 33.6, 99.26)},
                         sc.after: {"median": median(3, 0, 6.43, 57.56)}},
            "screenshots": {name: str(path) for name, path in shots.items()},
        },
    }  # fmt: skip

    lines = silk_capture.doc_section(sc, result, tmp_path / "docs")

    rows = [line for line in lines if line.startswith("| lazy") or line.startswith("| prefetch")]
    assert rows == [
        "| lazy items (N+1) | `GET /orders?page=1&size=20` → 200 | 22 / 22 | 19 (20× `SELECT … "
        'FROM "orders_orderitem" WHERE "order_id" = ?`) | 33.6 | 99.3 | 3.2 ms: `SELECT … FROM '
        '"orders_order" LIMIT 20` |',
        "| prefetch | `GET /orders?page=1&size=20` → 200 | 3 / 3 | 0 | 6.4 | 57.6 | 3.2 ms: "
        '`SELECT … FROM "orders_order" LIMIT 20` |',
    ]
    images = tmp_path / "docs" / "images"
    assert sorted(p.name for p in images.iterdir()) == [
        "order-list-slow-silk-lazy-items-n-1.png",
        "order-list-slow-silk-prefetch.png",
    ]
    assert (images / "order-list-slow-silk-prefetch.png").read_bytes() == b"\x89PNG prefetch"
    assert "![Silk, prefetch](images/order-list-slow-silk-prefetch.png)" in lines
    assert silk_capture.doc_section(sc, {"silk": None}, tmp_path) == []  # a failed capture
