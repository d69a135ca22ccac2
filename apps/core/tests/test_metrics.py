"""The Prometheus endpoint: protected, request metrics by route, and business metrics read from
Redis (purchases accepted/rejected, backlog, dead letters, time to confirmation)."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.tests.factories import UserFactory
from apps.orders.tests.helpers import deal_line, make_deal
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
