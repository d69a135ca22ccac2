"""What Silk recorded of the load-test lab's requests, read from Silk's own tables
(silk.models.Request, its SQLQuery rows, its cProfile text or pstats file); `loadtest_prepare
silk` prints it for loadtests/silk_capture.py. Only meaningful with SILK_ENABLED=true (Silk's app
installed).

Silk records the statements that go through Django's `SQLCompiler.execute_sql` (the ORM's
SELECTs, UPDATEs and DELETEs): INSERTs (SQLInsertCompiler runs its own), raw `cursor.execute`
SQL and savepoints are not in its list, while Django's CaptureQueriesContext sees them all.
"""

from __future__ import annotations

import json
import pstats
import re
import statistics
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

# A query's shape: its text with literals replaced, so "the same query for another order" is one
# shape. Silk stores the SQL with its parameters interpolated (and strings unquoted).
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_STRING = re.compile(r"'(?:[^']|'')*'")
_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T][\d:.+\-]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
PROFILE_TOP = 5
SQL_CHARS = 400


def elide_columns(sql: str) -> str:
    """`SELECT a, b, c FROM t WHERE ...` -> `SELECT … FROM t WHERE ...`: what a query reads and
    how it filters, not its column list."""
    return re.sub(r"^SELECT (DISTINCT )?.*? FROM ", r"SELECT \1… FROM ", sql, count=1, flags=re.S)


def query_shape(sql: str) -> str:
    shape = _UUID.sub("?", sql)
    shape = _STRING.sub("?", shape)
    shape = _TIMESTAMP.sub("?", shape)
    shape = _NUMBER.sub("?", shape)
    shape = _LIST.sub("(?)", shape)
    return " ".join(shape.split())


def duplicates(queries: list[str]) -> tuple[int, str, int]:
    """(queries beyond the first of each shape, the most repeated shape, its count)."""
    shapes = Counter(query_shape(q) for q in queries)
    if not shapes:
        return 0, "", 0
    shape, count = shapes.most_common(1)[0]
    return sum(n - 1 for n in shapes.values()), shape, count


# ncalls  tottime  percall  cumtime  percall filename:lineno(function)
_PROFILE_ROW = re.compile(
    r"^\s*(?P<ncalls>[\d/]+)\s+(?P<tottime>[\d.]+)\s+[\d.]+\s+(?P<cumtime>[\d.]+)\s+[\d.]+\s+"
    r"(?P<where>.+)$"
)


def _short(where: str) -> str:
    where = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", where.strip())
    return re.sub(r"^.*/(apps|flashdeals)/", r"\1/", where)


def _top(rows: list[dict], n: int) -> list[dict]:
    return sorted(rows, key=lambda r: -r["own_ms"])[:n]


def profile_top(pyprofile: str, n: int = PROFILE_TOP) -> list[dict]:
    """The `n` functions with the most own time (tottime) in Silk's cProfile text (pstats sorted
    by cumulative time, the first 256 lines: Silk cuts the rest). The text has times in whole
    milliseconds, so a function under 1 ms of own time reads 0 and is left out."""
    rows = []
    for line in pyprofile.splitlines():
        m = _PROFILE_ROW.match(line)
        if m and float(m["tottime"]) > 0:
            rows.append({
                "function": _short(m["where"]),
                "ncalls": m["ncalls"],
                "own_ms": round(1000 * float(m["tottime"]), 2),
                "cum_ms": round(1000 * float(m["cumtime"]), 2),
            })  # fmt: skip
    return _top(rows, n)


def profile_file_top(path: str, n: int = PROFILE_TOP) -> list[dict]:
    """The same from the pstats file Silk keeps with SILK_PROFILE_FILES=true: every function, its
    times to the microsecond."""
    rows = []
    for func, (primitive, ncalls, tottime, cumtime, _callers) in pstats.Stats(path).stats.items():
        rows.append({
            "function": _short(pstats.func_std_string(func)),
            "ncalls": str(ncalls) if ncalls == primitive else f"{ncalls}/{primitive}",
            "own_ms": round(1000 * tottime, 3),
            "cum_ms": round(1000 * cumtime, 3),
        })  # fmt: skip
    return _top(rows, n)


def _profile(request) -> dict:  # type: ignore[no-untyped-def]
    """A profiled Silk request's top functions, from its pstats file when Silk kept one (an
    absolute path: Silk stores the name its storage opened) or else from its text."""
    path = request.prof_file.name if request.prof_file else ""
    exact = bool(path) and Path(path).is_file()
    return {
        "id": str(request.id),
        "total_ms": round(request.time_taken or 0.0, 2),
        "top": profile_file_top(path) if exact else profile_top(request.pyprofile),
        "source": "pstats file" if exact else "text",
    }


def _in_window(window: list[float]):  # type: ignore[no-untyped-def]
    # Silk's Request model; its app is installed only with SILK_ENABLED=true.
    from silk.models import Request

    start, until = (datetime.fromtimestamp(t, UTC) for t in window)
    return Request.objects.filter(start_time__gte=start, start_time__lte=until).exclude(
        path__startswith="/silk"
    )


def _query_string(params: str) -> str:
    """Silk keeps the query string as JSON (`{"page": "1"}`)."""
    try:
        parsed = json.loads(params) if params else {}
    except ValueError:
        return ""
    return f"?{urlencode(parsed, doseq=True)}" if parsed else ""


def request_summary(request) -> dict:  # type: ignore[no-untyped-def]
    """One Silk request: its queries, duplicated shapes, SQL time against total time, the slowest
    query. Times in ms as Silk measured them."""
    queries = list(request.queries.order_by("start_time").values_list("query", "time_taken"))
    texts = [q for q, _ in queries]
    dup, shape, shape_count = duplicates(texts)
    slowest = max(queries, key=lambda q: q[1] or 0.0, default=("", 0.0))
    status = getattr(getattr(request, "response", None), "status_code", None)
    return {
        "id": str(request.id),
        "path": request.path + _query_string(request.query_params),
        "method": request.method,
        "status": status,
        "queries": len(queries),
        "silk_num_sql_queries": request.num_sql_queries,
        "duplicates": dup,
        "top_shape": elide_columns(shape)[:SQL_CHARS],
        "top_shape_count": shape_count,
        "sql_ms": round(sum(t or 0.0 for _, t in queries), 2),
        "total_ms": round(request.time_taken or 0.0, 2),
        "slowest_query_ms": round(slowest[1] or 0.0, 2),
        "slowest_query": elide_columns(slowest[0])[:SQL_CHARS],
    }


def summarize_windows(windows: dict[str, dict]) -> dict[str, dict]:
    """Per label: the median-time request of its "timed" window (and every timed request's query
    count), the profiled request's top functions, the slowest request of its "burst"."""
    out: dict[str, dict] = {}
    for label, spec in windows.items():
        timed = [request_summary(r) for r in _in_window(spec["timed"]).order_by("start_time")]
        entry: dict = {"requests": len(timed), "query_counts": [t["queries"] for t in timed]}
        if timed:
            ordered = sorted(timed, key=lambda t: t["total_ms"])
            entry["median"] = ordered[(len(ordered) - 1) // 2]
            entry["total_ms_all"] = [t["total_ms"] for t in timed]
            entry["sql_ms_median"] = statistics.median(t["sql_ms"] for t in timed)
        if spec.get("profiled"):
            profiled = _in_window(spec["profiled"]).exclude(pyprofile="").first()
            if profiled is not None:
                entry["profile"] = _profile(profiled)
        if spec.get("burst"):
            burst = [request_summary(r) for r in _in_window(spec["burst"])]
            if burst:
                entry["burst"] = {
                    "requests": len(burst),
                    "statuses": dict(Counter(str(b["status"]) for b in burst)),
                    "slowest": max(burst, key=lambda b: b["total_ms"]),
                    "total_ms_median": statistics.median(b["total_ms"] for b in burst),
                }
        out[label] = entry
    return out
