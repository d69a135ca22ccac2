"""{% load console_format %}: apps.core.formatting for the console's templates."""

from datetime import datetime

from django import template
from django.utils.html import format_html

from apps.core.formatting import console_time, money

register = template.Library()


@register.filter(name="money")
def money_filter(amount: int | None) -> str:
    return money(amount)


@register.filter(name="console_time")
def console_time_filter(at: datetime | str | None, form: str = "date") -> str:
    """A <time> in the console's zone, its UTC instant in `datetime` and the tooltip. Accepts
    the ISO strings the JSON presenters produce, too."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at) if at else None
    shown = console_time(at, date=form != "time")
    if shown is None:
        return "-"
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>', shown["utc"], shown["utc"], shown["text"]
    )
