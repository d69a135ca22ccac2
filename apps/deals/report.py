"""A deal's post-sale report: what the sale did, as a page in the admin and as a CSV of the
same figures (docs/operator-guide.md, "After the sale").

The figures come from two places, and the report says which:
- PostgreSQL, the record, kept for good: units sold, orders by outcome, revenue (deal price x
  units sold), first and last sale and so the time to sell out, the peak of purchases accepted
  per second (from the orders' acceptance times), dead letters replayed and discarded (the
  stock audit trail), the last reconciliation.
- The gate's Redis: answers by reason (kept 30 days after the deal's last purchase attempt) and
  dead letters still parked. The per-second chart of the live page (rejections included) lives
  15 minutes only, so the report's peak counts accepted purchases only.

The orders app computes the report (it owns the orders); this module holds its shape and how
it is shown, so the deal admin renders it without importing orders (apps.deals.console).
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from apps.core.formatting import console_time, console_zone, money

from .gate.stats import REASONS


@dataclass(frozen=True)
class DealReport:
    deal_id: UUID
    product: str
    status: str  # apps.deals.models.DealStatus when the report was made
    deal_price: int
    deal_stock: int
    starts_at: datetime
    ends_at: datetime
    ended_at: datetime | None  # ended early by an operator
    closed_at: datetime | None  # unsold units back to the product
    units_sold: int  # in orders not cancelled or failed
    orders_confirmed: int
    orders_cancelled: int
    orders_failed: int
    first_sale_at: datetime | None  # acceptance of the first order still holding units
    last_sale_at: datetime | None  # acceptance of the last one
    peak_per_second: int  # most orders accepted within one second (all outcomes)
    peak_second: datetime | None
    answers: dict | None  # {accepted, rejected: {reason: n}}; None: not kept (answers_note)
    answers_note: str
    dead_letters_replayed: int
    dead_letters_discarded: int
    dead_letters_parked: int | None  # None: Redis unreachable
    reconciliation: dict | None  # apps.orders.console.report_data of the newest report
    made_at: datetime = field(default_factory=timezone.now)

    @property
    def revenue(self) -> int:
        return self.deal_price * self.units_sold

    @property
    def sold_out(self) -> bool:
        return self.units_sold >= self.deal_stock

    @property
    def time_to_sell_out(self) -> timedelta | None:
        """From the first sale to the last unit sold; None when units are left."""
        if not self.sold_out or self.first_sale_at is None or self.last_sale_at is None:
            return None
        return self.last_sale_at - self.first_sale_at


class Figure(NamedTuple):
    key: str  # the CSV's `figure` column
    label: str  # the page's
    value: object  # the CSV's `value`: a number, ISO 8601 time, or "" when unknown
    shown: str  # the page's: formatted, with the unit or currency


def _when(moment: datetime | None) -> str:
    shown = console_time(moment)
    return shown["text"] if shown else "-"


def _iso(moment: datetime | None) -> str:
    """ISO 8601 in the console's zone (settings.CONSOLE_TIME_ZONE), as the page shows it."""
    return moment.astimezone(console_zone()).isoformat() if moment else ""


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def _sales(r: DealReport) -> list[Figure]:
    sell_out = r.time_to_sell_out
    return [
        Figure("units_sold", "Units sold", r.units_sold, f"{r.units_sold} of {r.deal_stock}"),
        Figure("revenue", "Revenue", r.revenue,
               f"{money(r.revenue)} ({r.units_sold} x {money(r.deal_price)})"),
        Figure("currency", "Currency", settings.CURRENCY, settings.CURRENCY),
        Figure("orders_confirmed", "Orders confirmed", r.orders_confirmed,
               str(r.orders_confirmed)),
        Figure("orders_cancelled", "Orders cancelled", r.orders_cancelled,
               str(r.orders_cancelled)),
        Figure("orders_failed", "Orders failed", r.orders_failed, str(r.orders_failed)),
        Figure("first_sale_at", "First sale", _iso(r.first_sale_at), _when(r.first_sale_at)),
        Figure("last_sale_at", "Last sale", _iso(r.last_sale_at), _when(r.last_sale_at)),
        Figure("time_to_sell_out_s", "Time to sell out",
               round(sell_out.total_seconds(), 3) if sell_out is not None else "",
               _duration(sell_out) if sell_out is not None else "not sold out"),
        Figure("peak_purchases_per_s", "Peak purchases per second", r.peak_per_second,
               f"{r.peak_per_second} (at {_when(r.peak_second)})" if r.peak_second else "0"),
    ]  # fmt: skip


def _answers(r: DealReport) -> list[Figure]:
    if r.answers is None:
        accepted, rejected = "", dict.fromkeys(REASONS, "")
    else:
        accepted, rejected = r.answers["accepted"], r.answers["rejected"]
    figures = [Figure("answers_accepted", "Accepted", accepted, str(accepted or 0))]
    figures += [
        Figure(f"answers_rejected_{reason}", f"Rejected: {reason}", rejected.get(reason, ""),
               str(rejected.get(reason) or 0))
        for reason in REASONS
    ]  # fmt: skip
    if r.answers is None:
        figures = [f._replace(shown="-") for f in figures]
    return figures


def _dead_letters(r: DealReport) -> list[Figure]:
    parked = r.dead_letters_parked
    return [
        Figure("dead_letters_replayed", "Replayed (written as confirmed)",
               r.dead_letters_replayed, str(r.dead_letters_replayed)),
        Figure("dead_letters_discarded", "Discarded (written as failed)",
               r.dead_letters_discarded, str(r.dead_letters_discarded)),
        Figure("dead_letters_parked", "Still parked (waiting for an operator)",
               "" if parked is None else parked,
               "- (Redis unreachable)" if parked is None else str(parked)),
    ]  # fmt: skip


def _reconciliation(r: DealReport) -> list[Figure]:
    last = r.reconciliation
    if last is None:
        return [Figure("reconciliation_ok", "Result", "", "never reconciled")]
    result = "books balance" if last["ok"] else "drift found"
    checked_at = datetime.fromisoformat(last["created_at"])
    return [
        Figure("reconciliation_ok", "Result", str(last["ok"]).lower(), result),
        Figure("reconciliation_at", "Checked at", _iso(checked_at), _when(checked_at)),
        Figure("reconciliation_findings", "Findings", len(last["findings"]),
               "; ".join(str(f) for f in last["findings"]) or "none"),
        Figure("reconciliation_repairs", "Repairs", len(last["repairs"]),
               "; ".join(str(f) for f in last["repairs"]) or "none"),
    ]  # fmt: skip


class Section(NamedTuple):
    heading: str
    figures: list[Figure]
    note: str = ""  # why figures are missing


def report_sections(r: DealReport) -> list[Section]:
    """The page's sections; the CSV is their figures in the same order."""
    deal = [
        Figure("deal_id", "Deal", str(r.deal_id), str(r.deal_id)),
        Figure("product", "Product", r.product, r.product),
        Figure("status", "Status", r.status, r.status),
        Figure("deal_price", "Deal price", r.deal_price, money(r.deal_price)),
        Figure("deal_stock", "Quota", r.deal_stock, str(r.deal_stock)),
        Figure("starts_at", "Starts", _iso(r.starts_at), _when(r.starts_at)),
        Figure("ends_at", "Ends", _iso(r.ends_at), _when(r.ends_at)),
        Figure("ended_at", "Ended early", _iso(r.ended_at), _when(r.ended_at)),
        Figure("closed_at", "Closed", _iso(r.closed_at), _when(r.closed_at)),
    ]
    return [
        Section("Deal", deal),
        Section("Sales (PostgreSQL)", _sales(r)),
        Section("Answers by reason (Redis)", _answers(r), r.answers_note),
        Section("Dead letters", _dead_letters(r)),
        Section("Reconciliation (the newest report)", _reconciliation(r)),
    ]


def report_csv(r: DealReport) -> str:
    """One row per figure, `figure,value`, in the page's order: a sale's report reads top to
    bottom, and reports of several deals join on the `figure` column. Money is a whole number
    in the `currency` row's currency, times ISO 8601 with their offset, durations in seconds;
    an empty value is a figure not known (not sold out, not kept, Redis unreachable)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["figure", "value"])
    writer.writerow(["report_made_at", _iso(r.made_at)])
    for section in report_sections(r):
        writer.writerows([figure.key, figure.value] for figure in section.figures)
    return out.getvalue()
