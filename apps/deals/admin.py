"""Operator console for deals: set a deal up as a draft, publish it through the go-live
preflight (carving its quota), watch it live, pause, resume, end early, reconcile, and replay or
discard dead letters. Every change goes through services (apps.deals.services, and the orders
app's through apps.deals.console); nothing here saves a deal or a stock number directly, and
every action is recorded by the services (apps.core.audit) with the operator as actor and the
reason given; ending early and discarding ask for a reason first (apps.core.confirm).

Who may do what: viewing needs deals.view_deal; every action (publish, pause, resume, end,
reconcile, dead letters) needs deals.run_deal (apps.accounts.roles), refused with 403 otherwise."""

from functools import wraps
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST as require_post

from apps.catalog.admin import ServiceErrorsMixin
from apps.catalog.models import StockMovement
from apps.core.audit import SYSTEM
from apps.core.confirm import confirmed_reason
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.exception_handler import error_body
from apps.core.formatting import money

from . import gate
from .clone import deal_clone
from .console import deal_live_snapshot, orders_console
from .models import Deal, DealStatus
from .preflight import deal_preflight, preflight_data, preflight_ok
from .report import report_csv, report_sections
from .services import (
    TERMS_FIELDS,
    deal_create,
    deal_end,
    deal_pause,
    deal_publish,
    deal_resume,
    deal_update,
)

TERMS = ["product", "deal_price", "deal_stock"]
SCHEDULE = ["per_user_limit", "starts_at", "ends_at"]
ROOM = ["room_enabled", "room_rate", "room_prequeue_seconds", "room_admission_seconds"]
ROOM += ["room_overbooking"]
LIFECYCLE = ["status_now", "live_remaining", "write_backlog", "pending_overdue", "published_at"]
LIFECYCLE += ["paused_at", "ended_at", "closed_at", "created_at"]
CONFIRM_FIELD = "confirm_preflight"  # ticked by an operator publishing despite failing checks
RECORDED = ["recorded_actions"]
RECORDED_MAX = 30  # the deal page's list; the History page and the stock trail have them all


def _json_error(status: int, code: ErrorCode, message: str, details=None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


def staff_json(view):
    """For the console's JSON endpoints: the admin's staff check, answered as the API's error
    body (not a redirect to the login page, which a polling script cannot use)."""

    @wraps(view)
    @never_cache
    def wrapped(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return _json_error(401, ErrorCode.UNAUTHORIZED, "Log in to the admin first.")
        if not (user.is_active and user.is_staff and user.has_perm("deals.view_deal")):
            return _json_error(403, ErrorCode.FORBIDDEN, "Staff who may view deals only.")
        return view(request, *args, **kwargs)

    return wrapped


class DealAdminForm(forms.ModelForm):
    """Checks what an operator can get wrong before anything is written: the period, the price
    against the list price, the quota against the product's stock now (publishing re-checks it
    atomically, so a sale in between is refused, not oversold)."""

    class Meta:
        model = Deal
        fields = [*TERMS, *SCHEDULE, *ROOM]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ROOM:  # left empty: the model's default (the room off, its usual tuning)
            if name in self.fields:
                self.fields[name].required = False

    def _room_defaults(self, data: dict) -> None:
        for name in ROOM:
            if name in self.fields and data.get(name) is None:
                data[name] = getattr(self.instance, name)  # the instance's value or default

    def clean(self):
        data = super().clean()
        self._room_defaults(data)
        deal = self.instance
        starts = data.get("starts_at", deal.starts_at)
        ends = data.get("ends_at", deal.ends_at)
        if starts and ends and starts >= ends:
            self.add_error("ends_at", "The deal must end after it starts.")
        elif (
            ends
            and ends <= timezone.now()
            and ("ends_at" in self.changed_data or deal._state.adding)
        ):
            self.add_error("ends_at", "The end is in the past.")
        if deal.published_at is None:  # terms are editable
            product, price, quota = (
                data.get("product"),
                data.get("deal_price"),
                data.get("deal_stock"),
            )
            if product and price is not None and price >= product.price:
                self.add_error("deal_price", f"Must be below the list price ({product.price}).")
            if product and quota and quota > product.stock:
                self.add_error("deal_stock", f"Only {product.stock} units in stock.")
        return data


@admin.register(Deal)
class DealAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = DealAdminForm
    # The console link next to the name: at 1280-1400 px a last column hid behind a scroll.
    list_display = ["product", "console_links", "price", "deal_stock", "live_remaining"]
    list_display += ["status_now", "starts_at", "ends_at"]
    list_select_related = ["product"]
    list_filter = [("published_at", admin.EmptyFieldListFilter), "starts_at", "ends_at"]
    search_fields = ["product__name", "=id"]
    autocomplete_fields = ["product"]  # a select of a million products would not render
    ordering = ["-starts_at"]
    actions = ["publish", "pause", "resume", "end_early", "reconcile", "clone"]

    @admin.display(description="deal price", ordering="deal_price")
    def price(self, deal: Deal) -> str:
        return money(deal.deal_price)

    def get_fieldsets(self, request, obj=None):
        sets = [
            (None, {"fields": [*TERMS, *SCHEDULE]}),
            ("Waiting room", {
                "fields": ROOM,
                "description": "For a drop that brings more shoppers than the servers can "
                "serve: shoppers queue and buy only when admitted (operator guide, \"Running "
                "a sale behind the waiting room\"). Editable while the deal sells.",
            }),
        ]  # fmt: skip
        if obj is None:
            return sets
        return [*sets, ("Lifecycle", {"fields": LIFECYCLE}), ("Recorded actions", {
            "fields": RECORDED,
            "description": "Who did what, when and why (newest first): operators' actions "
            "and edits, and what the system did to the deal's stock (beat closing it, "
            "reconciliation repairs).",
        })]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.closed_at is not None:
            return [*TERMS, *SCHEDULE, *ROOM, *LIFECYCLE, *RECORDED]
        if obj.published_at is not None:  # live or scheduled: what shoppers buy is fixed
            return [*TERMS, *LIFECYCLE, *RECORDED]
        return [*LIFECYCLE, *RECORDED]

    def has_change_permission(self, request, obj=None):
        # A closed deal is history: its page is read-only (no Save).
        return super().has_change_permission(request, obj) and (obj is None or not obj.closed_at)

    def has_run_permission(self, request, obj=None) -> bool:
        """Publish, pause, resume, end, reconcile, replay and discard (the actions' "run")."""
        return request.user.has_perm("deals.run_deal")

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and not self.get_actions(request):
            raise PermissionDenied  # a viewer's POST: nothing on this list is theirs to run
        return super().changelist_view(request, extra_context)

    def has_delete_permission(self, request, obj=None):
        # A published deal has carved stock and may have orders: end it instead.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.published_at)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["show_publish"] = (obj is None or obj.published_at is None) and (
            self.has_run_permission(request, obj) and self.has_change_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        """Saves a draft or the allowed edits. "Save and publish" saves the draft; publishing
        then happens on the preflight page (response_add/response_change send the operator
        there), outside the admin's transaction because the checks talk to Redis and Celery."""
        data = form.cleaned_data
        publish = False
        if not change:
            fields = {f: data[f] for f in [*SCHEDULE, *ROOM]} | {
                "product_id": data["product"].pk,
                "deal_price": data["deal_price"],
                "deal_stock": data["deal_stock"],
            }
            created = deal_create(**fields, publish=publish, actor_id=request.user.pk)
            obj.pk, obj.created_at = created.pk, created.created_at
            obj._state.adding = False
            return
        changed = {f: data[f] for f in form.changed_data if f in [*SCHEDULE, *ROOM]}
        changed |= {f: data[f] for f in form.changed_data if f in TERMS_FIELDS}
        if "product" in form.changed_data:
            changed["product_id"] = data["product"].pk
        if changed:
            deal_update(deal_id=obj.pk, **changed)

    def _to_preflight(self, request, obj) -> HttpResponseRedirect | None:
        if "_publish" in request.POST and obj.published_at is None:
            return HttpResponseRedirect(reverse("admin:deals_deal_preflight", args=[obj.pk]))
        return None

    def response_add(self, request, obj, post_url_continue=None):
        return self._to_preflight(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._to_preflight(request, obj) or super().response_change(request, obj)

    @admin.display(description="console")
    def console_links(self, obj: Deal) -> str:
        if obj.published_at is None:
            url = reverse("admin:deals_deal_preflight", args=[obj.pk])
            return format_html('<a href="{}">preflight</a>', url)
        live = format_html('<a href="{}">live</a>', reverse("admin:deals_deal_live", args=[obj.pk]))
        if obj.status != DealStatus.ENDED:
            return live
        url = reverse("admin:deals_deal_report", args=[obj.pk])
        return format_html('{} &middot; <a href="{}">report</a>', live, url)

    @admin.display(description="status")
    def status_now(self, obj: Deal) -> str:
        return obj.status_at(remaining=self._remaining(obj))

    @admin.display(description="remaining (live)")
    def live_remaining(self, obj: Deal) -> int:
        return self._remaining(obj)

    @admin.display(description="not yet written")
    def write_backlog(self, obj: Deal) -> int:
        return gate.deal_backlog(obj.pk)

    @admin.display(description="pending too long")
    def pending_overdue(self, obj: Deal) -> str:
        """How many reservations are stuck unwritten (the live page lists them)."""
        seconds = settings.CONSOLE_PENDING_OVERDUE_SECONDS
        overdue = gate.deal_pending_overdue(
            obj.pk, now=timezone.now(), older_than_s=seconds, limit=0
        )
        return f"{overdue.count} (accepted over {seconds} s ago, not written)"

    @admin.display(description="recorded actions")
    def recorded_actions(self, obj: Deal) -> str:
        """The deal's LogEntries (apps.core.audit, and the admin's own add/change entries) with
        the stock trail's system lines, newest first."""
        entries = (
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(Deal), object_id=str(obj.pk)
            )
            .select_related("user")
            .order_by("-action_time")[:RECORDED_MAX]
        )
        rows = [(e.action_time, e.user.email, e.get_change_message()) for e in entries]
        system = StockMovement.objects.filter(deal_id=obj.pk, actor__isnull=True)
        rows += [
            (m.created_at, SYSTEM, f"{m.kind}: product {m.delta:+d}, deal {m.deal_delta:+d}")
            for m in system.order_by("-created_at")[:RECORDED_MAX]
        ]
        rows = sorted(rows, key=lambda row: row[0], reverse=True)[:RECORDED_MAX]
        if not rows:
            return "nothing recorded yet"
        history = reverse("admin:deals_deal_history", args=[obj.pk])
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S"), who, what)
             for when, who, what in rows),
        )  # fmt: skip
        return format_html(
            '<table class="recorded-actions"><thead><tr><th>when</th><th>who</th>'
            "<th>what and why</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">History</a> (every entry)</p>',
            body,
            history,
        )

    def _remaining(self, obj: Deal) -> int:
        return gate.deal_remaining([obj.pk]).get(obj.pk, obj.remaining_stock)

    def _apply(self, request, queryset, service, verb: str, reason: str = "") -> None:
        done = 0
        for deal in queryset.select_related("product"):
            try:
                service(deal_id=deal.pk, actor_id=request.user.pk, reason=reason)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{deal}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} deal(s).", messages.SUCCESS)

    @admin.action(
        description="Publish (preflight, then carve the quota from product stock)",
        permissions=["run"],
    )
    def publish(self, request, queryset):
        """Publishes at once when every selected deal passes its preflight; otherwise shows the
        checks and asks the operator to confirm (the form posts this action again)."""
        if CONFIRM_FIELD not in request.POST:
            deals = list(queryset.select_related("product"))
            checked = [(deal, deal_preflight(deal)) for deal in deals]
            if not all(preflight_ok(checks) for _, checks in checked):
                context = {
                    **self.admin_site.each_context(request),
                    "title": "Publish despite failing preflight checks?",
                    "opts": self.model._meta,
                    "checked": checked,
                    "confirm_field": CONFIRM_FIELD,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                }
                return TemplateResponse(request, "admin/deals/deal/publish_confirm.html", context)
        self._apply(request, queryset, deal_publish, "Published")
        return None

    @admin.action(description="Pause sales", permissions=["run"])
    def pause(self, request, queryset):
        self._apply(request, queryset, deal_pause, "Paused")

    @admin.action(description="Resume sales", permissions=["run"])
    def resume(self, request, queryset):
        self._apply(request, queryset, deal_resume, "Resumed")

    @admin.action(description="End early (return unsold units)", permissions=["run"])
    def end_early(self, request, queryset):
        """Asks for confirmation and a reason first (the page posts this action again)."""
        deals = list(queryset.select_related("product"))
        reason, page = confirmed_reason(
            request, self,
            title="End these deals now?",
            question="Sales stop at once and the unsold units go back to the product. This "
            "cannot be undone.",
            objects=[str(deal) for deal in deals],
            confirm_label="Yes, end them now",
            cancel_url=reverse("admin:deals_deal_changelist"),
            action="end_early",
            selected=[deal.pk for deal in deals],
        )  # fmt: skip
        if reason is None:
            return page
        self._apply(request, queryset, deal_end, "Ended", reason=reason)
        return None

    @admin.action(description="Reconcile now (Redis, stream and PostgreSQL)", permissions=["run"])
    def reconcile(self, request, queryset):
        for deal in queryset.select_related("product"):
            self._reconcile(request, deal)

    @admin.action(description="Clone into a new draft", permissions=["add"])
    def clone(self, request, queryset):
        """A draft per selected deal (apps.deals.clone); one clone opens on its change page."""
        made = []
        for deal_id in queryset.values_list("pk", flat=True):
            try:
                made.append(deal_clone(deal_id=deal_id, actor_id=request.user.pk))
            except ApplicationError as exc:
                text = f"{deal_id}: {exc.message} {exc.details or ''}".strip()
                self.message_user(request, text, messages.ERROR)
        if not made:
            return None
        self.message_user(
            request, f"Cloned into {len(made)} new draft(s): check the period, then publish.",
            messages.SUCCESS,
        )  # fmt: skip
        if len(made) == 1:
            return HttpResponseRedirect(reverse("admin:deals_deal_change", args=[made[0].pk]))
        return None

    def _reconcile(self, request, deal: Deal) -> None:
        report = orders_console().reconcile(deal_id=deal.pk, actor_id=request.user.pk)
        if report["ok"]:
            self.message_user(request, f"{deal}: books balance.", messages.SUCCESS)
        else:
            text = f"{deal}: findings {report['findings']}; repaired {report['repairs']}"
            self.message_user(request, text, messages.WARNING)

    # --- console pages -----------------------------------------------------------------------

    def get_urls(self):
        def page(view):
            return self.admin_site.admin_view(view)

        def post(view):  # state-changing pages: POST only, CSRF-checked by admin_view
            return self.admin_site.admin_view(require_post(view))

        console = [
            path("<uuid:deal_id>/live/", page(self.live_view), name="deals_deal_live"),
            path(
                "<uuid:deal_id>/live.json", staff_json(self.live_json), name="deals_deal_live_json"
            ),
            path(
                "<uuid:deal_id>/preflight/", page(self.preflight_view), name="deals_deal_preflight"
            ),
            path(
                "<uuid:deal_id>/preflight.json",
                staff_json(self.preflight_json),
                name="deals_deal_preflight_json",
            ),
            path("<uuid:deal_id>/report/", page(self.report_view), name="deals_deal_report"),
            path("<uuid:deal_id>/report.csv", page(self.report_csv), name="deals_deal_report_csv"),
            path(
                "<uuid:deal_id>/reconcile/", post(self.reconcile_view), name="deals_deal_reconcile"
            ),
            path(
                "<uuid:deal_id>/lifecycle/<str:verb>/",
                post(self.lifecycle_view),
                name="deals_deal_lifecycle",
            ),
            path(
                "<uuid:deal_id>/dead-letters/<uuid:order_id>/<str:verb>/",
                post(self.dead_letter_view),
                name="deals_deal_dead_letter",
            ),
        ]
        return [*console, *super().get_urls()]

    def _deal(self, request, deal_id: UUID) -> Deal:
        deal = get_object_or_404(Deal.objects.select_related("product"), pk=deal_id)
        if not self.has_view_permission(request, deal):
            raise PermissionDenied
        return deal

    def _context(self, request, deal: Deal, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "original": deal,
            "deal": deal,
            # The console templates show action buttons under this flag: running, not editing.
            "has_change_permission": self.has_run_permission(request, deal),
        }

    def live_view(self, request, deal_id: UUID):
        """The live page: numbers rendered once here, then refreshed by live.js from live.json
        every few seconds; the preflight on a slower timer (it pings the workers)."""
        deal = self._deal(request, deal_id)
        movements = StockMovement.objects.filter(deal_id=deal.pk).select_related("actor")[:20]
        context = {
            **self._context(request, deal, f"Live: {deal.product.name}"),
            "snapshot": deal_live_snapshot(deal),
            "movements": movements,
            "live_json_url": reverse("admin:deals_deal_live_json", args=[deal.pk]),
            "preflight_json_url": reverse("admin:deals_deal_preflight_json", args=[deal.pk]),
            "movements_url": reverse("admin:catalog_stockmovement_changelist")
            + f"?deal_id={deal.pk}",
        }
        return TemplateResponse(request, "admin/deals/deal/live.html", context)

    def report_view(self, request, deal_id: UUID):
        """The post-sale report (apps.deals.report); the deal's view permission is enough."""
        deal = self._deal(request, deal_id)
        report = orders_console().report(deal)
        context = {
            **self._context(request, deal, f"Report: {deal.product.name}"),
            "report": report,
            "sections": report_sections(report),
            "csv_url": reverse("admin:deals_deal_report_csv", args=[deal.pk]),
        }
        return TemplateResponse(request, "admin/deals/deal/report.html", context)

    def report_csv(self, request, deal_id: UUID):
        deal = self._deal(request, deal_id)
        response = HttpResponse(
            report_csv(orders_console().report(deal)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="deal-{deal.pk}-report.csv"'
        return response

    def live_json(self, request, deal_id: UUID):
        deal = Deal.objects.select_related("product").filter(pk=deal_id).first()
        if deal is None:
            return _json_error(404, ErrorCode.NOT_FOUND, "No such deal.")
        return JsonResponse(deal_live_snapshot(deal))

    def preflight_json(self, request, deal_id: UUID):
        deal = Deal.objects.select_related("product").filter(pk=deal_id).first()
        if deal is None:
            return _json_error(404, ErrorCode.NOT_FOUND, "No such deal.")
        return JsonResponse(preflight_data(deal_preflight(deal)))

    def preflight_view(self, request, deal_id: UUID):
        """The go-live checklist; POST publishes (a failing checklist needs the confirmation
        box ticked)."""
        deal = self._deal(request, deal_id)
        checks = deal_preflight(deal)
        if request.method == "POST" and deal.published_at is None:
            if not self.has_run_permission(request, deal):
                raise PermissionDenied
            if preflight_ok(checks) or request.POST.get(CONFIRM_FIELD):
                try:
                    deal_publish(deal_id=deal.pk, actor_id=request.user.pk)
                except ApplicationError as exc:
                    self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
                    return HttpResponseRedirect(request.path)
                self.message_user(request, "Published: the quota is carved.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:deals_deal_live", args=[deal.pk]))
            self.message_user(
                request,
                "Some checks fail: tick the confirmation to publish anyway.",
                messages.ERROR,
            )
        context = {
            **self._context(request, deal, f"Go-live preflight: {deal.product.name}"),
            "checks": checks,
            "ok": preflight_ok(checks),
            "confirm_field": CONFIRM_FIELD,
        }
        return TemplateResponse(request, "admin/deals/deal/preflight.html", context)

    def _back_to_live(self, deal_id: UUID) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:deals_deal_live", args=[deal_id]))

    def reconcile_view(self, request, deal_id: UUID):
        deal = self._deal(request, deal_id)
        if not self.has_run_permission(request, deal):
            raise PermissionDenied
        self._reconcile(request, deal)
        return self._back_to_live(deal.pk)

    def _reason(self, request, deal: Deal, *, title: str, question: str, confirm: str):
        return confirmed_reason(
            request, self, title=title, question=question, objects=[str(deal)],
            confirm_label=confirm, cancel_url=reverse("admin:deals_deal_live", args=[deal.pk]),
        )  # fmt: skip

    def lifecycle_view(self, request, deal_id: UUID, verb: str):
        """Pause and resume at once (a reason is optional); ending asks for confirmation and a
        reason first (the live page's button lands on that page)."""
        services = {"pause": deal_pause, "resume": deal_resume, "end": deal_end}
        deal = self._deal(request, deal_id)
        if verb not in services or not self.has_run_permission(request, deal):
            raise PermissionDenied
        reason = request.POST.get("reason", "").strip()
        if verb == "end":
            question = "Sales stop at once and the unsold units go back to the product."
            reason, page = self._reason(
                request, deal, title="End this deal now?", question=question,
                confirm="Yes, end it now",
            )  # fmt: skip
            if reason is None:
                return page
        try:
            services[verb](deal_id=deal.pk, actor_id=request.user.pk, reason=reason)
            self.message_user(request, f"{deal}: {verb} done.", messages.SUCCESS)
        except ApplicationError as exc:
            self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
        return self._back_to_live(deal.pk)

    def dead_letter_view(self, request, deal_id: UUID, order_id: UUID, verb: str):
        """Replay at once; discarding asks for confirmation and a reason first."""
        deal = self._deal(request, deal_id)
        orders = orders_console()
        actions = {"replay": orders.replay, "discard": orders.discard}
        if verb not in actions or not self.has_run_permission(request, deal):
            raise PermissionDenied
        reason = request.POST.get("reason", "").strip()
        if verb == "discard":
            question = (
                f"Order {order_id} is recorded as failed (the shopper sees it) and leaves the "
                "dead letters; its units went back when it was parked."
            )
            reason, page = self._reason(
                request, deal, title="Discard this dead letter?", question=question,
                confirm="Yes, discard it",
            )  # fmt: skip
            if reason is None:
                return page
        try:
            order = actions[verb](
                deal_id=deal.pk, order_id=order_id, actor_id=request.user.pk, reason=reason
            )
            self.message_user(
                request, f"Order {order_id}: {verb}ed, now {order.status}.", messages.SUCCESS
            )
        except ApplicationError as exc:
            self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
        return self._back_to_live(deal.pk)
