"""The `.env` file: one reader for the settings, `make run` (scripts/devstack.py) and the tools.

One precedence rule everywhere: a variable set in the environment wins over `.env`, which wins
over the settings' defaults. `.env` may only name variables that `.env.example` documents (a typo
would otherwise be ignored in silence), and a line that is not `NAME=value` fails too; both
raise ConfigError naming the file, the line and the variable.

Only the standard library here: the launcher reads `.env` before any package is importable.
`FLASHDEALS_ENV_FILE` (environment only) names another file; empty, no file is read.
`python -m flashdeals.envfile <settings module>` imports a settings module and prints a
ConfigError as one line (what the launcher runs before it starts anything).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
# `.env.example` documents every variable as `NAME=value` or, where the default is "unset",
# as a commented `# NAME=value`.
_DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)

# What `.env` set in this process: the name of a variable whose value came from the file, so a
# ConfigError can say where a bad value came from.
from_file: dict[str, Path] = {}


class ConfigError(Exception):
    """A setting that can't be used: the message names the variable and what it accepts."""


def env_file() -> Path | None:
    name = os.environ.get("FLASHDEALS_ENV_FILE")
    if name is None:
        return ROOT / ".env"
    return Path(name) if name else None


def documented_variables() -> set[str]:
    """Every variable `.env.example` names (empty when it isn't there, e.g. a trimmed image)."""
    return set(_DOCUMENTED.findall(EXAMPLE.read_text())) if EXAMPLE.exists() else set()


def parse(path: Path) -> dict[str, str]:
    """`NAME=value` lines (optional `export `, quotes around the value, # comments)."""
    values: dict[str, str] = {}
    known = documented_variables()
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not (match := _LINE.match(line)):
            # Only what comes before "=": the rest may be a secret, and errors end up in logs.
            raise ConfigError(f"{path}:{number}: expected NAME=value, got {raw.split('=')[0]!r}")
        name, value = match.groups()
        if known and name not in known:
            close = [k for k in known if _similar(k, name)]
            hint = f" (did you mean {' or '.join(sorted(close))}?)" if close else ""
            raise ConfigError(
                f"{path}:{number}: unknown variable {name}{hint}; .env.example lists them all"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:  # an unquoted value ends at a comment
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


def _similar(a: str, b: str) -> bool:
    """Same words in another order or one edit apart: ORDER_PIPELNE -> ORDER_PIPELINE."""
    if sorted(a.split("_")) == sorted(b.split("_")):
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long))) or (
        len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    )


def load(only: tuple[str, ...] | None = None) -> dict[str, str]:
    """Put `.env`'s variables (or just those in `only`) into os.environ where the environment
    does not set them already. Returns what it set."""
    path = env_file()
    if path is None or not path.exists():
        return {}
    loaded = {}
    for name, value in parse(path).items():
        if (only is None or name in only) and name not in os.environ:
            os.environ[name] = loaded[name] = value
            from_file[name] = path
    return loaded


def check(settings_module: str) -> int:
    """Import `settings_module`; a ConfigError becomes one line on stderr and exit status 2."""
    # The settings raise flashdeals.envfile's ConfigError: a class of another module object
    # than this one's when this file runs as __main__.
    envfile = importlib.import_module("flashdeals.envfile")
    try:
        importlib.import_module(settings_module)
    except envfile.ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]))
