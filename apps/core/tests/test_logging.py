"""Logs with a request id on every line, in the web process and in the Celery tasks a request
starts (a real worker, its output read from a file); the per-request line (LOG_REQUESTS), the
plain format a terminal shows, and background tasks that log only when they do something."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
import redis
from django.test import Client

from apps.accounts.tests.factories import UserFactory
from apps.core.logging import JsonFormatter, PlainFormatter, RequestIdFilter, request_id_var
from apps.core.tasks import beat_heartbeat_task
from apps.core.tests.celery_worker import CeleryWorker
from apps.deals.models import Deal
from apps.orders.tasks import (
    deals_prepare_task,
    drain_deal_stream_task,
    reconcile_deals_task,
    streams_maintain_task,
)
from apps.orders.tests.helpers import deal_line, make_deal, reserve_unwritten
from conftest import bearer_client

ZERO_ID = "00000000-0000-0000-0000-000000000000"


@contextmanager
def console(formatter: logging.Formatter) -> Iterator[Callable[[], list[str]]]:
    """Every logger's INFO and above, through the request id filter and `formatter`, as the
    console handler of settings.LOGGING writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: stream.getvalue().splitlines()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def json_lines():
    """Log lines formatted as production does (LOG_FORMAT=json), parsed."""
    with console(JsonFormatter()) as lines:
        yield lambda: [json.loads(line) for line in lines()]


@pytest.fixture
def plain_lines():
    """Log lines formatted as a terminal shows them (LOG_FORMAT=plain)."""
    with console(PlainFormatter()) as lines:
        yield lines


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


def _request_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"\S+ INFO  request ", line)]


def test_a_request_logs_one_plain_line(plain_lines, settings, db):
    settings.LOG_REQUESTS = True  # read when the client's handler builds its middleware
    client = Client()

    client.get(f"/products/{ZERO_ID}?ref=home", HTTP_X_REQUEST_ID="r-1")
    client.post("/orders", {}, content_type="application/json", HTTP_X_REQUEST_ID="r-2")

    first, second = _request_lines(plain_lines())
    at, ms = r"\d\d:\d\d:\d\d", r"\d+\.\d ms"  # the clock and the time taken vary
    path = rf"/products/{ZERO_ID}\?ref=home"
    assert re.fullmatch(rf"{at} INFO  request GET {path} 404 {ms} \[r-1\]", first), first
    assert re.fullmatch(rf"{at} INFO  request POST /orders 401 {ms} \[r-2\]", second), second


def test_no_request_line_without_log_requests(caplog, settings, db):
    settings.LOG_REQUESTS = False

    with caplog.at_level(logging.DEBUG, logger="flashdeals.request"):
        Client().get("/health?probe=1")

    assert [r for r in caplog.records if r.name == "flashdeals.request"] == []


def test_the_request_line_in_json_has_its_fields(json_lines, settings, db):
    settings.LOG_REQUESTS = True

    Client().get("/health?probe=1", HTTP_X_REQUEST_ID="r-3")

    [line] = [line for line in json_lines() if line["logger"] == "flashdeals.request"]
    duration = line.pop("duration_ms")
    assert isinstance(duration, float) and duration >= 0
    assert line.pop("time")
    assert line == {
        "level": "INFO",
        "logger": "flashdeals.request",
        "message": f"GET /health?probe=1 200 {duration:.1f} ms",
        "request_id": "r-3",
        "method": "GET",
        "path": "/health?probe=1",
        "status": 200,
    }


def _logged_at_info(caplog) -> list[tuple[str, str, str]]:
    return [
        (r.levelname, r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO
    ]


def test_periodic_tasks_with_nothing_to_do_log_nothing(caplog, settings, db):
    """What beat runs every few seconds on an idle stack: no line (Celery's own notes of each
    run are off in the plain format, see the next test)."""
    settings.ORDER_PIPELINE = "redis_async"
    make_deal(deal_stock=5)  # live, with nothing to write, sweep or close

    with caplog.at_level(logging.INFO):
        beat_heartbeat_task()
        streams_maintain_task()
        deals_prepare_task()
        reconcile_deals_task()

    assert _logged_at_info(caplog) == []


def _base_logger_levels(**env: str) -> dict[str, str | None]:
    """The logger levels of settings.LOGGING: flashdeals.settings.base imported in a fresh
    interpreter with `env` on top of ours (LOGGING is derived when the settings load)."""
    code = (
        "import json; from flashdeals.settings import base; "
        "print(json.dumps({n: c.get('level') for n, c in base.LOGGING['loggers'].items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


CELERY_NOTES = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def test_celery_notes_of_each_task_run_are_off_in_the_plain_format():
    """Celery's "Task ... received" and "Task ... succeeded" and beat's "Sending due task", for
    every run, were about 70 lines a minute on an idle `make run`. The worker and beat log
    through settings.LOGGING (apps.core.logging); JSON for a log shipper keeps them."""
    plain = _base_logger_levels(LOG_FORMAT="plain", LOG_REQUESTS="false")
    as_json = _base_logger_levels(LOG_FORMAT="json", LOG_REQUESTS="false")

    assert {name: plain.get(name) for name in CELERY_NOTES} == dict.fromkeys(
        CELERY_NOTES, "WARNING"
    )
    assert {name: as_json.get(name) for name in CELERY_NOTES} == dict.fromkeys(CELERY_NOTES, None)


def test_with_request_lines_django_does_not_repeat_a_4xx():
    """The request line has the status; Django's "Not Found: /x" would be a second line. Its
    5xx errors (level ERROR) still show."""
    assert _base_logger_levels(LOG_REQUESTS="true").get("django.request") == "ERROR"
    assert _base_logger_levels(LOG_REQUESTS="false").get("django.request") is None


def test_a_drain_that_writes_logs_one_line(caplog, settings, user, db):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=5, per_user_limit=2)
    reserve_unwritten(deal, user.id)
    reserve_unwritten(deal, user.id)

    with caplog.at_level(logging.INFO):
        drain_deal_stream_task(str(deal.id))

    assert _logged_at_info(caplog) == [
        ("INFO", "apps.orders.services.drain", f"wrote 2 orders of deal {deal.id}")
    ]


def test_closing_a_deal_logs_one_line(caplog, settings, db):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=5, starts_in=-timedelta(hours=2), lasts=timedelta(hours=1))

    with caplog.at_level(logging.INFO):
        deals_prepare_task()

    assert Deal.objects.get(pk=deal.pk).closed_at is not None
    assert _logged_at_info(caplog) == [
        (
            "INFO",
            "flashdeals.audit",
            f"deal {deal.id} by system: close: 5 unsold units back to the product",
        )
    ]
