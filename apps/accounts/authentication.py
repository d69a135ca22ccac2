"""Bearer JWT authentication for the API.

AUTH_MODE=stateless (default) trusts the signed claims and builds a lightweight user without a
query, refusing the tokens of users deactivated or deleted since (apps.accounts.revocation: a
process-local copy, no round trip per request); AUTH_MODE=database loads the user row on every
request (the auth-cpu-bottleneck "before").
Missing header -> no user (401 UNAUTHORIZED from the permission); bad token -> 401 INVALID_TOKEN.
"""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from .errors import AccessRevoked
from .models import User
from .revocation import access_revoked


@dataclass(frozen=True)
class TokenUser:
    """The user as the access token describes it. Enough for shopper endpoints."""

    id: UUID
    email: str
    is_staff: bool
    is_active: bool = True
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> UUID:
        return self.id


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        return token_user(raw.strip())

    def authenticate_header(self, request) -> str:
        # Present so DRF answers 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


def token_user(raw: str) -> tuple[TokenUser | User, AccessToken]:
    """The user an access token names, and the token: what BearerTokenAuthentication answers,
    and what the purchase's own dispatch (apps.orders.apis) checks without DRF around it.
    Raises AuthenticationFailed for a bad, expired or revoked token."""
    try:
        token = AccessToken(raw)  # signature, expiry and `type == access`
    except TokenError as exc:
        raise exceptions.AuthenticationFailed("The token is invalid or expired.") from exc
    try:
        user_id = UUID(str(token["user_id"]))
    except (KeyError, ValueError) as exc:
        raise exceptions.AuthenticationFailed("The token has no valid user.") from exc

    if settings.AUTH_MODE == "database":
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("The user no longer exists or is inactive.")
        return user, token
    if not settings.AUTH_UNSAFE_SKIP_REVOCATION and access_revoked(
        user_id=user_id, issued_at=token.get("iat")
    ):  # the setting is a test-only negative control (settings/base.py)
        raise exceptions.AuthenticationFailed(AccessRevoked.default_message)
    return (
        TokenUser(id=user_id, email=token.get("email", ""), is_staff=token.get("is_staff", False)),
        token,
    )
