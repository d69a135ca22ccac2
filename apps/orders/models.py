import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.catalog.models import Product
from apps.deals.models import Deal


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Allowed transitions; anything else is refused by the services.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.PENDING: {OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.FAILED},
    OrderStatus.CONFIRMED: {OrderStatus.SHIPPED, OrderStatus.CANCELLED},
    OrderStatus.SHIPPED: {OrderStatus.DELIVERED},
    OrderStatus.DELIVERED: set(),
    OrderStatus.CANCELLED: set(),
    OrderStatus.FAILED: set(),
}
CANCELLABLE = (OrderStatus.PENDING, OrderStatus.CONFIRMED)
# Units in these orders count as sold (invariants 1, 2 and 5).
HOLDING = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)


class Order(models.Model):
    """An order. Its id is issued by the server before anything is stored, so the async pipeline
    can answer 202 with the id and the writer can insert idempotently on it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    total_amount = models.BigIntegerField()
    recipient_name = models.CharField(max_length=50, blank=True, default="")
    phone = models.CharField(max_length=13, blank=True, default="")
    address = models.CharField(max_length=200, blank=True, default="")
    address_detail = models.CharField(max_length=200, blank=True, default="")
    postal_code = models.CharField(max_length=5, blank=True, default="")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True, default="")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Orders are read-only in the admin; cancelling one is its own right (the "operator"
        # role has it, the "viewer" does not: apps.accounts.roles).
        permissions = [("cancel_order", "Can cancel orders (their units go back)")]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OrderStatus]), name="order_status_valid"
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_idempotency_key_per_user",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="order_user_newest_idx"),
            models.Index(fields=["deal", "status"], name="order_deal_status_idx"),
            # per-user limit checks of the database pipelines (selectors.deal_units_held)
            models.Index(fields=["user", "deal"], name="order_user_deal_idx"),
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.status})"

    @property
    def shipping_address(self) -> dict | None:
        if not (self.recipient_name or self.address):
            return None
        return {
            "recipient_name": self.recipient_name,
            "phone": self.phone,
            "address": self.address,
            "address_detail": self.address_detail,
            "postal_code": self.postal_code,
        }


class OrderItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    product_name = models.CharField(max_length=200)
    unit_price = models.BigIntegerField()
    quantity = models.IntegerField()
    subtotal = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=10), name="item_quantity_1_10"
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="item_price_gte_0"),
            models.CheckConstraint(
                condition=Q(subtotal=models.F("unit_price") * models.F("quantity")),
                name="item_subtotal_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_name}"


class ReconciliationReport(models.Model):
    """One check of a deal's books across Redis, the stream and PostgreSQL (invariants 1, 2, 5).
    `findings` lists each discrepancy; `repairs` what was fixed because it could be proved."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="reconciliations")
    created_at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    deal_stock = models.IntegerField()
    sold_units = models.IntegerField(help_text="Units in non-cancelled orders in PostgreSQL")
    pending_units = models.IntegerField(help_text="Accepted reservations not yet written")
    db_remaining = models.IntegerField()
    redis_remaining = models.IntegerField(null=True, blank=True)
    findings = models.JSONField(default=list)
    repairs = models.JSONField(default=list)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["deal", "-created_at"], name="recon_deal_newest_idx")]

    def __str__(self) -> str:
        return f"reconciliation of {self.deal_id}: {'ok' if self.ok else 'drift'}"
