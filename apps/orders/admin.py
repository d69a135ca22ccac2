"""Operator console for orders: search, filters, a streaming CSV export, cancellation through the
service, reconciliation reports. (The orders app's part of the live deal page is console.py.)

Orders and reports are read-only pages (no Save) for everyone; cancelling needs
orders.cancel_order (the "operator" role, apps.accounts.roles), a confirmation and a reason,
recorded on the order's history (apps.core.audit)."""

import csv
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.confirm import confirmed_reason
from apps.core.errors import ApplicationError
from apps.core.formatting import money
from apps.deals.models import Deal

from .models import Order, OrderItem, ReconciliationReport
from .services import order_cancel

EXPORT_CHUNK = 2_000
EXPORT_COLUMNS = [
    "order_id", "created_at", "status", "user_email", "deal_id", "product_id", "product_name",
    "quantity", "unit_price", "subtotal", "total_amount", "recipient_name", "phone", "address",
    "address_detail", "postal_code", "cancelled_at", "cancel_reason", "failure_reason",
]  # fmt: skip
_EXPORT_FIELDS = [
    "order_id", "order__created_at", "order__status", "order__user__email", "order__deal_id",
    "product_id", "product_name", "quantity", "unit_price", "subtotal", "order__total_amount",
    "order__recipient_name", "order__phone", "order__address", "order__address_detail",
    "order__postal_code", "order__cancelled_at", "order__cancel_reason", "order__failure_reason",
]  # fmt: skip


class _Echo:
    """A file-like sink for csv.writer that hands each row back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def export_rows(orders) -> Iterator[str]:
    """CSV lines (one per order item) for the `orders` queryset, oldest order first, read
    EXPORT_CHUNK rows at a time: memory stays flat however many orders match.

    Each chunk is one query that starts after the last row of the one before (keyset pagination
    on created_at, order id, item id, which orders every item exactly), not a server-side
    cursor: a cursor outlives its transaction, which PgBouncer in transaction mode does not
    allow (deploy/README.md, "PgBouncer"). Each chunk sees the orders as they are when it runs:
    every item committed before the export starts is written exactly once; an order committed
    during it is written if its created_at sorts after the rows already written, which a new
    order's does unless it was stamped well before its commit (the async writer stamps the
    time the purchase was accepted, usually well under a second earlier)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    items = (
        OrderItem.objects.filter(order__in=orders.order_by().values("pk"))
        .order_by("order__created_at", "order_id", "id")
        .values_list(*_EXPORT_FIELDS, "id")
    )
    if settings.ORDER_EXPORT_UNSAFE_SERVER_CURSOR:
        rows = items.iterator(chunk_size=EXPORT_CHUNK)  # negative control only
    else:
        rows = _keyset_rows(items)
    for *row, _item_id in rows:
        yield writer.writerow([_cell(value) for value in row])


def _keyset_rows(items) -> Iterator[tuple]:
    """The rows of `items` (ordered by created_at, order id, item id, and ending with the item
    id), read EXPORT_CHUNK at a time, one query each; a short chunk is the last."""
    after = Q()
    while True:
        chunk = list(items.filter(after)[:EXPORT_CHUNK])
        yield from chunk
        if len(chunk) < EXPORT_CHUNK:
            return
        order_id, created_at, item_id = chunk[-1][0], chunk[-1][1], chunk[-1][-1]
        del chunk  # not held while the next one is read: memory stays at one chunk
        # (created_at, order_id, id) > (the last row's): the row comparison, spelled out. The
        # redundant created_at >= bound is one an index on orders (created_at, id) can start
        # from; without one, each chunk joins and filters every matching order again.
        after = Q(order__created_at__gte=created_at) & (
            Q(order__created_at__gt=created_at)
            | Q(order__created_at=created_at, order_id__gt=order_id)
            | Q(order__created_at=created_at, order_id=order_id, id__gt=item_id)
        )


def _cell(value):
    """Times in the site's time zone (what the operator reads in the admin), ISO 8601."""
    return timezone.localtime(value).isoformat() if isinstance(value, datetime) else value


class DealFilter(admin.SimpleListFilter):
    """The 30 most recent deals; any other deal via ?deal=<id> (a list of every deal ever would
    not render on a busy platform)."""

    title = "deal"
    parameter_name = "deal"

    def lookups(self, request, model_admin):
        deals = Deal.objects.select_related("product").order_by("-starts_at")[:30]
        return [(str(d.pk), str(d)) for d in deals]

    def has_output(self) -> bool:
        return True  # applies ?deal=<id> even when no recent deal is listed

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(deal_id=UUID(value))
        except ValueError:
            return queryset.none()


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False
    fields = ["product_name", "deal", "quantity", "unit_price", "subtotal"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("deal__product")  # the deal's label

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only: orders change only through services (cancel below)."""

    list_display = ["id", "user_email", "status", "total", "deal_link", "created_at"]
    list_select_related = ["user", "deal__product"]
    list_filter = ["status", DealFilter]
    search_fields = ["=id", "user__email"]
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    show_full_result_count = False
    inlines = [OrderItemInline]
    actions = ["cancel_orders"]
    change_list_template = "admin/orders/order/change_list.html"

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and not self.get_actions(request):
            raise PermissionDenied  # a viewer's POST: cancelling is not theirs to run
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        """An order id or a full email match exactly (both indexed, unlike the default
        icontains over every order); anything else is an email prefix."""
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=UUID(term)), False
        except ValueError:
            pass
        if "@" in term:
            return queryset.filter(user__email=term), False
        return queryset.filter(user__email__startswith=term), False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only: the change page shows no Save

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.cancel_order")

    @admin.display(description="total", ordering="total_amount")
    def total(self, order: Order) -> str:
        return money(order.total_amount)

    @admin.display(description="email", ordering="user__email")
    def user_email(self, obj: Order) -> str:
        return obj.user.email

    @admin.display(description="deal")
    def deal_link(self, obj: Order) -> str:
        """The deal's label (its product and start), linked to the deal's page."""
        if obj.deal is None:
            return "-"
        url = reverse("admin:deals_deal_change", args=[obj.deal_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.deal))

    @admin.action(description="Cancel selected orders (return their units)", permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        """Asks for confirmation and a reason (the shopper sees it as the cancel reason), then
        cancels each order through the service."""
        orders = list(queryset.select_related("user"))
        reason, page = confirmed_reason(
            request, self,
            title="Cancel these orders?",
            question="Each order is cancelled and its units go back to the deal while it is "
            "open, else to the product. The shopper sees the reason.",
            objects=[f"{o.id} ({o.user.email}, {o.status}, {money(o.total_amount)})" for o in orders],  # noqa: E501
            confirm_label="Yes, cancel them",
            cancel_url=reverse("admin:orders_order_changelist"),
            action="cancel_orders",
            selected=[o.pk for o in orders],
        )  # fmt: skip
        if reason is None:
            return page
        done = 0
        for order in orders:
            order_id = order.pk
            try:
                order_cancel(
                    order_id=order_id, user_id=order.user_id, reason=reason,
                    actor_id=request.user.pk,
                )  # fmt: skip
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{order_id}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Cancelled {done} order(s).", messages.SUCCESS)
        return None

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv)
        return [path("export.csv", export, name="orders_order_export"), *super().get_urls()]

    def export_csv(self, request):
        """The changelist's current search and filters, streamed as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = self.get_changelist_instance(request).get_queryset(request)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(export_rows(orders), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
        return response


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "deal", "ok", "sold_units", "pending_units", "db_remaining"]
    list_display += ["redis_remaining"]
    list_filter = ["ok"]
    search_fields = ["=deal__id"]
    list_select_related = ["deal__product"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ReconciliationReport._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False  # a report is a record: no Save

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
