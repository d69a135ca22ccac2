"""The gate's Redis must not evict (docs/reliability.md, "What a reliability review found",
case 1): /health/ready and
the go-live preflight refuse any maxmemory-policy but noeviction and name the setting. Before:
nothing set or checked it, and an evicted `users` hash let a shopper buy past the limit."""

import pytest

from apps.core.redis import get_redis


@pytest.fixture
def evicting_redis():
    """The test server, switched to an evicting policy for one test."""
    client = get_redis()
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    client.config_set("maxmemory-policy", "allkeys-lru")
    yield
    client.config_set("maxmemory-policy", before)


MESSAGE = (
    "maxmemory-policy is allkeys-lru; the deal gate's Redis needs maxmemory-policy noeviction "
    "(an evicted key loses accepted purchases)"
)


@pytest.mark.single_gate_server
@pytest.mark.django_db
def test_readiness_names_an_evicting_policy(staff_client, evicting_redis):
    response = staff_client.get("/health/ready")  # the detail is staff-only

    assert response.status_code == 503
    checks = response.json()["details"]["checks"]
    assert checks["redis"] == f"down: GateServerUnsafe: {MESSAGE}"


def test_the_embedded_server_never_evicts():
    assert get_redis().config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
