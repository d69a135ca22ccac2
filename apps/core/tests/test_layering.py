"""The code's shape, checked: dependencies point one way, a live deal's Redis keys have one
owner (apps.deals.gate), and no import hides inside a function without saying why. These read
the source (no database); each fails with the offending file and line."""

import ast
import re
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2]
# Each app may import itself and the apps listed (core <- accounts, catalog <- deals <- orders
# <- lab; the lab and demo commands are the top layer).
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "catalog": {"core", "accounts"},
    "deals": {"core", "accounts", "catalog"},
    "orders": {"core", "accounts", "catalog", "deals"},
    "lab": {"core", "accounts", "catalog", "deals", "orders"},
}
DEAL_KEYS = re.compile(
    r"\b(deal_keys|live_deals_key|order_failed_key|deal_rate_key|idempotency_claim_key|get_redis"
    r"|gate_redis|deal_pipeline|key_redis)\b"
    r"|gate\.keys\b"
    r"|\{deal:|deals:live"
)


def _sources(app: str, *, tests: bool = False) -> list[Path]:
    return sorted(
        path
        for path in (APPS / app).rglob("*.py")
        if "migrations" not in path.parts and (tests or "tests" not in path.parts)
    )


def _imported_apps(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("apps.")]
    return found


def test_every_app_is_in_the_layer_map():
    apps = {p.name for p in APPS.iterdir() if (p / "apps.py").exists()}
    assert apps == set(ALLOWED)


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_dependencies_point_one_way(app):
    wrong = [
        f"{path.relative_to(APPS)}:{line} imports apps.{other}"
        for path in _sources(app)
        for line, other in _imported_apps(ast.parse(path.read_text()))
        if other != app and other not in ALLOWED[app]
    ]
    assert wrong == []


def test_only_the_gate_touches_deal_keys_in_orders_and_commands():
    """apps.orders talks to a deal's Redis state only through apps.deals.gate; management
    commands likewise. Tests of orders inject faults through apps/deals/tests/gate_faults.py."""
    paths = _sources("orders", tests=True) + sorted(APPS.glob("*/management/commands/*.py"))
    wrong = [
        f"{path.relative_to(APPS)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DEAL_KEYS.search(line)
        and not (re.search(r"\b(get|gate)_redis\b", line) and "tests" in path.parts)
    ]
    assert wrong == []


def test_the_gate_is_the_only_deals_module_that_names_deal_keys():
    outside = [
        f"{path.relative_to(APPS)}"
        for path in _sources("deals")
        if "gate" not in path.parts
        and re.search(r"\bdeal_keys\b|\b(get|gate)_redis\(\)", path.read_text())
    ]
    assert outside == []


def test_function_level_imports_say_why():
    """A function-level import hides a dependency; it stays only with a comment (on its line or
    the line above) naming the cycle it breaks or why it must wait."""
    silent = []
    for app in ALLOWED:
        for path in _sources(app, tests=True):
            lines = path.read_text().splitlines()
            for func in ast.walk(ast.parse("\n".join(lines))):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        here = lines[node.lineno - 1]
                        above = [line.strip() for line in lines[: node.lineno - 1]][-3:]
                        if "#" not in here and not any(a.startswith("#") for a in above):
                            silent.append(f"{path.relative_to(APPS)}:{node.lineno}: {here.strip()}")
    assert silent == []
