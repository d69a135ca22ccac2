"""POST /orders in its common shape is answered without DRF's request cycle (apis._purchase_direct).
Every answer must be the one DRF gives for the same request: each case below is sent twice, once
in the direct path's shape and once with an Accept header the direct path leaves to DRF, and the
two answers are compared field by field. A spy proves which path answered, so the comparison
can't pass by both going through DRF."""

import uuid

import pytest
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.accounts.tests.factories import UserFactory
from apps.orders.tests.helpers import deal_line, make_deal, make_product
from conftest import bearer_client

pytestmark = pytest.mark.django_db

DRF_ONLY = {"HTTP_ACCEPT": "application/json; indent=0"}  # JSON too, but not the direct shape


@pytest.fixture
def drf_calls(monkeypatch) -> list[str]:
    """The methods of the requests DRF's dispatch handled."""
    calls: list[str] = []
    dispatch = APIView.dispatch

    def spy(self, request, *args, **kwargs):
        calls.append(request.method)
        return dispatch(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", spy)
    return calls


def _answer(response) -> tuple:
    body = response.json()
    for volatile in ("id", "user_id", "created_at", "updated_at"):
        body.pop(volatile, None)
    for item in body.get("items", []):
        item.pop("id", None)
    location = response.headers.get("Location", "")
    return (
        response.status_code,
        body,
        response.headers.get("Allow"),
        response.headers.get("Vary"),
        response.headers.get("Retry-After"),
        location.rsplit("/", 1)[0],
    )


def _both(body: dict, key: str | None = None, **extra) -> tuple:
    """The same purchase by two fresh shoppers (a shopper's second purchase would be refused
    by the per-user limit): the first in the direct shape, the second in DRF's."""
    answers = []
    for headers in ({}, DRF_ONLY):
        client = bearer_client(UserFactory())
        key_header = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
        answers.append(_answer(client.post("/orders", body, format="json", **key_header,
                                           **headers, **extra)))  # fmt: skip
    return tuple(answers)


@pytest.mark.parametrize("pipeline", ["redis_async", "redis", "db_update"])
def test_an_accepted_purchase_is_answered_alike(settings, drf_calls, pipeline):
    settings.ORDER_PIPELINE = pipeline
    deal = make_deal(deal_stock=10)

    direct, drf = _both(deal_line(deal), key="k-1")

    assert direct == drf
    assert direct[0] == (202 if pipeline == "redis_async" else 201)
    assert drf_calls == ["POST"]  # only the second went through DRF


def test_refusals_are_answered_alike(settings, drf_calls):
    settings.ORDER_PIPELINE = "redis_async"
    sold_out = make_deal(deal_stock=1)
    bearer_client(UserFactory()).post("/orders", deal_line(sold_out), format="json")
    product = make_product(stock=0)

    cases = {
        "sold out": _both(deal_line(sold_out)),
        "no such deal": _both({"items": [{"product_id": str(sold_out.product_id),
                                          "deal_id": str(uuid.uuid4()), "quantity": 1}]}),
        "bad key": _both(deal_line(sold_out), key="has space"),
        "no stock": _both({"items": [{"product_id": str(product.id), "quantity": 1}]}),
    }  # fmt: skip

    assert {name: a[0] for name, (a, b) in cases.items()} == {
        "sold out": 400, "no such deal": 404, "bad key": 422, "no stock": 400,
    }  # fmt: skip
    assert {name: a == b for name, (a, b) in cases.items()} == dict.fromkeys(cases, True)
    assert len(drf_calls) == 4  # the four DRF-shaped ones (the setup's purchase went direct)


def test_the_rate_limit_refuses_alike(settings, drf_calls):
    settings.ORDER_PIPELINE = "redis_async"
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "purchase_address": "1/minute"}
    deal = make_deal(deal_stock=10)
    bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json",
                                      REMOTE_ADDR="198.51.100.7")  # fmt: skip

    direct, drf = _both(deal_line(deal), REMOTE_ADDR="198.51.100.7")

    assert direct == drf
    assert direct[:2] == (429, {"error": "RATE_LIMITED", "details": {"rule": "purchase_address"},
                                "message": direct[1]["message"]})  # fmt: skip
    assert direct[4] is not None  # Retry-After


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"HTTP_AUTHORIZATION": "Bearer not-a-token"}, None, 401),
        ({"CONTENT_TYPE": "text/plain"}, None, 415),
        ({}, {"items": [{"product_id": "x", "quantity": 1}]}, 422),
        ({}, {"items": [], "note": 1}, 422),
        ({"HTTP_ACCEPT": "text/html"}, None, 406),
    ],
    ids=["bad token", "not JSON", "invalid line", "unknown field", "HTML wanted"],
)
def test_anything_but_the_common_shape_goes_to_drf(settings, drf_calls, headers, body, status):
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=10)
    # A client's own credentials would override the forged header.
    client = APIClient() if "HTTP_AUTHORIZATION" in headers else bearer_client(UserFactory())
    payload = body if body is not None else deal_line(deal)

    if "CONTENT_TYPE" in headers:
        response = client.post("/orders", "{}", content_type=headers["CONTENT_TYPE"])
    else:
        response = client.post("/orders", payload, format="json", **headers)

    assert drf_calls == ["POST"]
    assert response.status_code == status
