import threading
import time
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import User
from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    return body["error"]


def login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD):
    return client.post("/auth/login", {"email": email, "password": password}, format="json")


# --- register --------------------------------------------------------------------------------


def test_register_creates_user_and_hides_password(api_client):
    response = api_client.post(
        "/auth/register",
        {"email": "New@Example.com", "password": "a-long-passphrase", "name": "Kim"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "created_at"}
    assert body["email"] == "new@example.com"
    assert body["name"] == "Kim"
    user = User.objects.get(pk=body["id"])
    assert user.check_password("a-long-passphrase")
    assert not user.is_staff


def test_register_duplicate_email_is_409_case_insensitive(api_client, user):
    response = api_client.post(
        "/auth/register",
        {"email": user.email.upper(), "password": "a-long-passphrase", "name": "Kim"},
        format="json",
    )

    assert response.status_code == 409
    assert error_of(response) == "EMAIL_EXISTS"
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": "a-long-passphrase", "name": "Kim"}, "email"),
        ({"email": "not-an-email", "password": "a-long-passphrase", "name": "Kim"}, "email"),
        ({"email": "a@example.com", "password": "short", "name": "Kim"}, "password"),
        ({"email": "a@example.com", "password": "12345678901", "name": "Kim"}, "password"),
        ({"email": "a@example.com", "password": "password123", "name": "Kim"}, "password"),
        ({"email": "a@example.com", "password": "a-long-passphrase", "name": "K"}, "name"),
        ({"email": "a@example.com", "password": "a-long-passphrase", "name": "K" * 51}, "name"),
    ],
)
def test_register_validation_is_422_with_field_details(api_client, payload, field):
    response = api_client.post("/auth/register", payload, format="json")

    assert response.status_code == 422
    assert error_of(response) == "VALIDATION_ERROR"
    assert field in response.json()["details"]
    assert User.objects.count() == 0


def test_register_rejects_malformed_json_and_non_objects(api_client):
    bad_json = api_client.post("/auth/register", "{not json", content_type="application/json")
    a_list = api_client.post("/auth/register", [1, 2], format="json")

    assert bad_json.status_code == 422 and error_of(bad_json) == "VALIDATION_ERROR"
    assert a_list.status_code == 422 and error_of(a_list) == "VALIDATION_ERROR"


def test_register_form_encoded_is_415(api_client):
    response = api_client.post("/auth/register", {"email": "a@example.com"})  # multipart

    assert response.status_code == 415
    assert error_of(response) == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_registration_is_one_201_and_rest_409():
    # given: 8 threads released together, all registering the same email
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    statuses: list[int] = []
    errors: list[str] = []

    def register() -> None:
        client = APIClient()
        barrier.wait()
        try:
            response = client.post(
                "/auth/register",
                {"email": "race@example.com", "password": "a-long-passphrase", "name": "Racer"},
                format="json",
            )
            statuses.append(response.status_code)
            if response.status_code != 201:
                errors.append(response.json()["error"])
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: exactly one account, every loser told EMAIL_EXISTS, nobody got a 500
    assert sorted(statuses) == [201] + [409] * (threads_n - 1)
    assert errors == ["EMAIL_EXISTS"] * (threads_n - 1)
    assert User.objects.filter(email="race@example.com").count() == 1


# --- login / refresh / logout ------------------------------------------------------------------


def test_login_returns_token_pair(api_client, user):
    response = login(api_client, user.email)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    access = AccessToken(body["access_token"])
    assert access["type"] == "access"
    assert access["user_id"] == str(user.id)
    assert RefreshToken(body["refresh_token"])["type"] == "refresh"


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_login_with_bad_credentials_is_401(api_client, user, password):
    response = login(api_client, user.email, password)

    expected = 401 if password else 422
    assert response.status_code == expected
    assert error_of(response) == ("INVALID_CREDENTIALS" if password else "VALIDATION_ERROR")


def test_login_unknown_email_and_inactive_user_are_401(api_client):
    inactive = UserFactory(is_active=False)

    assert error_of(login(api_client, "nobody@example.com")) == "INVALID_CREDENTIALS"
    assert error_of(login(api_client, inactive.email)) == "INVALID_CREDENTIALS"


def test_refresh_rotates_and_old_refresh_token_is_revoked(api_client, user):
    pair = login(api_client, user.email).json()

    first = api_client.post(
        "/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json"
    )
    replay = api_client.post(
        "/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json"
    )

    assert first.status_code == 200
    assert first.json()["refresh_token"] != pair["refresh_token"]
    assert replay.status_code == 401
    assert error_of(replay) == "INVALID_TOKEN"


def test_refresh_refuses_an_access_token(api_client, user):
    pair = login(api_client, user.email).json()

    response = api_client.post(
        "/auth/refresh", {"refresh_token": pair["access_token"]}, format="json"
    )

    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"


def test_refresh_token_is_refused_as_access_token(api_client, user):
    pair = login(api_client, user.email).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['refresh_token']}")

    response = api_client.get("/auth/verify")

    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"


def test_logout_revokes_the_refresh_and_the_access_token(api_client, user):
    pair = login(api_client, user.email).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")

    out = api_client.post("/auth/logout", {"refresh_token": pair["refresh_token"]}, format="json")
    me = api_client.get("/auth/users/me")
    refresh = api_client.post(
        "/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json"
    )

    assert out.status_code == 204
    assert (me.status_code, error_of(me)) == (401, "INVALID_TOKEN")  # dies with the logout
    assert (refresh.status_code, error_of(refresh)) == (401, "INVALID_TOKEN")


def test_after_a_logout_another_device_refreshes_once_and_goes_on(user):
    phone, laptop = APIClient(), APIClient()
    phone_pair = login(phone, user.email).json()
    laptop_pair = login(laptop, user.email).json()
    phone.credentials(HTTP_AUTHORIZATION=f"Bearer {phone_pair['access_token']}")
    laptop.credentials(HTTP_AUTHORIZATION=f"Bearer {laptop_pair['access_token']}")
    out = phone.post("/auth/logout", {"refresh_token": phone_pair["refresh_token"]}, format="json")
    assert out.status_code == 204

    assert laptop.get("/auth/users/me").status_code == 401  # tokens issued before the logout
    _wait_for_the_next_second()  # tokens are refused up to the revocation's second (`iat`)
    fresh = laptop.post(
        "/auth/refresh", {"refresh_token": laptop_pair["refresh_token"]}, format="json"
    ).json()
    laptop.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh['access_token']}")
    assert laptop.get("/auth/users/me").status_code == 200


def _wait_for_the_next_second() -> None:
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.01)


def test_logout_refuses_another_users_refresh_token(api_client, user):
    other = UserFactory()
    other_refresh = token_pair_for(other).refresh_token
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user).access_token}")

    response = api_client.post("/auth/logout", {"refresh_token": other_refresh}, format="json")

    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"
    ok = APIClient().post("/auth/refresh", {"refresh_token": other_refresh}, format="json")
    assert ok.status_code == 200  # the other user's token still works


def test_logout_without_token_is_401_unauthorized(api_client):
    response = api_client.post("/auth/logout", {"refresh_token": "x"}, format="json")

    assert response.status_code == 401
    assert error_of(response) == "UNAUTHORIZED"


# --- verify / me ------------------------------------------------------------------------------


def test_verify_and_me(shopper_client, user):
    verify = shopper_client.get("/auth/verify")
    me = shopper_client.get("/auth/users/me")

    assert verify.status_code == 200
    assert verify.json() == {"valid": True, "user_id": str(user.id)}
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    assert me.json()["id"] == str(user.id)


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"],
)
def test_malformed_authorization_is_invalid_token(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/auth/verify")

    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"


def test_missing_token_is_unauthorized(api_client):
    response = api_client.get("/auth/users/me")

    assert response.status_code == 401
    assert error_of(response) == "UNAUTHORIZED"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_invalid_token(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.get("/auth/verify")

    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"


def test_token_signed_with_another_key_is_invalid(api_client, user):

    forged = jwt.encode(
        {"type": "access", "user_id": str(user.id), "exp": 9_999_999_999, "jti": "x"},
        "not-the-server-key-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert error_of(api_client.get("/auth/verify")) == "INVALID_TOKEN"


def test_stateless_auth_runs_no_user_query(shopper_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = shopper_client.get("/auth/verify")
    assert response.status_code == 200


def test_database_auth_mode_loads_the_user_and_refuses_deactivated(
    settings, shopper_client, user, django_assert_num_queries
):
    settings.AUTH_MODE = "database"
    with django_assert_num_queries(1):
        assert shopper_client.get("/auth/verify").status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)

    response = shopper_client.get("/auth/verify")
    assert response.status_code == 401
    assert error_of(response) == "INVALID_TOKEN"
