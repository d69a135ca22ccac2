"""Account writes: registration and the token lifecycle (issue, rotate, revoke)."""

from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from apps.core.errors import ValidationFailed
from apps.core.ratelimit import rate_limit_hit

from .errors import EmailExists, InvalidCredentials, InvalidToken
from .models import User
from .revocation import user_access_revoke


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"

    @property
    def expires_in(self) -> int:
        return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())


def user_register(*, email: str, password: str, name: str, client_address: str) -> User:
    """Creates a shopper. A concurrent duplicate loses on the unique constraint: 409, never 500.
    Counted against the client address once the password passes the validators (a retry after
    a weak password is free), before the hash: a duplicate email counts too."""
    email = User.objects.normalize_email(email).lower()
    try:
        validate_password(password, user=User(email=email, name=name))
    except DjangoValidationError as exc:
        raise ValidationFailed(details={"password": list(exc.messages)}) from exc
    rate_limit_hit("register_address", client_address, client_address=client_address)
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError as exc:
        raise EmailExists() from exc


def token_pair_for(user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    _add_claims(refresh, user)
    return TokenPair(access_token=str(refresh.access_token), refresh_token=str(refresh))


def _add_claims(token: RefreshToken, user: User) -> None:
    # Claims let shopper endpoints authenticate without a user row lookup (AUTH_MODE=stateless).
    # Access tokens made from this refresh token copy them.
    token["email"] = user.email
    token["is_staff"] = user.is_staff


def login_attempt_allow(*, email: str, client_address: str) -> None:
    """Counts one login attempt (the API's and the admin's share the budgets) and raises
    RateLimited past either limit. Runs before the password hash (~0.35 s of CPU each), so a
    refused attempt costs one or two Redis round trips. The address is counted first: a client
    refused by its own address does not also use up the account's budget."""
    rate_limit_hit("login_address", client_address, client_address=client_address)
    account = User.objects.normalize_email(email).lower()
    rate_limit_hit("login_account", account, client_address=client_address)


def token_obtain(*, email: str, password: str, client_address: str) -> TokenPair:
    login_attempt_allow(email=email, client_address=client_address)
    user = authenticate(email=email.lower(), password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    return token_pair_for(user)


def token_refresh(*, refresh_token: str, client_address: str) -> TokenPair:
    """Rotates: the old refresh token is blacklisted and a new pair issued. Refuses access tokens
    (the `type` claim) and revoked tokens. Counted per client address before anything else."""
    rate_limit_hit("refresh_address", client_address, client_address=client_address)
    try:
        # Verifies signature, expiry, type and blacklist. simplejwt annotates the argument as
        # `Token | None`, but what it takes (and decodes) is the encoded token string.
        old = RefreshToken(refresh_token)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidToken() from exc
    user = User.objects.filter(pk=old["user_id"], is_active=True).first()
    if user is None:
        raise InvalidToken()
    # get_or_create: race-safe. simplejwt annotates blacklist() as returning the row, but it
    # returns get_or_create's (row, created) (jazzband/djangorestframework-simplejwt#911).
    _, newly_revoked = cast(tuple[object, bool], old.blacklist())
    if not newly_revoked:
        raise InvalidToken()  # a concurrent refresh of the same token already rotated it
    return token_pair_for(user)


def token_revoke(*, refresh_token: str, user_id: str) -> None:
    """Logout: blacklists the refresh token and revokes the user's access tokens issued up to
    now (apps.accounts.revocation; every process refuses them within a second), so a token
    copied from the signed-out device stops working too. The user's other devices get a 401 at
    their next request and refresh once. Refuses another user's token."""
    try:
        token = RefreshToken(refresh_token)  # type: ignore[arg-type]  # see token_refresh
    except TokenError as exc:
        if "blacklisted" in str(exc):
            return
        raise InvalidToken() from exc
    if str(token["user_id"]) != str(user_id):
        raise InvalidToken("The refresh token belongs to another user.")
    token.blacklist()  # get_or_create: a concurrent logout is harmless
    user_access_revoke(user_id=user_id)
