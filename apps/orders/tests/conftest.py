import pytest

PIPELINES = ["db_lock", "db_update", "redis", "redis_async"]


@pytest.fixture(params=PIPELINES)
def pipeline(request, settings) -> str:
    """Runs the test once per deal-order pipeline."""
    settings.ORDER_PIPELINE = request.param
    return request.param
