import uuid

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
