"""Request validation for orders. The serializers are the contract (and the OpenAPI schema);
`order_input_from` adds a fast path for the common purchase body, because DRF's nested
serializer validation costs more CPU than the whole Redis reservation."""

import re
import uuid

from rest_framework import serializers

from apps.core.errors import ValidationFailed
from apps.core.pagination import PageQuerySerializer
from apps.core.validation import (
    StrictCharField,
    StrictIntegerField,
    StrictRegexField,
    StrictUUIDField,
    validated,
)

from .models import OrderStatus
from .services import LineInput, OrderInput

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")  # printable ASCII, no spaces
MAX_LINES = 20


class ShippingSerializer(serializers.Serializer):
    recipient_name = StrictCharField(min_length=1, max_length=50)
    phone = StrictRegexField(
        r"^01[016789]-[0-9]{3,4}-[0-9]{4}$", error_messages={"invalid": "Use 01x-xxxx-xxxx."}
    )
    address = StrictCharField(min_length=1, max_length=200)
    address_detail = StrictCharField(max_length=200, required=False, allow_blank=True)
    postal_code = StrictRegexField(
        r"^[0-9]{5}$", error_messages={"invalid": "Use a 5-digit postal code."}
    )


class LineSerializer(serializers.Serializer):
    product_id = StrictUUIDField()
    deal_id = StrictUUIDField(required=False, allow_null=True)
    quantity = StrictIntegerField(min_value=1, max_value=10)


class OrderCreateInputSerializer(serializers.Serializer):
    items = LineSerializer(many=True, allow_empty=False, max_length=20)
    shipping_address = ShippingSerializer(required=False, allow_null=True)

    def validate_items(self, items: list[dict]) -> list[dict]:
        if any(line.get("deal_id") for line in items) and len(items) != 1:
            raise serializers.ValidationError("An order with a deal item has exactly one item.")
        product_ids = [line["product_id"] for line in items]
        if len(set(product_ids)) != len(product_ids):
            raise serializers.ValidationError("Each product may appear only once.")
        return items


class OrderListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)


class OrderCancelInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)


def plain_lines(data) -> tuple[LineInput, ...] | None:
    """The items of a plain, valid body, checked by hand; None for anything else (the
    serializer then validates it and words the errors)."""
    if not isinstance(data, dict) or set(data) - {"items", "shipping_address"}:
        return None
    if data.get("shipping_address") is not None:
        return None
    items = data.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINES:
        return None
    lines = []
    try:
        for item in items:
            quantity = item["quantity"]
            deal_id = item.get("deal_id")
            if type(quantity) is not int or not 1 <= quantity <= 10:
                return None
            lines.append(
                LineInput(
                    product_id=uuid.UUID(item["product_id"]),
                    quantity=quantity,
                    deal_id=uuid.UUID(deal_id) if deal_id is not None else None,
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if len({line.product_id for line in lines}) != len(lines):
        return None
    if len(lines) > 1 and any(line.deal_id for line in lines):
        return None
    return tuple(lines)


def order_input_from(
    data,
    idempotency_key: str | None,
    admission: str | None = None,
    *,
    lines: tuple[LineInput, ...] | None = None,
) -> OrderInput:
    """The order the body asks for. `lines`: plain_lines(data), when the caller has it."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise ValidationFailed(
            details={"Idempotency-Key": ["1 to 100 printable ASCII characters, no spaces."]}
        )
    lines = lines or plain_lines(data)
    if lines is not None:
        return OrderInput(items=lines, idempotency_key=idempotency_key, admission=admission)
    cleaned = validated(OrderCreateInputSerializer, data)
    lines = tuple(
        LineInput(product_id=i["product_id"], quantity=i["quantity"], deal_id=i.get("deal_id"))
        for i in cleaned["items"]
    )
    return OrderInput(
        items=lines,
        shipping=cleaned.get("shipping_address"),
        idempotency_key=idempotency_key,
        admission=admission,
    )
