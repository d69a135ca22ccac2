"""Operator console for deals: set a deal up as a draft, publish it (carving its quota), pause,
resume, end early. Every change goes through apps.deals.services; nothing here saves a deal or a
stock number directly."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apps.catalog.admin import ServiceErrorsMixin
from apps.core.errors import ApplicationError

from . import gate
from .models import Deal
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
LIFECYCLE = ["status_now", "live_remaining", "write_backlog", "published_at", "paused_at"]
LIFECYCLE += ["ended_at", "closed_at", "created_at"]


class DealAdminForm(forms.ModelForm):
    """Checks what an operator can get wrong before anything is written: the period, the price
    against the list price, the quota against the product's stock now (publishing re-checks it
    atomically, so a sale in between is refused, not oversold)."""

    class Meta:
        model = Deal
        fields = [*TERMS, *SCHEDULE]

    def clean(self):
        data = super().clean()
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
    list_display = ["product", "deal_price", "deal_stock", "live_remaining", "status_now"]
    list_display += ["starts_at", "ends_at"]
    list_select_related = ["product"]
    list_filter = [("published_at", admin.EmptyFieldListFilter), "starts_at", "ends_at"]
    search_fields = ["product__name", "=id"]
    autocomplete_fields = ["product"]  # a select of a million products would not render
    ordering = ["-starts_at"]
    actions = ["publish", "pause", "resume", "end_early"]

    def get_fields(self, request, obj=None):
        return [*TERMS, *SCHEDULE] if obj is None else [*TERMS, *SCHEDULE, *LIFECYCLE]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.closed_at is not None:
            return [*TERMS, *SCHEDULE, *LIFECYCLE]
        if obj.published_at is not None:  # live or scheduled: what shoppers buy is fixed
            return [*TERMS, *LIFECYCLE]
        return LIFECYCLE

    def has_delete_permission(self, request, obj=None):
        # A published deal has carved stock and may have orders: end it instead.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.published_at)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["show_publish"] = obj is None or obj.published_at is None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        publish = "_publish" in request.POST
        if not change:
            fields = {f: data[f] for f in SCHEDULE} | {
                "product_id": data["product"].pk,
                "deal_price": data["deal_price"],
                "deal_stock": data["deal_stock"],
            }
            created = deal_create(**fields, publish=publish)
            obj.pk, obj.created_at = created.pk, created.created_at
            obj._state.adding = False
            return
        changed = {f: data[f] for f in form.changed_data if f in SCHEDULE}
        changed |= {f: data[f] for f in form.changed_data if f in TERMS_FIELDS}
        if "product" in form.changed_data:
            changed["product_id"] = data["product"].pk
        if changed:
            deal_update(deal_id=obj.pk, **changed)
        if publish and obj.published_at is None:
            deal_publish(deal_id=obj.pk)

    @admin.display(description="status")
    def status_now(self, obj: Deal) -> str:
        return obj.status_at(remaining=self._remaining(obj))

    @admin.display(description="remaining (live)")
    def live_remaining(self, obj: Deal) -> int:
        return self._remaining(obj)

    @admin.display(description="not yet written")
    def write_backlog(self, obj: Deal) -> int:
        return gate.deal_backlog(obj.pk)

    def _remaining(self, obj: Deal) -> int:
        return gate.deal_remaining([obj.pk]).get(obj.pk, obj.remaining_stock)

    def _apply(self, request, queryset, service, verb: str) -> None:
        done = 0
        for deal_id in queryset.values_list("pk", flat=True):
            try:
                service(deal_id=deal_id)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{deal_id}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} deal(s).", messages.SUCCESS)

    @admin.action(description="Publish (carve the quota from product stock)")
    def publish(self, request, queryset):
        self._apply(request, queryset, deal_publish, "Published")

    @admin.action(description="Pause sales")
    def pause(self, request, queryset):
        self._apply(request, queryset, deal_pause, "Paused")

    @admin.action(description="Resume sales")
    def resume(self, request, queryset):
        self._apply(request, queryset, deal_resume, "Resumed")

    @admin.action(description="End early (return unsold units)")
    def end_early(self, request, queryset):
        self._apply(request, queryset, deal_end, "Ended")
