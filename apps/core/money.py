"""Money as operators read it: integer amounts in the shop's one currency (settings.CURRENCY,
KRW unless set), formatted in one place so every page writes it the same way."""

from django.conf import settings

DEFAULT_CURRENCY = "KRW"


def currency() -> str:
    return getattr(settings, "CURRENCY", DEFAULT_CURRENCY)


def format_money(amount: int) -> str:
    """`1234000` -> "1,234,000 KRW". Amounts are whole units of the currency (no minor units)."""
    return f"{amount:,} {currency()}"
