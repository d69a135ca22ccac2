"""Operator console for products. Writes go through apps.catalog.services: stock is never saved
from a form value (that would overwrite concurrent sales), only moved by a delta."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.core.formatting import money

from .models import Product, StockMovement
from .services import (
    PRODUCT_EDITABLE_FIELDS,
    STOCK_MAX,
    product_create,
    product_stock_adjust,
    product_update,
)


class ServiceErrorsMixin:
    """Shows a domain error raised by a service during save (a race the form could not foresee,
    e.g. stock sold meanwhile) as an error message instead of a 500. The admin's own transaction
    has rolled everything back by then."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ProductAdminForm(forms.ModelForm):
    image_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    stock_delta = forms.IntegerField(
        required=False,
        min_value=-STOCK_MAX,
        max_value=STOCK_MAX,
        help_text="Units to add (negative: take). Applied as one conditional update, so sales "
        "happening meanwhile are kept; refused if it would go below zero.",
    )
    stock_reason = forms.CharField(
        required=False,
        max_length=500,
        help_text="Why the stock changes (required to take units): recorded with your account "
        "in the stock history.",
    )

    class Meta:
        model = Product
        fields = ["name", "description", "price", "category", "image_url", "stock"]

    def clean(self):
        data = super().clean()
        data["stock_reason"] = (data.get("stock_reason") or "").strip()
        if (data.get("stock_delta") or 0) < 0 and not data["stock_reason"]:
            self.add_error("stock_reason", "Taking units needs a reason.")
        return data


@admin.register(Product)
class ProductAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ["name", "category", "list_price", "stock", "updated_at"]
    list_filter = ["category"]
    search_fields = ["name", "=id"]
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over a million rows per page

    @admin.display(description="price", ordering="price")
    def list_price(self, product: Product) -> str:
        return money(product.price)

    def get_fields(self, request, obj=None):
        base = ["name", "description", "price", "category", "image_url", "stock"]
        return base if obj is None else [*base, "stock_delta", "stock_reason", "stock_history"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["stock", "stock_history", "created_at", "updated_at"]

    @admin.display(description="stock history")
    def stock_history(self, obj: Product) -> str:
        url = reverse("admin:catalog_stockmovement_changelist") + f"?product__id__exact={obj.pk}"
        return format_html('<a href="{}">every stock change of this product</a>', url)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            fields = {f: data[f] for f in PRODUCT_EDITABLE_FIELDS}
            created = product_create(**fields, stock=data["stock"], actor_id=request.user.pk)
            obj.pk, obj.created_at, obj.updated_at = (
                created.pk,
                created.created_at,
                created.updated_at,
            )
            obj._state.adding = False
            return
        changed = {f: data[f] for f in form.changed_data if f in PRODUCT_EDITABLE_FIELDS}
        if changed:
            product_update(product_id=obj.pk, **changed)
        if data.get("stock_delta"):
            product_stock_adjust(
                product_id=obj.pk, delta=data["stock_delta"], actor_id=request.user.pk,
                note=f"admin: {data['stock_reason']}" if data["stock_reason"] else "admin",
            )  # fmt: skip


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    """The stock audit trail, read-only. Per product: ?product__id__exact=<id>; per deal:
    ?deal_id=<id> (linked from the product page and the deal's live page)."""

    list_display = ["created_at", "product", "deal_id", "kind", "delta", "deal_delta", "actor"]
    list_display += ["note"]
    list_filter = ["kind"]
    list_select_related = ["product", "actor"]
    search_fields = ["=product__id", "=deal_id"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in ("deal_id", "product__id__exact") or super().lookup_allowed(
            lookup, value, request
        )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in StockMovement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
