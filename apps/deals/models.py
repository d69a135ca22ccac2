import secrets
import uuid
from datetime import datetime
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.catalog.models import Product


class DealStatus(models.TextChoices):
    DRAFT = "draft"  # created in the admin, quota not carved yet
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    SOLD_OUT = "sold_out"
    PAUSED = "paused"
    ENDED = "ended"


def room_seed_new() -> str:
    """128 random bits for a deal's pre-queue draw."""
    return secrets.token_hex(16)


class DealQuerySet(models.QuerySet["Deal"]):
    """ "Is the deal open?" in SQL, written once (Deal.status_at is the same rule in Python;
    reserve.lua holds the gate's copy for live deals)."""

    def published(self) -> "DealQuerySet":
        """Out of draft: shoppers may see it (closed ones too)."""
        return self.filter(published_at__isnull=False)

    def published_unclosed(self) -> "DealQuerySet":
        """Published, quota carved out of the product, unsold units not yet returned."""
        return self.published().filter(closed_at__isnull=True)

    def running(self) -> "DealQuerySet":
        """Published and not ended early or closed (pausable, endable)."""
        return self.published_unclosed().filter(ended_at__isnull=True)

    def in_window(self, now: datetime) -> "DealQuerySet":
        """Running with `now` inside its sale window (paused or sold out included)."""
        return self.running().filter(starts_at__lte=now, ends_at__gt=now)

    def selling(self, now: datetime) -> "DealQuerySet":
        """In its window and not paused: a purchase may take units (if any are left)."""
        return self.in_window(now).filter(paused_at__isnull=True)


class Deal(models.Model):
    """A time-boxed quota of one product at a deal price.

    Lifecycle: created (draft) -> published (quota carved from the product's stock) -> live between
    starts_at and ends_at -> ended (by the clock or an operator) -> closed (unsold units returned to
    the product, exactly once). `remaining_stock` in PostgreSQL is the record; while a deal is live
    in a Redis pipeline, Redis holds the fast copy and the stream writer keeps this one in step.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="deals")
    deal_price = models.BigIntegerField(help_text="KRW, below the product's price")
    deal_stock = models.IntegerField(help_text="The deal's quota")
    remaining_stock = models.IntegerField()
    per_user_limit = models.IntegerField(default=1)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Set when ended early")
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when unsold units went back to the product"
    )
    # Bumped by every operator change (publish, pause, resume, end, close, edit): the gate
    # applies flags only from a version at least as new as the one it holds, so a background
    # task that read the row earlier can't undo an operator (apps.deals.gate.state).
    state_version = models.PositiveBigIntegerField(default=0)
    # The waiting room (docs/operator-guide.md "Running a sale behind the waiting room"): the
    # operator's settings, copied into the gate's state like the flags above.
    room_enabled = models.BooleanField(
        "waiting room", default=False, help_text="Shoppers queue and buy only when admitted"
    )
    room_rate = models.PositiveIntegerField(
        "admission rate",
        default=0,
        help_text="Shoppers admitted per second; 0 = automatic (the measured purchase capacity, "
        "setting WAITING_ROOM_AUTO_RATE)",
    )
    room_prequeue_seconds = models.PositiveIntegerField(
        "pre-queue window",
        default=600,
        validators=[MaxValueValidator(3600)],
        help_text="Seconds before the start when joining opens; those shoppers are drawn in "
        "random order at the start",
    )
    room_admission_seconds = models.PositiveIntegerField(
        "time to buy",
        default=120,
        validators=[MinValueValidator(10)],
        help_text="Seconds an admitted shopper has to buy (at least 10)",
    )
    room_overbooking = models.DecimalField(
        "overbooking factor",
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Admissions outstanding at most remaining units times this (1.00-5.00)",
    )
    # Draws the pre-queue's order; secret until the deal ends, then published on the deal so
    # anyone can re-run the draw (apps.deals.gate.room.prequeue_order).
    room_seed = models.CharField(max_length=32, default=room_seed_new, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DealQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "id"]
        # Running a deal (publish, pause, resume, end, reconcile, dead letters) is not editing
        # it: the "operator" role has it, the read-only "viewer" does not (apps.accounts.roles).
        permissions = [("run_deal", "Can run deals: publish, pause, resume, end, reconcile")]
        constraints = [
            models.CheckConstraint(condition=Q(deal_price__gte=0), name="deal_price_gte_0"),
            models.CheckConstraint(condition=Q(deal_stock__gte=1), name="deal_stock_gte_1"),
            models.CheckConstraint(
                condition=Q(remaining_stock__gte=0) & Q(remaining_stock__lte=F("deal_stock")),
                name="deal_remaining_within_quota",
            ),
            models.CheckConstraint(condition=Q(per_user_limit__gte=1), name="deal_limit_gte_1"),
            models.CheckConstraint(condition=Q(starts_at__lt=F("ends_at")), name="deal_period"),
            models.CheckConstraint(
                condition=Q(room_overbooking__gte=1) & Q(room_overbooking__lte=5),
                name="deal_room_overbooking_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(room_admission_seconds__gte=10), name="deal_room_admission_gte_10s"
            ),
            models.CheckConstraint(
                condition=Q(room_prequeue_seconds__lte=3600), name="deal_room_prequeue_lte_1h"
            ),
        ]
        indexes = [
            models.Index(fields=["starts_at", "ends_at"], name="deal_window_idx"),
            models.Index(fields=["ends_at"], name="deal_ends_idx"),
            # GET /products/deals: open deals in ends_at order; only a handful of rows qualify.
            models.Index(
                fields=["ends_at", "id"],
                condition=Q(published_at__isnull=False, ended_at__isnull=True),
                name="deal_open_ends_idx",
            ),
        ]

    def __str__(self) -> str:
        """The deal's reference everywhere in the admin: the product and the start in the
        site's time zone ("Desk lamp (2025-06-01 20:00)"), readable where a UUID is not.
        Select the product with the deal where many are listed."""
        return f"{self.product.name} ({timezone.localtime(self.starts_at):%Y-%m-%d %H:%M})"

    def status_at(self, now=None, remaining: int | None = None) -> str:
        """Status from the clock and stock. `remaining` overrides the DB copy (live Redis value)."""
        now = now or timezone.now()
        remaining = self.remaining_stock if remaining is None else remaining
        if self.published_at is None:
            return DealStatus.DRAFT
        if self.ended_at is not None or now >= self.ends_at:
            return DealStatus.ENDED
        if self.paused_at is not None:
            return DealStatus.PAUSED
        if now < self.starts_at:
            return DealStatus.SCHEDULED
        if remaining <= 0:
            return DealStatus.SOLD_OUT
        return DealStatus.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at()
