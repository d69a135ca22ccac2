"""The console's landing page: live, upcoming and recently ended deals with exact figures, in a
bounded number of queries whatever the number of deals."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product
from apps.deals.dashboard import SECTION_LIMIT, deals_dashboard
from apps.deals.models import Deal
from apps.orders.models import ReconciliationReport
from apps.orders.tests.helpers import deal_line, make_deal, make_product
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _buy(deal: Deal, quantity: int = 1):
    return bearer_client(UserFactory()).post("/orders", deal_line(deal, quantity), format="json")


def _rows(dashboard: dict) -> dict[str, list[dict]]:
    return {section["key"]: section["rows"] for section in dashboard["sections"]}


def test_each_section_lists_its_deals_with_exact_figures(settings):
    # given: a live deal that sold 3 of 10 units at 5,000, an upcoming one, one ended an hour
    # ago, one ended early, one that ended long ago and a draft (neither listed)
    settings.ORDER_PIPELINE = "redis"
    settings.CURRENCY = "KRW"
    live = make_deal(deal_stock=10, per_user_limit=2, deal_price=5_000)
    for quantity in (2, 1):
        assert _buy(live, quantity).status_code == 201
    upcoming = make_deal(starts_in=timedelta(hours=2))
    later = make_deal(starts_in=timedelta(hours=5))
    ended = make_deal(starts_in=-timedelta(hours=3), lasts=timedelta(hours=2))
    early = make_deal(starts_in=-timedelta(hours=1))
    Deal.objects.filter(pk=early.pk).update(ended_at=timezone.now() - timedelta(minutes=5))
    make_deal(starts_in=-timedelta(days=30), lasts=timedelta(hours=1))
    make_deal(published=False)
    ReconciliationReport.objects.create(
        deal=ended, ok=False, deal_stock=10, sold_units=0, pending_units=0, db_remaining=10,
        redis_remaining=9, findings=["redis_remaining 9 != db_remaining 10"], repairs=[],
    )  # fmt: skip

    # when
    rows = _rows(deals_dashboard(now=timezone.now()))

    # then
    assert [row["deal"].pk for row in rows["live"]] == [live.pk]
    assert [row["deal"].pk for row in rows["upcoming"]] == [upcoming.pk, later.pk]
    assert [row["deal"].pk for row in rows["ended"]] == [early.pk, ended.pk]
    row = rows["live"][0]
    assert {key: row[key] for key in ("status", "price", "units_sold", "deal_stock", "remaining",
                                      "sell_through_pct", "revenue", "per_s", "backlog",
                                      "dead_letters", "failing")} == {
        "status": "active", "price": "KRW 5,000", "units_sold": 3, "deal_stock": 10,
        "remaining": 7, "sell_through_pct": 30.0, "revenue": "KRW 15,000", "per_s": 0.0,
        "backlog": 0, "dead_letters": 0, "failing": [],
    }  # fmt: skip
    assert row["live_url"] == reverse("admin:deals_deal_live", args=[live.pk])
    assert row["countdown_ms"] == int(live.ends_at.timestamp() * 1000)
    assert rows["upcoming"][0]["countdown_ms"] == int(upcoming.starts_at.timestamp() * 1000)
    assert (rows["upcoming"][0]["per_s"], rows["upcoming"][0]["backlog"]) == (None, None)
    assert rows["ended"][1]["failing"] == [
        "Reconciliation found drift: ['redis_remaining 9 != db_remaining 10']"
    ]


def test_purchases_per_second_is_the_mean_of_the_last_minute(settings):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=20)
    for _ in range(12):
        assert _buy(deal).status_code == 201
    row = _rows(deals_dashboard(now=timezone.now()))["live"][0]
    assert (row["units_sold"], row["per_s"]) == (12, 0.2)


def test_a_live_deal_without_gate_state_is_flagged(settings):
    settings.ORDER_PIPELINE = "redis"
    make_deal(load=False)
    row = _rows(deals_dashboard(now=timezone.now()))["live"][0]
    assert row["failing"] == ["Deal state not loaded in Redis: the next purchase rebuilds it"]


def _many_deals(product: Product, count: int) -> None:
    """`count` published deals spread over the past, the present and the future."""
    now = timezone.now()
    Deal.objects.bulk_create(
        Deal(
            product=product,
            deal_price=5_000,
            deal_stock=5,
            remaining_stock=5,
            starts_at=now + timedelta(hours=i % 7 - 3),
            ends_at=now + timedelta(hours=i % 7 - 1),
            published_at=now - timedelta(days=1),
        )  # fmt: skip
        for i in range(count)
    )


def test_the_dashboard_is_the_admin_index_in_bounded_queries(
    operator_client, settings, django_assert_max_num_queries
):
    # given: a thousand deals, some with orders
    settings.ORDER_PIPELINE = "redis"
    for _ in range(3):
        assert _buy(make_deal(deal_stock=5)).status_code == 201
    _many_deals(make_product(price=10_000, stock=10_000), 1000)

    # when: the admin's index: session, user, the aggregate of totals, three sections, sales,
    # reconciliations
    with django_assert_max_num_queries(8):
        response = operator_client.get(reverse("admin:index"))

    # then: the sections list at most SECTION_LIMIT deals each, and the app list is still there
    assert response.status_code == 200
    sections = {s["key"]: s for s in response.context["dashboard"]["sections"]}
    now_live = Deal.objects.in_window(timezone.now()).count()
    assert (sections["live"]["total"], len(sections["live"]["rows"])) == (
        now_live, min(now_live, SECTION_LIMIT),
    )  # fmt: skip
    assert len(sections["upcoming"]["rows"]) == SECTION_LIMIT
    page = response.content.decode()
    assert 'id="deals-dashboard"' in page and 'id="app-list"' in page
    assert reverse("admin:deals_deal_changelist") in page
    assert 'Times in <strong id="console-zone">' in page


def test_staff_without_deal_permission_see_the_app_list_only(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert 'id="app-list"' in response.content.decode()


def test_the_index_is_staff_only(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
