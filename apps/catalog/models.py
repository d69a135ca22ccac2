import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Product(models.Model):
    """A sellable item. `stock` is the regular (non-deal) inventory; deal quotas are carved out of
    it and unsold deal units come back to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.BigIntegerField(help_text="KRW")
    stock = models.IntegerField(default=0)
    category = models.CharField(max_length=50, blank=True, default="")
    image_url = models.URLField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_gte_0"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_gte_0"),
            models.CheckConstraint(condition=~Q(name=""), name="product_name_not_empty"),
        ]
        indexes = [
            # Newest-first list, and newest-first within a category.
            models.Index(fields=["-created_at", "-id"], name="product_newest_idx"),
            models.Index(fields=["category", "-created_at", "-id"], name="product_cat_newest_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class StockMovementKind(models.TextChoices):
    OPERATOR_EDIT = "operator_edit"  # an operator added or took units (admin or API)
    DEAL_CARVE = "deal_carve"  # a deal's quota taken out of the product's stock on publish
    DEAL_RETURN = "deal_return"  # a closed deal's unsold units back to the product
    CANCELLATION = "cancellation"  # a cancelled order's units back to the deal or product
    RECONCILE_REPAIR = "reconcile_repair"  # a drifted deal counter set to its proven value
    DEAD_LETTER_REPLAY = "dead_letter_replay"  # a parked reservation written after all
    DEAD_LETTER_DISCARD = "dead_letter_discard"  # a parked reservation dropped (units were back)


class StockMovement(models.Model):
    """One audited change of stock: who moved how many units of which product (and deal), when
    and why. Written by the services in the same transaction as the change itself, so the trail
    can never disagree with the counters it explains.

    `delta` is the change of the product's regular stock, `deal_delta` the change of the deal's
    remaining units (a carve is delta -q, deal_delta +q). `deal_id` is a plain column, not a
    foreign key: catalog sits below deals in the dependency order (core <- catalog <- deals),
    and the trail must outlive whatever it points at. `actor` is None for the system (beat tasks,
    shoppers' own cancellations are recorded with the shopper).
    """

    id = models.BigAutoField(primary_key=True)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="movements")
    deal_id = models.UUIDField(null=True, blank=True)
    kind = models.CharField(max_length=32, choices=StockMovementKind.choices)
    delta = models.IntegerField(default=0, help_text="Change of the product's stock")
    deal_delta = models.IntegerField(default=0, help_text="Change of the deal's remaining units")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["product", "-created_at"], name="movement_product_idx"),
            models.Index(
                fields=["deal_id", "-created_at"],
                condition=Q(deal_id__isnull=False),
                name="movement_deal_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.delta:+d}/{self.deal_delta:+d} of {self.product_id}"
