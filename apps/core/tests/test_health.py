import re
import time

import pytest
import redis
from django.conf import settings as django_settings

from apps.core.redis import get_redis, key
from apps.core.tasks import HEARTBEAT_KEY, beat_heartbeat_task
from apps.core.tests.redis_server import RedisServer
from conftest import assert_error, bearer_client
from flashdeals.celery import app

pytestmark = pytest.mark.django_db

NO_HEARTBEAT = (
    "down: WorkerHeartbeatStale: no heartbeat: no Celery worker has run beat's heartbeat task "
    "lately (worker or beat down)"
)
ANONYMOUS_503 = {"error": "SERVICE_UNAVAILABLE", "message": "Not ready.", "details": None}


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


def _heartbeat(age: float) -> None:
    get_redis().set(key(*HEARTBEAT_KEY), f"{time.time() - age:.3f}", ex=600)


def _wait_for_heartbeat(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while get_redis().get(key(*HEARTBEAT_KEY)) is None:
        assert time.monotonic() < deadline, "the worker did not run the heartbeat task"
        time.sleep(0.05)


def test_ready_when_a_worker_runs_the_heartbeat(api_client, staff_client, celery_worker):
    # given: a real worker consumes the task beat schedules every 10 s
    beat_heartbeat_task.delay()
    _wait_for_heartbeat()

    # when / then: staff see every check, anyone else only the status
    staff = staff_client.get("/health/ready")
    assert staff.status_code == 200, staff.json()
    assert staff.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "worker": "ok"},
    }
    anonymous = api_client.get("/health/ready")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ready"}


def test_ready_names_a_missing_worker_to_staff_only(api_client, staff_client):
    staff = staff_client.get("/health/ready")
    body = assert_error(staff, 503, "SERVICE_UNAVAILABLE")
    assert body["message"] == "Not ready: worker down."
    assert body["details"] == {
        "checks": {"database": "ok", "redis": "ok", "worker": NO_HEARTBEAT},
        "down": ["worker"],
    }
    assert staff["Retry-After"] == "5"

    anonymous = api_client.get("/health/ready")
    assert_error(anonymous, 503, "SERVICE_UNAVAILABLE", None)
    assert anonymous.json() == ANONYMOUS_503
    assert anonymous["Retry-After"] == "5"


def test_a_stale_heartbeat_is_a_worker_down(staff_client):
    _heartbeat(age=100)

    checks = staff_client.get("/health/ready").json()["details"]["checks"]

    assert re.fullmatch(
        r"down: WorkerHeartbeatStale: last heartbeat 10\d s ago \(more than 45 s\)",
        checks["worker"],
    ), checks["worker"]


def test_a_fresh_heartbeat_is_ready_with_no_worker_process(api_client):
    # The probe reads the heartbeat; it does not go looking for a worker itself.
    _heartbeat(age=1)

    assert api_client.get("/health/ready").json() == {"status": "ready"}


@pytest.fixture
def broker_broadcasts():
    """Every message published on the broker's pub/sub channels while the test runs (a Celery
    `control.ping` is a fanout to `/<db>.celery.pidbox`)."""
    pubsub = redis.Redis.from_url(django_settings.CELERY_BROKER_URL).pubsub()
    pubsub.psubscribe("*")
    assert pubsub.get_message(timeout=1)["type"] == "psubscribe"
    seen: list[bytes] = []

    def drain() -> list[bytes]:
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            seen.append(message["channel"])
        return seen

    yield drain
    pubsub.close()


def test_the_probe_broadcasts_nothing_to_workers(api_client, broker_broadcasts):
    # when: probes with no worker up (the case that used to wait out a 1 s ping)
    for _ in range(3):
        assert api_client.get("/health/ready").status_code == 503

    # then: nothing was published to the workers
    assert broker_broadcasts() == []

    # control: a worker ping, what the probe used to send, is seen by the same listener
    with app.connection_for_write() as conn:
        assert app.control.ping(timeout=0.1, connection=conn) == []
    assert any(b"celery.pidbox" in channel for channel in broker_broadcasts())


def test_details_for_a_staff_session_and_the_metrics_token(settings, operator_client, api_client):
    settings.METRICS_TOKEN = "probe-token-0123456789"
    token = api_client.get("/health/ready", HTTP_AUTHORIZATION="Bearer probe-token-0123456789")
    session = operator_client.get("/health/ready")

    for response in (token, session):
        assert response.json()["details"]["down"] == ["worker"]


def test_no_details_for_shoppers_or_bad_tokens(user, api_client):
    shopper = bearer_client(user).get("/health/ready")
    bad_token = api_client.get("/health/ready", HTTP_AUTHORIZATION="Bearer not-a-jwt")

    for response in (shopper, bad_token):
        assert response.status_code == 503  # the probe's answer, never a 401
        assert response.json() == ANONYMOUS_503


def test_readiness_is_rate_limited_per_address(settings, api_client):
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "readiness_address": "2/minute"}
    _heartbeat(age=1)

    codes = [api_client.get("/health/ready").status_code for _ in range(3)]
    other = api_client.get("/health/ready", REMOTE_ADDR="198.51.100.7")

    assert codes == [200, 200, 429]
    assert other.status_code == 200


def test_ready_reports_stopped_redis_as_503(staff_client, settings, tmp_path):
    # given: a real redis-server of our own that we can stop without disturbing other tests
    with RedisServer(tmp_path) as server:
        settings.REDIS_URL = server.url
        get_redis.cache_clear()
        assert get_redis().ping()
        server.stop()

        # when
        response = staff_client.get("/health/ready")

    get_redis.cache_clear()
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["details"]["checks"]["database"] == "ok"
    assert body["details"]["checks"]["redis"].startswith("down")
    assert body["details"]["down"] == ["redis", "worker"]
    assert "redis" in body["message"]
