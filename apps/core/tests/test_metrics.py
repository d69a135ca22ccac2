"""The Prometheus endpoint: protected, request metrics by route, and business metrics read from
Redis (purchases accepted/rejected, backlog, dead letters, time to confirmation, the waiting
room), and the health figures the alerts page on (beat heartbeat age, gate up, reconciliation
drift)."""

import math
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.tests.factories import UserFactory
from apps.core import tasks
from apps.core.redis import get_redis, key
from apps.deals import gate
from apps.deals.models import Deal
from apps.orders.metrics import ReconciliationDriftCollector
from apps.orders.models import ReconciliationReport
from apps.orders.tests.helpers import deal_line, make_deal
from apps.orders.tests.test_waiting_room import room_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _samples(body: bytes) -> dict[tuple, float]:
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = "scrape-secret"
    return "scrape-secret"


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "UNAUTHORIZED"), ({"HTTP_AUTHORIZATION": "Bearer wrong"}, "INVALID_TOKEN")],
)
def test_metrics_are_not_public(headers, code, token):
    response = Client().get("/metrics", **headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": code,
        "message": response.json()["message"],
        "details": None,
    }


def test_a_shopper_session_is_not_enough(token):
    client = Client()
    client.force_login(UserFactory(is_staff=False))
    assert client.get("/metrics").status_code == 401


def test_no_token_configured_means_staff_only(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    assert staff.get("/metrics").status_code == 200


def test_request_metrics_use_the_route_pattern(token):
    client = Client()
    client.get("/products/00000000-0000-0000-0000-000000000000")
    client.get("/products/11111111-1111-1111-1111-111111111111")

    samples = _samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").content)

    key = (
        "flashdeals_http_requests_total",
        (("method", "GET"), ("route", "/products/<uuid:product_id>"), ("status", "404")),
    )
    assert samples[key] >= 2  # one series for every product id, not one per id
    assert not any("00000000" in str(labels) for _, labels in samples)


def test_business_metrics_of_a_live_deal(token, settings, django_capture_on_commit_callbacks):
    # given: the redis pipeline writes in the request, so the confirmation is recorded on commit
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=2, per_user_limit=1)
    shopper = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        bearer_client(shopper).post("/orders", deal_line(deal), format="json")
        bearer_client(shopper).post("/orders", deal_line(deal), format="json")  # limit
        bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json")
        bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json")  # sold out

    # when
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")

    # then
    assert response.status_code == 200
    samples = _samples(response.content)
    deal_label = (("deal", str(deal.pk)),)
    assert samples[("flashdeals_deal_purchases_accepted_total", deal_label)] == 2
    rejected = "flashdeals_deal_purchases_rejected_total"
    assert samples[(rejected, (("deal", str(deal.pk)), ("reason", "limit")))] == 1
    assert samples[(rejected, (("deal", str(deal.pk)), ("reason", "sold_out")))] == 1
    assert samples[("flashdeals_deal_remaining_units", deal_label)] == 0
    assert samples[("flashdeals_deal_write_backlog", deal_label)] == 0
    assert samples[("flashdeals_deal_dead_letters", deal_label)] == 0
    assert samples[("flashdeals_order_confirmation_seconds_count", ())] == 2
    assert samples[("flashdeals_order_confirmation_seconds_bucket", (("le", "+Inf"),))] == 2


ROOM_METRICS = (
    "flashdeals_deal_room_waiting",
    "flashdeals_deal_room_admitted_outstanding",
    "flashdeals_deal_room_admitted_total",
    "flashdeals_deal_room_lapsed_total",
    "flashdeals_deal_room_revoked_total",
)


def test_waiting_room_metrics_of_a_live_deal(token, monkeypatch):
    # given: a room admitting 1 shopper/s with 10 s to buy, on a clock the test moves; and a
    # live deal without a room
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])
    deal = room_deal(stock=5, rate=1, admit=10)
    plain = make_deal()
    first, second, third = UserFactory(), UserFactory(), UserFactory()

    # when: the first is admitted at once, the others wait; 11 s on the first admission has
    # lapsed and the second is admitted
    for shopper in (first, second, third):
        gate.room_join(deal_id=deal.pk, user_id=shopper.pk)
    now[0] += timedelta(seconds=11)
    assert gate.room_ticket(deal_id=deal.pk, user_id=third.pk).state == "waiting"
    samples = _samples(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").content)

    # then
    label = (("deal", str(deal.pk)),)
    assert {name: samples[(name, label)] for name in ROOM_METRICS} == {
        "flashdeals_deal_room_waiting": 1,
        "flashdeals_deal_room_admitted_outstanding": 1,
        "flashdeals_deal_room_admitted_total": 2,
        "flashdeals_deal_room_lapsed_total": 1,
        "flashdeals_deal_room_revoked_total": 0,
    }
    plain_label = (("deal", str(plain.pk)),)
    assert [name for name in ROOM_METRICS if (name, plain_label) in samples] == []
    assert samples[("flashdeals_deal_remaining_units", plain_label)] == 10


def _scrape(token: str) -> dict[tuple, float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return _samples(response.content)


HEARTBEAT_AGE = ("flashdeals_beat_heartbeat_age_seconds", ())


def test_beat_heartbeat_age_is_the_age_of_the_last_heartbeat(token, monkeypatch):
    # given: a heartbeat written at T - 42 s, read at T
    now = 1_800_000_000.0
    get_redis().set(key(*tasks.HEARTBEAT_KEY), f"{now - 42:.3f}", ex=600)
    monkeypatch.setattr(tasks, "time", SimpleNamespace(time=lambda: now))

    assert _scrape(token)[HEARTBEAT_AGE] == 42


def test_no_heartbeat_is_an_infinite_age(token):
    assert _scrape(token)[HEARTBEAT_AGE] == math.inf


def test_an_unreadable_heartbeat_is_an_infinite_age_not_an_error(token, monkeypatch):
    def unreachable():
        raise ConnectionError("Redis is down")

    monkeypatch.setattr("apps.core.metrics.beat_heartbeat_age", unreachable)

    assert _scrape(token)[HEARTBEAT_AGE] == math.inf


def test_the_gate_is_up_when_its_server_answers(token):
    assert _scrape(token)[("flashdeals_gate_up", ())] == 1


def test_the_gate_is_down_when_its_server_does_not_answer(token, settings):
    # given: the gate on a port nothing listens on (connection refused at once)
    settings.GATE_REDIS_URL = "redis://127.0.0.1:1/0"

    # when
    started = time.monotonic()
    samples = _scrape(token)

    # then: the scrape still answers, in less than the socket's timeouts
    assert samples[("flashdeals_gate_up", ())] == 0
    assert time.monotonic() - started < 2


def _report(deal: Deal, *, ok: bool, minutes_ago: int) -> None:
    report = ReconciliationReport.objects.create(
        deal=deal, ok=ok, deal_stock=10, sold_units=0, pending_units=0, db_remaining=10,
        redis_remaining=10 if ok else 9, repairs=[],
        findings=[] if ok else ["redis_remaining 9 != db_remaining 10"],
    )  # fmt: skip
    ReconciliationReport.objects.filter(pk=report.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


DRIFT = ("flashdeals_reconciliation_drift_deals", ())


def test_reconciliation_drift_counts_open_deals_whose_newest_report_drifts(
    token, django_assert_num_queries
):
    # given: drift then ok; ok then drift; drift on a closed deal; an open deal with no report
    repaired, drifting, closed = make_deal(), make_deal(), make_deal()
    make_deal()
    Deal.objects.filter(pk=closed.pk).update(closed_at=timezone.now())
    _report(repaired, ok=False, minutes_ago=10)
    _report(repaired, ok=True, minutes_ago=5)
    _report(drifting, ok=True, minutes_ago=10)
    _report(drifting, ok=False, minutes_ago=5)
    _report(closed, ok=False, minutes_ago=5)

    # when / then: one deal, in one query
    assert _scrape(token)[DRIFT] == 1
    with django_assert_num_queries(1):
        list(ReconciliationDriftCollector().collect())


def test_no_report_is_no_drift(token):
    make_deal()
    assert _scrape(token)[DRIFT] == 0


def test_an_unreadable_drift_count_is_infinite_not_an_error(token, monkeypatch):
    def unreachable():
        raise DatabaseError("PostgreSQL is down")

    monkeypatch.setattr("apps.orders.metrics.drift_deals", unreachable)

    assert _scrape(token)[DRIFT] == math.inf


def test_the_health_figures_are_served_in_multiprocess_mode_too(token, monkeypatch, tmp_path):
    # given: gunicorn's several workers (the request metrics are read from the directory)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = _scrape(token)

    assert {HEARTBEAT_AGE, ("flashdeals_gate_up", ()), DRIFT} <= set(samples)
