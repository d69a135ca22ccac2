from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.redis import get_redis
from apps.core.tests.redis_server import RedisServer

PIPELINES = ["db_lock", "db_update", "redis", "redis_async"]

# The status each pipeline answers an accepted purchase with: the database pipelines and `redis`
# have written the order (201 Created); redis_async has only queued it for the writer (202).
ACCEPTED_STATUS = {"db_lock": 201, "db_update": 201, "redis": 201, "redis_async": 202}


@pytest.fixture(params=PIPELINES)
def pipeline(request, settings) -> str:
    """Runs the test once per deal-order pipeline (narrow it with
    `@pytest.mark.parametrize("pipeline", [...], indirect=True)`)."""
    settings.ORDER_PIPELINE = request.param
    return request.param


@pytest.fixture
def accepted_status(pipeline) -> int:
    """What the pipeline under test answers an accepted purchase: assert exactly this."""
    return ACCEPTED_STATUS[pipeline]


@pytest.fixture
def gate_server(settings, tmp_path):
    """Points the app's gate at a server of this test's own; yields a factory taking the
    server's options (default: what the project ships)."""
    original_url = settings.REDIS_URL
    servers: list[RedisServer] = []

    def start(**options) -> RedisServer:
        server = RedisServer(tmp_path / f"gate-{len(servers)}", **options).start()
        servers.append(server)
        if len(servers) == 1:
            settings.REDIS_URL = server.url
            _reset_redis_clients()
        return server

    yield start
    settings.REDIS_URL = original_url
    _reset_redis_clients()
    for server in servers:
        server.stop()


def _reset_redis_clients() -> None:
    get_redis.cache_clear()


@pytest.fixture
def clock(monkeypatch):
    """The web server's clock, pinned to a whole millisecond and moved by the test: the waiting
    room and the purchase both read it (timezone.now)."""
    start = timezone.now()
    now = [start.replace(microsecond=start.microsecond // 1000 * 1000)]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(seconds: float = 0.0):
        now[0] += timedelta(seconds=seconds)
        return now[0]

    return advance
