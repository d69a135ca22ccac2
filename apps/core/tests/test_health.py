import pytest

from apps.core.redis import get_redis
from apps.core.tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/health", "gateway"),
        ("/auth/health", "auth-service"),
        ("/products/health", "product-service"),
        ("/orders/health", "order-service"),
    ],
)
def test_liveness(api_client, path, service):
    response = api_client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": service}


def test_ready_when_everything_answers(api_client, celery_worker):
    response = api_client.get("/health/ready")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "worker": "ok"},
    }


def test_ready_names_a_missing_worker(api_client):
    response = api_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "SERVICE_UNAVAILABLE"
    assert body["details"]["down"] == ["worker"]
    assert response["Retry-After"] == "5"


def test_ready_reports_stopped_redis_as_503(api_client, settings, tmp_path):
    # given: a real redis-server of our own that we can stop without disturbing other tests
    with RedisServer(tmp_path) as server:
        settings.REDIS_URL = server.url
        get_redis.cache_clear()
        assert get_redis().ping()
        server.stop()

        # when
        response = api_client.get("/health/ready")

    get_redis.cache_clear()
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["details"]["checks"]["database"] == "ok"
    assert body["details"]["checks"]["redis"].startswith("down")
    assert "redis" in body["details"]["down"]
    assert "redis" in body["message"]
