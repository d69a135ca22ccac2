"""The lab's floor (apps/lab/floor): a purchase at the floor of a Django request sells through
the same gate and writer as redis_async, answers the contract's status and code, and is routed
only under its own settings module."""

import ast
from pathlib import Path

import pytest
from django.test import Client
from django.urls import resolve

from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import UserFactory
from apps.core.errors import ErrorCode
from apps.deals.models import Deal
from apps.lab.floor import views as floor_views
from apps.orders.models import Order
from apps.orders.services.drain import stream_drain
from apps.orders.tests.helpers import deal_line, make_deal

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def floor(settings) -> Client:
    settings.ROOT_URLCONF = "apps.lab.floor.urls"
    settings.MIDDLEWARE = []
    return Client()


def _buy(client: Client, deal: Deal, token: str, key: str):
    return client.post("/orders", deal_line(deal), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY=key)  # fmt: skip


def test_the_floor_sells_through_the_gate_and_the_writer_and_refuses_over_the_limit(floor):
    deal = make_deal(deal_stock=2, per_user_limit=1, deal_price=5_000)
    shopper = UserFactory()
    token = token_pair_for(shopper).access_token

    first = _buy(floor, deal, token, "k-1")
    again = _buy(floor, deal, token, "k-2")
    forged = _buy(floor, deal, token[:-2] + "xx", "k-3")
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)

    assert (first.status_code, first.content) == (202, b'{"status":"pending"}')
    assert (again.status_code, again.json()) == (400, {"error": "DEAL_LIMIT_EXCEEDED"})
    assert (forged.status_code, forged.json()) == (401, {"error": "INVALID_TOKEN"})
    order = Order.objects.get(user=shopper)
    item = order.items.get()
    assert (order.status, order.deal_id, order.total_amount) == ("confirmed", deal.id, 5_000)
    assert (item.quantity, item.unit_price, order.idempotency_key) == (1, 5_000, "k-1")
    assert Deal.objects.get(pk=deal.id).remaining_stock == 1


def test_the_floor_refuses_a_sold_out_deal_with_the_contracts_code(floor):
    deal = make_deal(deal_stock=1, per_user_limit=1)
    tokens = [token_pair_for(UserFactory()).access_token for _ in range(2)]

    answers = [_buy(floor, deal, token, f"k-{n}") for n, token in enumerate(tokens)]

    assert [a.status_code for a in answers] == [202, 400]
    assert answers[1].json() == {"error": "DEAL_SOLD_OUT"}


def test_the_floor_is_routed_only_under_its_own_settings():
    """No settings module the app ships names the floor's URLconf, and the app's /orders is not
    the floor's view."""
    shipped = [p for p in (ROOT / "flashdeals").rglob("*.py") if "apps.lab.floor" in p.read_text()]

    assert shipped == []
    assert resolve("/orders", urlconf="flashdeals.urls").func is not floor_views.purchase
    assert resolve("/orders", urlconf="apps.lab.floor.urls").func is floor_views.purchase


def test_the_floor_imports_nothing_of_the_request_machinery():
    """What the floor must not use, or it stops being the floor: DRF, the app's views and
    services, its middleware (of apps.core only the error codes)."""
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for path in (ROOT / "apps/lab/floor").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }

    machinery = ("rest_framework", "apps.orders.services", "apps.core.")
    assert {m for m in imported if m and m.startswith(machinery)} == {"apps.core.errors"}


def test_the_floor_answers_only_the_contracts_codes():
    """Each refusal carries a code the app answers with the same status (apps.core.errors), so
    k6 counts a floor's refusal as it counts the app's."""
    codes = {code for _, code in floor_views.REFUSED.values() if code}

    assert codes == {ErrorCode.DEAL_LIMIT_EXCEEDED, ErrorCode.DEAL_SOLD_OUT,
                     ErrorCode.INSUFFICIENT_STOCK, ErrorCode.IDEMPOTENCY_KEY_REUSED}  # fmt: skip
