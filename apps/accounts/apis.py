from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caching import NoStoreMixin
from apps.core.errors import ErrorCode
from apps.core.ratelimit import client_address
from apps.core.schema import error_response
from apps.core.validation import StrictCharField, StrictEmailField, validated

from .errors import InvalidToken
from .models import User
from .services import token_obtain, token_refresh, token_revoke, user_register

RATE_LIMITED_RESPONSE = error_response(
    ErrorCode.RATE_LIMITED, note="with Retry-After; limits in docs/security.md"
)


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "created_at"]


class TokenOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class RefreshInputSerializer(serializers.Serializer):
    refresh_token = StrictCharField(max_length=2000)


class RegisterInputSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = StrictCharField(min_length=8, max_length=128, trim_whitespace=False)
    name = StrictCharField(min_length=2, max_length=50)


class RegisterApi(NoStoreMixin, APIView):
    authentication_classes: list = []

    @extend_schema(
        tags=["auth"],
        request=RegisterInputSerializer,
        responses={
            201: UserOutputSerializer,
            409: error_response(ErrorCode.EMAIL_EXISTS),
            429: RATE_LIMITED_RESPONSE,
        },
    )
    def post(self, request):
        data = validated(RegisterInputSerializer, request.data)
        user = user_register(**data, client_address=client_address(request))
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginInputSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class LoginApi(NoStoreMixin, APIView):
    authentication_classes: list = []

    @extend_schema(
        tags=["auth"],
        request=LoginInputSerializer,
        responses={
            200: TokenOutputSerializer,
            401: error_response(ErrorCode.INVALID_CREDENTIALS),
            429: RATE_LIMITED_RESPONSE,
        },
    )
    def post(self, request):
        data = validated(LoginInputSerializer, request.data)
        pair = token_obtain(**data, client_address=client_address(request))
        return Response(TokenOutputSerializer(pair).data)


class RefreshApi(NoStoreMixin, APIView):
    authentication_classes: list = []

    @extend_schema(
        tags=["auth"],
        request=RefreshInputSerializer,
        responses={
            200: TokenOutputSerializer,
            401: error_response(ErrorCode.INVALID_TOKEN, note="also an access token"),
            429: RATE_LIMITED_RESPONSE,
        },
    )
    def post(self, request):
        data = validated(RefreshInputSerializer, request.data)
        pair = token_refresh(**data, client_address=client_address(request))
        return Response(TokenOutputSerializer(pair).data)


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["auth"], request=RefreshInputSerializer, responses={204: None})
    def post(self, request):
        data = validated(RefreshInputSerializer, request.data)
        token_revoke(refresh_token=data["refresh_token"], user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VerifyApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["auth"],
        responses=inline_serializer(
            "TokenVerify", {"valid": serializers.BooleanField(), "user_id": serializers.UUIDField()}
        ),
    )
    def get(self, request):
        return Response({"valid": True, "user_id": str(request.user.pk)})


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["auth"], responses=UserOutputSerializer)
    def get(self, request):
        user = User.objects.filter(pk=request.user.pk).first()
        if user is None:
            raise InvalidToken("The user no longer exists.")
        return Response(UserOutputSerializer(user).data)
