"""The live page tells the truth: its purchase hint is what POST /orders answers in every state of
a deal, its times are in the console's zone with the UTC instant beside them, and its money carries
the currency."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.formatting import console_time, money, zone_label
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.services import deal_pause
from apps.orders.tests.helpers import deal_line, make_deal
from apps.orders.tests.room import room_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _buy(deal: Deal):
    return bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json")


def _live(client, deal: Deal) -> dict:
    response = client.get(f"/admin/deals/deal/{deal.pk}/live.json")
    assert response.status_code == 200, response.content
    return response.json()


def _scheduled():
    return make_deal(starts_in=timedelta(hours=1))


def _active():
    return make_deal()


def _paused():
    deal = make_deal()
    deal_pause(deal_id=deal.pk)
    return deal


def _sold_out():
    deal = make_deal(deal_stock=1)
    assert _buy(deal).status_code in (201, 202)
    return deal


def _ended_by_the_clock():
    return make_deal(starts_in=-timedelta(hours=2), lasts=timedelta(hours=1))


def _with_a_room():
    return room_deal()


STATES = {
    "scheduled": _scheduled,
    "active": _active,
    "paused": _paused,
    "sold_out": _sold_out,
    "ended_by_the_clock": _ended_by_the_clock,
    "waiting_room": _with_a_room,
}


@pytest.mark.parametrize("pipeline", ["redis", "redis_async", "db_update"])
@pytest.mark.parametrize("state", sorted(STATES))
def test_the_purchase_hint_is_what_the_api_answers(
    operator_client, settings, django_capture_on_commit_callbacks, state, pipeline
):
    # given
    settings.ORDER_PIPELINE = pipeline
    with django_capture_on_commit_callbacks(execute=True):
        deal = STATES[state]()

    # when: the page says what a purchase answers, then a shopper buys
    hint = _live(operator_client, deal)["purchase"]
    response = _buy(deal)

    # then
    assert (hint["status"], hint["code"]) == (response.status_code, response.json().get("error"))


def test_after_end_early_the_page_says_purchases_answer_400_not_503(
    operator_client, settings, django_capture_on_commit_callbacks
):
    # given: ended early from the live page, which closes it and drops its gate state
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=5)
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            f"/admin/deals/deal/{deal.pk}/lifecycle/end/",
            {"_confirmed": "1", "reason": "supplier recall"},  # the confirmation page's answer
        )
    assert not gate.deal_state_loaded(deal.pk)

    # when
    hint = _live(operator_client, deal)["purchase"]
    checks = operator_client.get(f"/admin/deals/deal/{deal.pk}/preflight.json").json()["checks"]

    # then: the hint, the preflight and the API agree
    response = _buy(deal)
    assert (response.status_code, response.json()["error"]) == (400, "DEAL_NOT_ACTIVE")
    assert (hint["status"], hint["code"]) == (400, "DEAL_NOT_ACTIVE")
    state = next(check for check in checks if check["name"] == "state")
    assert state == {
        "name": "state",
        "label": "Deal state loaded in Redis",
        "ok": True,
        "detail": "not needed: purchases answer 400 DEAL_NOT_ACTIVE without it",
    }


def test_an_active_deal_without_gate_state_fails_the_state_check(operator_client, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(load=False)
    checks = operator_client.get(f"/admin/deals/deal/{deal.pk}/preflight.json").json()["checks"]
    state = next(check for check in checks if check["name"] == "state")
    assert (state["ok"], state["detail"]) == (
        False,
        "not loaded: the next purchase rebuilds it from PostgreSQL; purchases meanwhile answer 503",
    )


def test_the_live_json_carries_times_money_and_sell_through(operator_client, settings):
    # given: a deal at KRW 199,000 that sold 2 of 8 units
    settings.ORDER_PIPELINE = "redis"
    settings.CONSOLE_TIME_ZONE = "Asia/Seoul"
    deal = make_deal(deal_stock=8, per_user_limit=1, deal_price=199_000)
    Deal.objects.filter(pk=deal.pk).update(
        starts_at=datetime(2020, 1, 1, 0, 0, tzinfo=UTC),
        ends_at=datetime(2099, 1, 1, 4, 32, 26, tzinfo=UTC),
    )
    deal.refresh_from_db()
    assert _buy(deal).status_code == 201 and _buy(deal).status_code == 201

    # when
    data = _live(operator_client, deal)

    # then
    assert data["ends_at"] == {
        "utc": "2099-01-01T04:32:26Z",
        "text": "2099-01-01 13:32:26 KST",
        "zone": "KST",
        "offset_s": 32400,
        "ms": 4070925146000,
    }
    assert data["starts_at"]["text"] == "2020-01-01 09:00:00 KST"
    assert data["zone"] == "KST (Asia/Seoul, UTC+09:00)"
    assert (data["deal_price_text"], data["list_price_text"]) == ("KRW 199,000", "KRW 398,000")
    assert (data["units_sold"], data["revenue"], data["revenue_text"]) == (
        2,
        398_000,
        "KRW 398,000",
    )
    assert data["sell_through_pct"] == 25.0
    assert data["server_time_text"]["text"].endswith(" KST")
    assert (
        data["server_time_text"]["utc"]
        == console_time(datetime.fromisoformat(data["server_time"]))["utc"]
    )


def test_the_live_page_labels_its_zone_and_currency(operator_client, settings):
    settings.ORDER_PIPELINE = "redis"
    settings.CONSOLE_TIME_ZONE = "Asia/Seoul"
    deal = make_deal(deal_price=199_000)
    Deal.objects.filter(pk=deal.pk).update(ends_at=datetime(2099, 1, 1, 4, 32, 26, tzinfo=UTC))

    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()

    assert 'Times in <strong id="console-zone">KST (Asia/Seoul, UTC+09:00)</strong>' in page
    assert (
        '<time datetime="2099-01-01T04:32:26Z" title="2099-01-01T04:32:26Z UTC">'
        "2099-01-01 13:32:26 KST</time>"
    ) in page
    assert "KRW 199,000" in page
    assert 'answers <strong id="live-purchase-answer">201</strong>' in page


def test_money_uses_the_currency_and_its_minor_units(settings):
    settings.CURRENCY = "KRW"
    assert (money(199_000), money(0), money(-1500), money(None)) == (
        "KRW 199,000", "KRW 0", "-KRW 1,500", "-",
    )  # fmt: skip
    settings.CURRENCY = "USD"
    assert (money(1999), money(5), money(123_456_789)) == (
        "USD 19.99", "USD 0.05", "USD 1,234,567.89",
    )  # fmt: skip


def test_times_follow_the_console_zone_setting(settings):
    at = datetime(2025, 7, 1, 4, 32, 26, 500_000, tzinfo=UTC)
    settings.CONSOLE_TIME_ZONE = "America/New_York"
    assert console_time(at) == {
        "utc": "2025-07-01T04:32:26Z",
        "text": "2025-07-01 00:32:26 EDT",
        "zone": "EDT",
        "offset_s": -14400,
        "ms": 1751344346500,
    }
    assert console_time(at, date=False)["text"] == "00:32:26 EDT"  # type: ignore[index]
    assert zone_label(at) == "EDT (America/New_York, UTC-04:00)"
    settings.CONSOLE_TIME_ZONE = "UTC"
    assert console_time(timezone.localtime(at))["text"] == "2025-07-01 04:32:26 UTC"  # type: ignore[index]
