import uuid

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import token_user
from apps.core.errors import ApplicationError, ErrorCode, NotFound
from apps.core.exception_handler import api_exception_handler
from apps.core.pagination import Page
from apps.core.ratelimit import purchase_limit
from apps.core.renderers import OrjsonRenderer
from apps.core.schema import error_response
from apps.core.validation import validated

from .models import OrderStatus
from .placed import PlacedOrder
from .presenters import order_body, placed_body
from .selectors import order_list_page, order_or_reservation_get
from .services import OrderInput, order_cancel, order_place
from .validation import (
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    OrderListQuerySerializer,
    ShippingSerializer,
    order_input_from,
    plain_lines,
)

# --- schema-only serializers (the contract, for drf-spectacular) -------------------------------


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


_ERRORS = {
    400: error_response(
        ErrorCode.INSUFFICIENT_STOCK,
        ErrorCode.DEAL_SOLD_OUT,
        ErrorCode.DEAL_NOT_ACTIVE,
        ErrorCode.INVALID_DEAL,
        ErrorCode.DEAL_LIMIT_EXCEEDED,
    ),
    403: error_response(ErrorCode.NOT_ADMITTED),
    404: error_response(ErrorCode.PRODUCT_NOT_FOUND, ErrorCode.DEAL_NOT_FOUND),
    409: error_response(ErrorCode.IDEMPOTENCY_KEY_REUSED),
    422: error_response(ErrorCode.VALIDATION_ERROR),
    429: error_response(ErrorCode.RATE_LIMITED, note="+ Retry-After"),
    503: error_response(ErrorCode.SERVICE_UNAVAILABLE, note="+ Retry-After"),
}
_ORDER_NOT_FOUND = error_response(ErrorCode.NOT_FOUND, note="also another shopper's order")


def _placed_answer(placed: PlacedOrder) -> tuple[dict, int, dict[str, str]]:
    """Body, status and headers of a placed order, whichever path renders them."""
    body = placed_body(placed)
    if placed.accepted_async:
        return body, status.HTTP_202_ACCEPTED, {"Location": f"/orders/{body['id']}"}
    return body, status.HTTP_201_CREATED, {}


def _placed_response(placed: PlacedOrder) -> Response:
    body, code, headers = _placed_answer(placed)
    return Response(body, status=code, headers=headers)


def _order_input(request, data, lines=None) -> OrderInput:
    meta = request.META
    return order_input_from(data, meta.get("HTTP_IDEMPOTENCY_KEY"), meta.get("HTTP_ADMISSION"),
                            lines=lines)  # fmt: skip


# What DRF's finalize_response adds to every answer of this view (no Vary: one renderer); the
# direct path adds the same.
_VIEW_HEADERS = {"Allow": "GET, POST, HEAD, OPTIONS"}


def _purchase_direct(request: HttpRequest) -> HttpResponse | None:
    """POST /orders in its common shape, answered without DRF's request cycle (negotiation,
    parser and renderer lookup, the Request wrapper), which costs a purchase more CPU than its
    reservation: a JSON body (Content-Type exactly application/json, Content-Length given) of
    plain valid lines, a valid Bearer token, JSON acceptable, and the orjson renderer. The
    checks, services and error bodies are the view's own, in the same order: token, rate limit,
    then the Idempotency-Key and the purchase. Anything else returns None, and DRF answers it
    exactly as before (every malformed body, header or token)."""
    meta = request.META
    if (
        settings.API_RENDERER != "orjson"
        or meta.get("CONTENT_TYPE") != "application/json"
        or meta.get("HTTP_ACCEPT", "*/*") not in ("*/*", "application/json")
        or not meta.get("CONTENT_LENGTH", "").isdigit()  # over the limit: RequestGuard's 413
    ):
        return None
    scheme, _, raw = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    try:
        user, _token = token_user(raw.strip())
        data = orjson.loads(request.body)  # stricter than json: a body it refuses goes to DRF
    except (AuthenticationFailed, orjson.JSONDecodeError):
        return None
    lines = plain_lines(data)
    if lines is None:
        return None
    request.user = user  # as DRF would set it: the rate limit and the logs read it
    try:
        purchase_limit(request)
        placed = order_place(user_id=user.pk, data=_order_input(request, data, lines))
    except (ApplicationError, APIException) as exc:
        refused = api_exception_handler(exc, {"view": None})  # the contract's body and headers
        headers = {k: v for k, v in refused.items() if k != "Content-Type"}
        return _json_response(refused.data, refused.status_code, headers)
    return _json_response(*_placed_answer(placed))


def _json_response(body: dict, code: int, headers: dict[str, str]) -> HttpResponse:
    """What DRF's response would be, rendered by the same renderer, with the view's headers."""
    response = HttpResponse(_RENDERER.render(body), status=code, content_type="application/json")
    for header, value in (headers | _VIEW_HEADERS).items():
        response[header] = value
    return response


_RENDERER = OrjsonRenderer()


class OrderCollectionApi(APIView):
    """GET lists the shopper's orders; POST places one (the purchase pipeline)."""

    permission_classes = [IsAuthenticated]

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and (direct := _purchase_direct(request)) is not None:
            return direct
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        tags=["orders"],
        operation_id="orders_list",
        parameters=[OrderListQuerySerializer],
        responses={200: OrderPageSerializer, 422: _ERRORS[422]},
    )
    def get(self, request):
        query = validated(OrderListQuerySerializer, request.query_params)
        page = Page(page=query["page"], size=query["size"])
        orders, total = order_list_page(
            user_id=request.user.pk, status=query.get("status"), page=page
        )
        return Response(page.body([order_body(o, list(o.items.all())) for o in orders], total))

    @extend_schema(
        tags=["orders"],
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter(
                "Admission",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="The waiting room's admission (a ticket's `admission`), needed "
                "when the deal's waiting room is on; used up by the purchase.",
            ),
        ],
        responses={201: OrderOutputSerializer, 202: OrderOutputSerializer, **_ERRORS},
    )
    def post(self, request):
        purchase_limit(request)  # before the body is even parsed: a refusal costs only this
        placed = order_place(user_id=request.user.pk, data=_order_input(request, request.data))
        return _placed_response(placed)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_retrieve",
        responses={200: OrderOutputSerializer, 404: _ORDER_NOT_FOUND},
    )
    def get(self, request, order_id: uuid.UUID):
        found = order_or_reservation_get(order_id=order_id, user_id=request.user.pk)
        if found is None:
            raise NotFound("No such order.")
        return Response(placed_body(found))


class OrderCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_cancel",
        request=OrderCancelInputSerializer,
        responses={
            200: OrderOutputSerializer,
            400: error_response(ErrorCode.CANNOT_CANCEL),
            404: _ORDER_NOT_FOUND,
        },
    )
    def post(self, request, order_id: uuid.UUID):
        # An empty body is no reason; any other body must be a JSON object (`false`, `[]` and
        # `null` are 422s, not "no reason").
        data = validated(OrderCancelInputSerializer, request.data)
        order = order_cancel(order_id=order_id, user_id=request.user.pk, **data)
        return Response(order_body(order, list(order.items.all())))
