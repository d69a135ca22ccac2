"""How the operator console writes money and time: one helper each, so every page agrees.

Money: the ISO code, a space, the amount with thousands separators and the currency's minor
units ("KRW 199,000", "USD 19.99"): the code, not a symbol, because "¥" or "$" alone is
ambiguous. Amounts are integers in the currency's minor unit (settings.CURRENCY).

Time: in settings.CONSOLE_TIME_ZONE, labelled with the zone's abbreviation ("13:32:26 KST"),
and the stored instant in UTC beside it for a tooltip, so an operator in another zone, or one
comparing with a log line in UTC, never has to guess.
"""

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings


def money(amount: int | None, currency: str | None = None) -> str:
    """`amount` (minor units) as "KRW 199,000"; "-" for None."""
    if amount is None:
        return "-"
    code = currency or settings.CURRENCY
    digits = settings.CURRENCY_MINOR_UNITS[code]
    value = f"{abs(amount) / 10**digits:,.{digits}f}" if digits else f"{abs(amount):,}"
    return f"{'-' if amount < 0 else ''}{code} {value}"


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def console_zone() -> ZoneInfo:
    return _zone(settings.CONSOLE_TIME_ZONE)


def zone_label(at: datetime | None = None) -> str:
    """ "KST (Asia/Seoul, UTC+09:00)": the console's zone as the page header states it."""
    local = (at or datetime.now(UTC)).astimezone(console_zone())
    offset = local.strftime("%z")
    return f"{local.tzname()} ({settings.CONSOLE_TIME_ZONE}, UTC{offset[:3]}:{offset[3:]})"


def utc_iso(at: datetime) -> str:
    """The stored instant: "2025-05-01T04:32:26Z" (whole seconds)."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def console_time(at: datetime | None, *, date: bool = True) -> dict | None:
    """{"utc", "text", "zone", "offset_s", "ms"} for JSON and templates: `text` is
    "2025-05-01 13:32:26 KST" (or "13:32:26 KST" without the date) in the console's zone,
    `zone` its abbreviation, `offset_s` the zone's offset from UTC then, `ms` the instant in
    epoch milliseconds (countdowns)."""
    if at is None:
        return None
    local = at.astimezone(console_zone())
    offset = local.utcoffset()
    return {
        "utc": utc_iso(at),
        "text": local.strftime("%Y-%m-%d %H:%M:%S %Z" if date else "%H:%M:%S %Z"),
        "zone": local.tzname(),
        "offset_s": int(offset.total_seconds()) if offset else 0,
        "ms": int(at.timestamp() * 1000),
    }
