"""JSON logs with a request id on every line, in the web process and in the Celery tasks a
request starts (a real worker, its output read from a file)."""

import io
import json
import logging
import subprocess
import time
from functools import partial

import pytest
import redis
from django.test import Client

from apps.accounts.tests.factories import UserFactory
from apps.core.logging import JsonFormatter, RequestIdFilter, request_id_var
from apps.core.tests.celery_worker import CeleryWorker
from apps.deals.models import Deal
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client


@pytest.fixture
def json_lines():
    """Records of the `flashdeals.test` and app loggers, formatted as production does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_request_id_is_answered_and_stamped_on_log_lines(json_lines, db):
    client = Client()

    response = client.get("/products/00000000-0000-0000-0000-000000000000", HTTP_X_REQUEST_ID="r-1")
    generated = client.get("/health")

    assert response["X-Request-ID"] == "r-1"
    assert len(generated["X-Request-ID"]) == 32  # made here: a uuid4 hex
    assert request_id_var.get() is None  # reset after the request
    not_found = [line for line in json_lines() if line["logger"] == "django.request"]
    assert [(line["request_id"], line["status_code"]) for line in not_found] == [("r-1", 404)]


def test_unsafe_incoming_ids_are_replaced(db):
    response = Client().get("/health", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_json_formatter_writes_one_object_per_line(json_lines):
    logger = logging.getLogger("flashdeals.test")
    token = request_id_var.set("abc123")
    try:
        logger.warning("sold %s units", 3, extra={"deal_id": "d-1"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        request_id_var.reset(token)

    first, second = json_lines()
    assert first["message"] == "sold 3 units" and first["level"] == "WARNING"
    assert (first["request_id"], first["deal_id"], first["logger"]) == (
        "abc123",
        "d-1",
        "flashdeals.test",
    )
    assert "ValueError: boom" in second["exc_info"] and second["request_id"] == "abc123"


@pytest.mark.django_db(transaction=True)
def test_a_task_started_by_a_request_logs_with_its_request_id(tmp_path, monkeypatch, settings):
    """The purchase kicks the stream drain; the drain fails to write (PostgreSQL has no units
    left while Redis sold one: drift) and logs an error, in the worker, with the request's id."""

    settings.ORDER_PIPELINE = "redis_async"
    # an empty queue: tasks earlier tests left without a worker would otherwise run first
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    log_file = (tmp_path / "worker.log").open("w")
    monkeypatch.setattr(
        subprocess, "Popen", partial(subprocess.Popen, stdout=log_file, stderr=log_file)
    )
    worker = CeleryWorker(extra_env={"LOG_FORMAT": "json"}).start()
    monkeypatch.undo()
    try:
        deal = make_deal(deal_stock=5)
        Deal.objects.filter(pk=deal.pk).update(remaining_stock=0)  # the drift

        response = bearer_client(UserFactory()).post(
            "/orders", deal_line(deal), format="json", HTTP_X_REQUEST_ID="purchase-42"
        )
        assert response.status_code == 202

        deadline, lines = time.monotonic() + 20, []
        while time.monotonic() < deadline:
            text = (tmp_path / "worker.log").read_text()
            lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
            if any(line["request_id"] == "purchase-42" for line in lines):
                break
            time.sleep(0.2)
    finally:
        worker.stop()
        log_file.close()

    tagged = [line for line in lines if line["request_id"] == "purchase-42"]
    assert tagged, (tmp_path / "worker.log").read_text()[-3000:]
    assert tagged[0]["task"]["name"] == "apps.orders.tasks.drain_deal_stream_task"
    assert "failed" in tagged[0]["message"]
