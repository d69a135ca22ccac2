"""Shared fixtures and helpers, one copy each: a fixture or helper that tests of more than one app
use lives here (tests import the helpers as `from conftest import bearer_client`). Tests run
against real PostgreSQL (pytest-django's test database) and a real Redis (the test settings' own
databases, the gate's and the cache's flushed before each test)."""

import os

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.roles import OPERATOR, role_grant
from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis


def pytest_collection_modifyitems(config, items):
    """With GATE_REDIS_URL set (CI runs the gate and order suites again on the topology's
    Valkey Cluster), tests that stop, replace or read the one gate server are skipped: the
    cluster's own faults are tested in test_gate_cluster.py and by `make test-topology`."""
    if not os.environ.get("GATE_REDIS_URL"):
        return
    skip = pytest.mark.skip(reason="needs the one gate server (GATE_REDIS_URL names another)")
    for item in items:
        if "single_gate_server" in item.keywords or "gate_server" in item.fixturenames:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _clean_broker():
    """Drop Celery messages a previous run left in the test broker database."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(autouse=True)
def _clean_redis(settings):
    """Each test starts with empty Redis databases of its own, the gate's and the cache's (see
    settings/test.py)."""
    from django.core.cache import cache

    from apps.deals import gate

    get_redis().flushdb()
    if (
        settings.GATE_REDIS_URL
    ):  # the gate on a server (or cluster) of its own: see CI's topology run
        for node in gate.gate_nodes():
            node.flushdb()
    cache.clear()
    gate.sold_out_forget_all()  # this process's memory of the gate's answers goes with them
    yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    """A staff user with the operator role: what the API's writes require (apps.accounts.roles)."""
    staff = UserFactory(is_staff=True)
    role_grant(user=staff, role=OPERATOR)
    return staff


def bearer_client(user) -> APIClient:
    """An API client that sends `user`'s access token, exactly as a shopper's app would."""
    from apps.accounts.services import token_pair_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user).access_token}")
    return client


@pytest.fixture
def shopper_client(user) -> APIClient:
    return bearer_client(user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return bearer_client(staff_user)


@pytest.fixture
def operator(db):
    """A staff superuser: the operator who runs deals in the admin."""
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def operator_client(operator) -> Client:
    """The admin's browser client, logged in as `operator` (a session, not a token)."""
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def cache_on(settings):
    settings.CATALOG_CACHE_ENABLED = True
    return settings


@pytest.fixture
def cache_off(settings):
    settings.CATALOG_CACHE_ENABLED = False
    return settings


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real worker process for the duration of one test (its data must be committed). It
    starts on an empty queue: tasks that earlier tests queued with no worker running (each stale
    drain waits out a quiet second) would otherwise run first."""
    import redis

    from apps.core.tests.celery_worker import CeleryWorker

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = CeleryWorker().start()
    yield worker
    worker.stop()


def assert_error(response, status: int, code: str, details=...) -> dict:
    """The response is the contract's JSON error body with this status and code (and details)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert body["message"]
    if details is not ...:
        assert body["details"] == details
    return body
