"""Product endpoints: reads are public (and cached), writes need a staff user."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsStaff
from apps.core.errors import ErrorCode
from apps.core.pagination import page_from_query
from apps.core.renderers import json_bytes_response
from apps.core.schema import error_response
from apps.core.validation import (
    StrictCharField,
    StrictIntegerField,
    StrictURLField,
    validated,
)

from .presenters import product_data, product_stock_data
from .selectors import product_data_get, product_list_json, product_stock_data_get
from .services import STOCK_MAX, product_create, product_stock_adjust, product_update

PRICE_MAX = 1_000_000_000_000  # KRW; far above any real price, well inside a bigint
MAX_CATEGORY = 50


def route(*apis: type[APIView]) -> type[APIView]:
    """Serves several one-operation APIs on one path (DRF dispatches by method); each method keeps
    the permissions of the API class that defines it, so a public GET and a staff POST can share
    `/products` without a combined permission rule."""
    owners = {m: api for api in apis for m in api.http_method_names if m in api.__dict__}

    def get_permissions(self):
        owner = owners.get(self.request.method.lower(), apis[0])
        return [permission() for permission in owner.permission_classes]

    name = "".join(api.__name__.removesuffix("Api") for api in apis) + "Api"
    return type(name, apis, {"get_permissions": get_permissions, "__module__": apis[0].__module__})


class ProductOutputSerializer(serializers.Serializer):
    """Schema of apps.catalog.presenters.product_data (the body actually sent)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.IntegerField()
    stock = serializers.IntegerField()
    category = serializers.CharField()
    image_url = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProductPageSerializer(serializers.Serializer):
    items = ProductOutputSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    size = serializers.IntegerField()


class ProductStockOutputSerializer(serializers.Serializer):
    product_id = serializers.UUIDField()
    stock = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class ProductFieldsSerializer(serializers.Serializer):
    """Bounds shared by create and update; the database CHECK constraints back them up."""

    name = StrictCharField(min_length=1, max_length=200)
    description = StrictCharField(max_length=5000, allow_blank=True, default="")
    price = StrictIntegerField(min_value=0, max_value=PRICE_MAX)
    category = StrictCharField(max_length=50, allow_blank=True, default="")
    image_url = StrictURLField(max_length=500, allow_blank=True, default="")

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({field: ["Unknown field."] for field in unknown})
        return attrs


class ProductCreateInputSerializer(ProductFieldsSerializer):
    stock = StrictIntegerField(min_value=0, max_value=STOCK_MAX, default=0)


class ProductUpdateInputSerializer(ProductFieldsSerializer):
    """Partial: only the fields sent change. Stock moves only through PATCH .../stock."""


class ProductListQuerySerializer(serializers.Serializer):
    # DRF's CharField refuses NUL characters (PostgreSQL cannot store them): a 422, not a 500.
    category = serializers.CharField(max_length=MAX_CATEGORY, required=False, allow_blank=True)
    page = serializers.IntegerField(required=False)  # bounds: apps.core.pagination
    size = serializers.IntegerField(required=False)


class ProductListApi(APIView):
    @extend_schema(
        operation_id="products_list",
        tags=["products"],
        parameters=[ProductListQuerySerializer],
        responses=ProductPageSerializer,
    )
    def get(self, request):
        page = page_from_query(request.query_params)
        category = request.query_params.get("category")
        if category is not None and (len(category) > MAX_CATEGORY or "\x00" in category):
            validated(ProductListQuerySerializer, request.query_params)  # words the 422
        return json_bytes_response(product_list_json(category=category or None, page=page))


class ProductCreateApi(APIView):
    permission_classes = [IsStaff]
    required_permissions = ("catalog.add_product",)

    @extend_schema(
        operation_id="products_create",
        tags=["products"],
        request=ProductCreateInputSerializer,
        responses={201: ProductOutputSerializer},
    )
    def post(self, request):
        product = product_create(**validated(ProductCreateInputSerializer, request.data))
        return Response(product_data(product), status=status.HTTP_201_CREATED)


class ProductDetailApi(APIView):
    @extend_schema(
        operation_id="products_retrieve",
        tags=["products"],
        responses={200: ProductOutputSerializer, 404: error_response(ErrorCode.NOT_FOUND)},
    )
    def get(self, request, product_id):
        return Response(product_data_get(product_id=product_id))


class ProductUpdateApi(APIView):
    permission_classes = [IsStaff]
    required_permissions = ("catalog.change_product",)

    @extend_schema(
        operation_id="products_update",
        tags=["products"],
        request=ProductUpdateInputSerializer,
        responses={
            200: ProductOutputSerializer,
            400: error_response(ErrorCode.PRICE_NOT_ABOVE_DEAL, note="price <= an open deal's"),
            404: error_response(ErrorCode.NOT_FOUND),
            422: error_response(ErrorCode.VALIDATION_ERROR),
        },
    )
    def patch(self, request, product_id):
        data = validated(ProductUpdateInputSerializer, request.data, partial=True)
        product = product_update(product_id=product_id, **data)
        return Response(product_data(product))


class ProductStockApi(APIView):
    @extend_schema(
        operation_id="products_stock_retrieve",
        tags=["products"],
        responses=ProductStockOutputSerializer,
    )
    def get(self, request, product_id):
        return Response(product_stock_data_get(product_id=product_id))


class ProductStockAdjustApi(APIView):
    permission_classes = [IsStaff]
    required_permissions = ("catalog.change_product",)

    class InputSerializer(serializers.Serializer):
        delta = StrictIntegerField(min_value=-STOCK_MAX, max_value=STOCK_MAX)

    @extend_schema(
        tags=["products"],
        request=InputSerializer,
        responses={
            200: ProductStockOutputSerializer,
            400: error_response(ErrorCode.INSUFFICIENT_STOCK),
        },
        operation_id="products_stock_adjust",
    )
    def patch(self, request, product_id):
        data = validated(self.InputSerializer, request.data)
        product = product_stock_adjust(
            product_id=product_id, delta=data["delta"], actor_id=request.user.pk, note="API"
        )
        return Response(product_stock_data(product))
