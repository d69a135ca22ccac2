"""Deal endpoints under /products/deals: public reads with live stock, staff-only creation."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsStaff
from apps.catalog.apis import PRICE_MAX, ProductOutputSerializer, route
from apps.catalog.services import STOCK_MAX
from apps.core.errors import ErrorCode
from apps.core.pagination import PageQuerySerializer, page_from_query
from apps.core.schema import error_response
from apps.core.validation import (
    StrictDateTimeField,
    StrictIntegerField,
    StrictUUIDField,
    validated,
)

from .presenters import deal_data, deals_live
from .selectors import deal_data_get, deal_list_active_data
from .services import deal_create

PER_USER_LIMIT_MAX = 1000


class DealOutputSerializer(serializers.Serializer):
    """Schema of apps.deals.presenters (the body actually sent)."""

    id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    product = ProductOutputSerializer()
    deal_price = serializers.IntegerField()
    original_price = serializers.IntegerField()
    deal_stock = serializers.IntegerField()
    remaining_stock = serializers.IntegerField(help_text="Live: from the Redis gate while on sale")
    per_user_limit = serializers.IntegerField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=["scheduled", "active", "sold_out", "paused", "ended"],
        help_text="Only `active` deals can be bought. The deal list shows every deal inside its "
        "sale window, so it also carries `paused` (an operator stopped sales; a purchase answers "
        "400 DEAL_NOT_ACTIVE) and `sold_out` ones, marked by this field.",
    )
    waiting_room = serializers.BooleanField(
        help_text="Sold through a waiting room: join POST /products/deals/{id}/queue and buy "
        "with the admission it gives (403 NOT_ADMITTED otherwise)"
    )
    queue_seed = serializers.CharField(
        allow_null=True,
        help_text="After the sale: the seed that drew the pre-queue's order, so anyone can "
        "re-run the draw (docs/operator-guide.md); null before",
    )
    created_at = serializers.DateTimeField()


class DealPageSerializer(serializers.Serializer):
    items = DealOutputSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    size = serializers.IntegerField()


class DealCreateInputSerializer(serializers.Serializer):
    product_id = StrictUUIDField()
    deal_price = StrictIntegerField(min_value=0, max_value=PRICE_MAX)
    deal_stock = StrictIntegerField(min_value=1, max_value=STOCK_MAX)
    per_user_limit = StrictIntegerField(min_value=1, max_value=PER_USER_LIMIT_MAX, default=1)
    starts_at = StrictDateTimeField()
    ends_at = StrictDateTimeField()


class DealListApi(APIView):
    @extend_schema(
        operation_id="deals_list",
        tags=["deals"],
        description="Deals inside their sale window, newest first. Purchasable ones have "
        "`status: active`; paused and sold-out deals stay listed, marked by `status` "
        "(`paused`, `sold_out`), so a shopper's app can show them greyed out rather than have "
        "them vanish and reappear.",
        parameters=[PageQuerySerializer],
        responses=DealPageSerializer,
    )
    def get(self, request):
        return Response(deal_list_active_data(page=page_from_query(request.query_params)))


class DealCreateApi(APIView):
    permission_classes = [IsStaff]
    required_permissions = ("deals.add_deal", "deals.run_deal")  # it publishes the deal

    @extend_schema(
        operation_id="deals_create",
        tags=["deals"],
        request=DealCreateInputSerializer,
        responses={
            201: DealOutputSerializer,
            400: error_response(ErrorCode.INVALID_PERIOD, ErrorCode.INSUFFICIENT_STOCK),
            404: error_response(ErrorCode.PRODUCT_NOT_FOUND),
        },
    )
    def post(self, request):
        data = validated(DealCreateInputSerializer, request.data)
        deal = deal_create(**data, publish=True, actor_id=request.user.pk)
        return Response(deals_live([deal_data(deal)])[0], status=status.HTTP_201_CREATED)


class DealDetailApi(APIView):
    @extend_schema(
        operation_id="deals_retrieve",
        tags=["deals"],
        responses={200: DealOutputSerializer, 404: error_response(ErrorCode.NOT_FOUND)},
    )
    def get(self, request, deal_id):
        return Response(deal_data_get(deal_id=deal_id))


DealCollectionApi = route(DealListApi, DealCreateApi)
