import re
import uuid

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import NotFound, ValidationFailed
from apps.core.pagination import Page, PageQuerySerializer
from apps.core.validation import validated
from apps.deals import gate

from .models import Order, OrderItem, OrderStatus
from .selectors import order_get, order_list
from .services import LineInput, OrderInput, PlacedOrder, order_cancel, order_place
from .services.pipelines import pending_order

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")  # printable ASCII, no spaces


def _iso(value) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def order_body(order: Order, items: list[OrderItem]) -> dict:
    """The Order of the contract. Built by hand: it is on the hottest paths (order-tps-limit)."""
    return {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "items": [
            {
                "id": str(item.id),
                "product_id": str(item.product_id),
                "deal_id": str(item.deal_id) if item.deal_id else None,
                "product_name": item.product_name,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "subtotal": item.subtotal,
            }
            for item in items
        ],
        "total_amount": order.total_amount,
        "status": order.status,
        "shipping_address": order.shipping_address,
        "cancelled_at": _iso(order.cancelled_at),
        "cancel_reason": order.cancel_reason or None,
        "failure_reason": order.failure_reason or None,
        "created_at": _iso(order.created_at),
        "updated_at": _iso(order.updated_at),
    }


# --- schema-only serializers (the contract, for drf-spectacular) -------------------------------


class ShippingSerializer(serializers.Serializer):
    recipient_name = serializers.CharField(min_length=1, max_length=50)
    phone = serializers.RegexField(
        r"^01[016789]-\d{3,4}-\d{4}$", error_messages={"invalid": "Use 01x-xxxx-xxxx."}
    )
    address = serializers.CharField(min_length=1, max_length=200)
    address_detail = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.RegexField(
        r"^\d{5}$", error_messages={"invalid": "Use a 5-digit postal code."}
    )


class OrderItemOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    deal_id = serializers.UUIDField(allow_null=True)
    product_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    subtotal = serializers.IntegerField()


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    items = OrderItemOutputSerializer(many=True)
    total_amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    shipping_address = ShippingSerializer(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancel_reason = serializers.CharField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderPageSerializer(serializers.Serializer):
    items = OrderOutputSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    size = serializers.IntegerField()


class LineSerializer(serializers.Serializer):
    product_id = serializers.UUIDField()
    deal_id = serializers.UUIDField(required=False, allow_null=True)
    quantity = serializers.IntegerField(min_value=1, max_value=10)


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


_ERRORS = {
    400: OpenApiResponse(description="INSUFFICIENT_STOCK, DEAL_SOLD_OUT, DEAL_NOT_ACTIVE, ..."),
    404: OpenApiResponse(description="PRODUCT_NOT_FOUND / DEAL_NOT_FOUND"),
    409: OpenApiResponse(description="IDEMPOTENCY_KEY_REUSED"),
    422: OpenApiResponse(description="VALIDATION_ERROR"),
    503: OpenApiResponse(description="SERVICE_UNAVAILABLE (+ Retry-After)"),
}


def _placed_response(placed: PlacedOrder) -> Response:
    body = order_body(placed.order, placed.items)
    if placed.accepted_async:
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/orders/{body['id']}"}
        )
    return Response(body, status=status.HTTP_201_CREATED)


def _order_input(request) -> OrderInput:
    data = validated(OrderCreateInputSerializer, request.data)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            details={"Idempotency-Key": ["1 to 100 printable ASCII characters, no spaces."]}
        )
    lines = tuple(
        LineInput(product_id=i["product_id"], quantity=i["quantity"], deal_id=i.get("deal_id"))
        for i in data["items"]
    )
    return OrderInput(items=lines, shipping=data.get("shipping_address"), idempotency_key=key)


class OrderCollectionApi(APIView):
    """GET lists the shopper's orders; POST places one (the purchase pipeline)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_list",
        parameters=[OrderListQuerySerializer],
        responses={200: OrderPageSerializer, 422: _ERRORS[422]},
    )
    def get(self, request):
        query = validated(OrderListQuerySerializer, request.query_params)
        page = Page(page=query["page"], size=query["size"])
        orders = order_list(user_id=request.user.pk, status=query.get("status"))
        rows = list(orders[page.offset : page.offset + page.size])
        items = [order_body(order, list(order.items.all())) for order in rows]
        return Response(page.body(items, orders.count()))

    @extend_schema(
        tags=["orders"],
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
        responses={201: OrderOutputSerializer, 202: OrderOutputSerializer, **_ERRORS},
    )
    def post(self, request):
        placed = order_place(user_id=request.user.pk, data=_order_input(request))
        return _placed_response(placed)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_retrieve",
        responses={200: OrderOutputSerializer, 404: _ERRORS[404]},
    )
    def get(self, request, order_id: uuid.UUID):
        order = order_get(order_id=order_id, user_id=request.user.pk)
        if order is not None:
            return Response(order_body(order, list(order.items.all())))
        found = gate.reservation_lookup(order_id)
        if found is None or found[1]["user_id"] != str(request.user.pk):
            raise NotFound("No such order.")
        placed = pending_order(found[1], status=found[0])
        return Response(order_body(placed.order, placed.items))


class OrderCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class OrderCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_cancel",
        request=OrderCancelInputSerializer,
        responses={200: OrderOutputSerializer, 400: OpenApiResponse(description="CANNOT_CANCEL")},
    )
    def post(self, request, order_id: uuid.UUID):
        data = validated(OrderCancelInputSerializer, request.data or {})
        order = order_cancel(order_id=order_id, user_id=request.user.pk, **data)
        return Response(order_body(order, list(order.items.all())))
