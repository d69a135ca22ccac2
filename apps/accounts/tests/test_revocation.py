"""A deactivated or deleted user's access tokens are refused (401 INVALID_TOKEN) although
authentication stays stateless: no user row per request, and one Redis read per process per
AUTH_REVOCATION_REFRESH_SECONDS (apps.accounts.revocation)."""

import multiprocessing as mp
import time
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from apps.accounts import revocation
from apps.accounts.revocation import user_access_revoke
from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis
from apps.core.tests.redis_server import free_port
from conftest import bearer_client

pytestmark = pytest.mark.django_db

REVOKED = {
    "error": "INVALID_TOKEN",
    "message": "The token was revoked: its user signed out, or was deactivated or deleted.",
    "details": None,
}


def deactivate(user) -> None:
    user.is_active = False
    user.save()  # what the admin's form does


def verify(client: APIClient):
    return client.get("/auth/verify")


def test_a_deactivated_users_token_is_refused(user):
    client = bearer_client(user)
    assert verify(client).status_code == 200

    deactivate(user)

    response = verify(client)
    assert response.status_code == 401
    assert response.json() == REVOKED
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_deleted_users_token_is_refused(user):
    client = bearer_client(user)

    user.delete()

    response = verify(client)
    assert response.status_code == 401
    assert response.json() == REVOKED


def test_the_operator_deleting_a_user_in_the_admin_revokes_their_token(operator_client):
    shopper = UserFactory()
    client = bearer_client(shopper)

    deleted = operator_client.post(
        f"/admin/accounts/user/{shopper.pk}/delete/", {"post": "yes"}, follow=False
    )

    assert deleted.status_code == 302
    assert verify(client).json() == REVOKED


def test_other_users_are_not_affected(user):
    other = UserFactory()

    deactivate(user)

    assert verify(bearer_client(other)).status_code == 200


def client_with_token_issued_at(user, issued_at: int) -> APIClient:
    access = RefreshToken.for_user(user).access_token
    access.set_iat(at_time=datetime.fromtimestamp(issued_at, tz=UTC))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_only_tokens_issued_up_to_the_revocation_are_refused(user, settings):
    """A reactivated user signs in again: a token issued after the revocation passes, one
    issued before stays refused for the rest of its lifetime."""
    now = int(time.time())
    before, after = (client_with_token_issued_at(user, at) for at in (now - 20, now))
    # revoked 10 s ago, by whichever process: this one learns it at its next read
    get_redis().zadd(revocation._revoked_key(), {str(user.pk): now - 10})
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 0

    assert verify(before).json() == REVOKED
    assert verify(after).status_code == 200


@pytest.mark.parametrize("end", ["deactivated", "deleted"])
def test_a_revoked_users_refresh_token_is_refused(api_client, user, end):
    refresh_token = token_pair_for(user).refresh_token
    if end == "deactivated":
        deactivate(user)
    else:
        user.delete()

    response = api_client.post("/auth/refresh", {"refresh_token": refresh_token}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "INVALID_TOKEN"


def test_negative_control_without_the_check_a_deactivated_users_token_still_passes(user, settings):
    # given: stateless authentication skips the revoked-users check (the test-only setting)
    settings.AUTH_UNSAFE_SKIP_REVOCATION = True
    client = bearer_client(user)

    # when
    deactivate(user)

    # then: the signed token alone says nothing of the deactivation
    assert verify(client).status_code == 200


def _revoke_in_another_process(user_id: str) -> None:
    """A forked web process revoking: Redis only (redis-py opens the child's own connections;
    the parent's database connection, inside this test's transaction, is left alone)."""
    get_redis().connection_pool.reset()
    user_access_revoke(user_id=user_id)


def test_another_process_s_revocation_is_seen_at_the_next_refresh(user, settings):
    """What another web process revokes reaches this one at its next read of the set: after
    at most AUTH_REVOCATION_REFRESH_SECONDS (no sleep here: the interval is switched)."""
    client = bearer_client(user)
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 3600
    assert verify(client).status_code == 200  # this process has read the set by now
    child = mp.get_context("fork").Process(target=_revoke_in_another_process, args=[str(user.pk)])
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0

    still_cached = verify(client)
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 0  # the interval has passed
    refreshed = verify(client)

    assert still_cached.status_code == 200  # the documented delay: this copy is older
    assert refreshed.json() == REVOKED


def _reads_of_the_set() -> int:
    stats = get_redis().info("commandstats").get("cmdstat_zrangebyscore", {})
    return int(stats.get("calls", 0))


def test_authentication_reads_no_user_row_and_the_set_once_per_interval(
    user, settings, django_assert_num_queries
):
    client = bearer_client(user)
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 3600
    verify(client)  # the first read of this interval
    get_redis().config_resetstat()

    with django_assert_num_queries(0):
        answers = {verify(client).status_code for _ in range(20)}
    cached_reads = _reads_of_the_set()
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 0
    for _ in range(3):
        verify(client)

    assert answers == {200}
    assert cached_reads == 0
    assert _reads_of_the_set() == 3


def test_redis_down_keeps_the_last_copy(user, settings):
    """Reads fail open, like the catalog cache: an outage of the gate's Redis must not log every
    shopper out, and what this process knew stays refused."""
    revoked, other = bearer_client(user), bearer_client(UserFactory())
    deactivate(user)
    settings.AUTH_REVOCATION_REFRESH_SECONDS = 0
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        answers = (verify(revoked).status_code, verify(other).status_code)
    finally:
        get_redis.cache_clear()

    assert answers == (401, 200)


def test_entries_older_than_the_token_lifetime_are_pruned(user, settings):
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    stale = int(time.time() - lifetime - 3600)  # every token it could refuse has expired
    get_redis().zadd(revocation._revoked_key(), {"stale-user": stale})

    user_access_revoke(user_id=user.pk)

    assert get_redis().zscore(revocation._revoked_key(), "stale-user") is None
    assert get_redis().zscore(revocation._revoked_key(), str(user.pk)) is not None
