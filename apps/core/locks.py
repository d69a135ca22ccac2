"""The one way to take row locks (as Saleor's `lock_objects.py` does).

`select_for_update(of=("self",))` locks only the rows of the queried table, never rows a
`select_related` joins in (a deal purchase must not lock its product, which regular orders and
stock edits update). Ordering by primary key makes every caller that locks several rows take
them in the same order, so two of them can't deadlock.
"""

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def locked(queryset: QuerySet[M]) -> QuerySet[M]:
    """`queryset`'s rows, locked FOR UPDATE in primary-key order when evaluated. Must be
    evaluated inside `transaction.atomic`."""
    return queryset.order_by("pk").select_for_update(of=("self",))
