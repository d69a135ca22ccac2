"""docs/reliability.md names, for each case a reliability review found, the tests that cover it:
every test it names must exist, or the page would claim a coverage nobody runs."""

import ast
import re
from pathlib import Path

from django.conf import settings

SECTION = "## What a reliability review found, and the test that now covers each"
REFERENCE = re.compile(r"`(apps/[\w/]+\.py)::(\w+)`")


def _section() -> str:
    text = (Path(settings.BASE_DIR) / "docs" / "reliability.md").read_text()
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else None]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_case_row_names_a_test_and_every_test_named_exists():
    rows = [line for line in _section().splitlines() if re.match(r"\| \d \|", line)]
    assert len(rows) >= 30, "the table of the review's cases is missing or was cut"
    assert [line for line in rows if not REFERENCE.search(line)] == []

    missing = []
    for line in rows:
        for path, name in REFERENCE.findall(line):
            module = Path(settings.BASE_DIR) / path
            if not module.is_file() or name not in _test_functions(module):
                missing.append(f"{path}::{name}")
    assert missing == []
