import pytest

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
