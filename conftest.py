"""Shared fixtures. Tests run against real PostgreSQL (pytest-django's test database) and a real
Redis (the test settings' own database, flushed before each test)."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.tests.factories import UserFactory
from apps.core.redis import get_redis


@pytest.fixture(scope="session", autouse=True)
def _clean_broker():
    """Drop Celery messages a previous run left in the test broker database."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(autouse=True)
def _clean_redis(settings):
    """Each test starts with an empty Redis database of its own (see settings/test.py)."""
    get_redis().flushdb()
    yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


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
def celery_worker(transactional_db):
    """A real worker process for the duration of one test (its data must be committed)."""
    from apps.core.tests.celery_worker import CeleryWorker

    worker = CeleryWorker().start()
    yield worker
    worker.stop()
