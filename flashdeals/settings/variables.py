"""Reading settings from the environment strictly: a value that is not what a setting accepts
fails at start with a message naming the variable, instead of meaning something else in silence
(django-environ reads `SILK_ENABLED=ture` as false and `ORDER_PIPELINE=redis-async` as itself).

An empty value counts as unset (`.env.example` writes `METRICS_TOKEN=` for "none").
"""

from __future__ import annotations

import builtins
import ipaddress
import os
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from limits import parse_many

from flashdeals.envfile import ConfigError, from_file

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _masked(value: builtins.str) -> builtins.str:
    """A URL's password as *** (`postgres://app:***@db/x`): errors end up in logs."""
    scheme, sep, rest = value.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not (sep and at and ":" in credentials):
        return value
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class StrictEnv(environ.Env):  # type: ignore[misc]
    """django-environ's reader with strict bool, int and float, and choices."""

    def _raw(self, var: str) -> builtins.str | None:
        value = os.environ.get(var, "").strip()
        return value or None

    def error(self, var: str, value: builtins.str, expected: builtins.str) -> ConfigError:
        source = f" (from {from_file[var]})" if var in from_file else ""
        return ConfigError(f"{var}={_masked(value)!r}{source}: expected {expected}")

    def _default(self, var: str, default: Any) -> Any:
        if default is environ.Env.NOTSET:
            raise ConfigError(f"{var} is not set (.env.example says what it takes)")
        return default

    def bool(self, var: str, default: Any = environ.Env.NOTSET) -> builtins.bool:  # type: ignore[override]
        if (raw := self._raw(var)) is None:
            return self._default(var, default)  # type: ignore[no-any-return]
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise self.error(var, raw, "true or false")

    def int(  # type: ignore[override]
        self, var: str, default: Any = environ.Env.NOTSET, *, minimum: builtins.int = 0
    ) -> builtins.int:
        if (raw := self._raw(var)) is None:
            return self._default(var, default)  # type: ignore[no-any-return]
        try:
            value = builtins.int(raw.replace("_", ""))
        except ValueError:
            raise self.error(var, raw, f"a whole number >= {minimum}") from None
        if value < minimum:
            raise self.error(var, raw, f"a whole number >= {minimum}")
        return value

    def float(  # type: ignore[override]
        self, var: str, default: Any = environ.Env.NOTSET, *, minimum: builtins.float = 0.0
    ) -> builtins.float:
        if (raw := self._raw(var)) is None:
            return self._default(var, default)  # type: ignore[no-any-return]
        try:
            value = builtins.float(raw)
        except ValueError:
            raise self.error(var, raw, f"a number >= {minimum:g}") from None
        if not minimum <= value < builtins.float("inf"):
            raise self.error(var, raw, f"a number >= {minimum:g}")
        return value

    def choice(
        self, var: str, choices: Iterable[builtins.str], default: builtins.str
    ) -> builtins.str:
        allowed = tuple(choices)
        value = self._raw(var) or default
        if value not in allowed:
            raise self.error(var, value, f"one of {', '.join(allowed)}")
        return value

    def url(self, var: str, schemes: Iterable[builtins.str], default: builtins.str) -> builtins.str:  # type: ignore[override]
        """A URL string whose scheme is one of `schemes` (empty default: may stay unset)."""
        value = self._raw(var) or default
        allowed = tuple(schemes)
        if value and value.partition("://")[0] not in allowed:
            raise self.error(
                var, value, f"a URL starting with {' or '.join(s + '://' for s in allowed)}"
            )
        return value

    def networks(self, var: str) -> list[builtins.str]:
        """Comma-separated addresses or CIDR networks (empty: none)."""
        items = [item.strip() for item in (self._raw(var) or "").split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise self.error(
                    var, item, "IP addresses or CIDR networks, comma-separated"
                ) from None
        return items

    def rate_limits(self, var: str, default: builtins.str) -> builtins.str:
        """A `limits` rule: "<count>/<period>", several separated by ";" ("5/minute;50/hour")."""
        value = self._raw(var) or default
        try:
            parse_many(value)
        except ValueError:
            raise self.error(var, value, 'rules like "5/minute" or "5/minute;50/hour"') from None
        return value

    def time_zone(self, var: str, default: builtins.str) -> builtins.str:
        value = self._raw(var) or default
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(var, value, "an IANA time zone such as Asia/Seoul or UTC") from None
        return value
