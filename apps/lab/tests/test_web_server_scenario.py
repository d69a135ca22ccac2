"""The web-server scenario: one stack per server serving every target, and the choice its page
states, computed from a run's numbers (here made up, so each branch is pinned exactly)."""

from loadtests.report import web_server_choice
from loadtests.scenarios import SCENARIOS, WEB_SERVERS


def test_each_server_serves_health_the_cached_list_and_a_redis_async_purchase():
    sc = SCENARIOS["web-server"]

    assert [(v.name, v.stack, v.k6_env["TARGET"], v.purchase) for v in sc.variants[:3]] == [
        ("gunicorn sync health", "redis_async-gunicorn-sync", "health", False),
        ("gunicorn sync products", "redis_async-gunicorn-sync", "products", False),
        ("gunicorn sync purchase", "redis_async-gunicorn-sync", "orders", True),
    ]
    assert {k: (s.env["WEB_SERVER"], s.env.get("GUNICORN_WORKER_CLASS", "sync"), s.pipeline,
                s.worker, s.env["CATALOG_CACHE_ENABLED"]) for k, s in sc.stacks.items()} == {
        "redis_async-gunicorn-sync": ("gunicorn", "sync", "redis_async", True, "true"),
        "redis_async-gunicorn-gthread": ("gunicorn", "gthread", "redis_async", True, "true"),
        "redis_async-granian": ("granian", "sync", "redis_async", True, "true"),
    }  # fmt: skip


def _closed(purchases: dict[str, list[float]]) -> dict[str, dict]:
    closed = {}
    for server in WEB_SERVERS:
        for target in ("health", "products", "purchase"):
            accepted = purchases[server] if target == "purchase" else []
            closed[f"{server} {target}"] = {
                "rps": accepted or [1000.0, 1000.0], "accepted_rps": accepted, "p95": [100.0],
                "cpu_web": [1.0], "cpu_total": [2.0],
            }  # fmt: skip
    return closed


def test_a_gain_within_ten_percent_keeps_gunicorn_sync():
    lines = web_server_choice(
        _closed(
            {"gunicorn sync": [100, 100], "gunicorn gthread": [105, 106], "granian": [108, 110]}
        )  # fmt: skip
    )

    assert lines[-2] == (
        "- **granian** wins accepted purchases/s: 109 vs 100 for gunicorn sync (**+9%**, not "
        "above the 10% bar; its worst round beats gunicorn sync's best). **Choice: gunicorn "
        "sync stays the default: the gain is within 10%.**"
    )


def test_a_clear_win_above_ten_percent_names_the_option_and_overlapping_rounds_do_not():
    clear = web_server_choice(
        _closed({"gunicorn sync": [100, 100], "gunicorn gthread": [90, 90], "granian": [115, 117]})
    )
    overlapping = web_server_choice(
        _closed({"gunicorn sync": [80, 120], "gunicorn gthread": [90, 90], "granian": [100, 140]})
    )

    assert clear[-2].endswith(
        "**Choice: gunicorn sync stays the default (the platform's chosen stack); offer "
        "`WEB_SERVER=granian` (`make run`, compose, the lab).**"
    )
    assert overlapping[-2].endswith(
        "(**+20%**, above the 10% bar; its worst round does not beat gunicorn sync's best). "
        "**Choice: gunicorn sync stays the default: above 10% on the mean, but the rounds "
        "overlap.**"
    )
