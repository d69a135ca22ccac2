"""A deal's post-sale report, as the admin page and the CSV, from a sale that sold out through
the redis_async pipeline with a dead letter of each outcome."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.deals import gate
from apps.deals.models import Deal
from apps.orders.models import Order
from apps.orders.report import deal_report
from apps.orders.services.dead_letters import dead_letter_discard, dead_letter_replay
from apps.orders.services.drain import stream_drain
from apps.orders.services.reconcile import deal_reconcile
from apps.orders.tests.helpers import deal_line, make_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _buy(deal: Deal) -> tuple[int, str | None]:
    response = bearer_client(UserFactory()).post("/orders", deal_line(deal), format="json")
    return response.status_code, response.json().get("id")


def _park(deal: Deal) -> str:
    status, order_id = _buy(deal)
    assert status == 202
    gate.dead_letter_park(deal.pk, gate.pending_snapshot(deal.pk)[order_id], reason="boom")
    return order_id


@pytest.fixture
def sold_out(settings) -> Deal:
    """Quota 4 at 5,000: three written orders and a replayed dead letter hold the 4 units; one
    dead letter was discarded (a failed order), one is still parked; one shopper came too late."""
    settings.ORDER_PIPELINE = "redis_async"
    deal = make_deal(deal_stock=4, deal_price=5_000)
    first, second = _buy(deal)[1], _buy(deal)[1]
    replayed = _park(deal)
    dead_letter_replay(deal_id=deal.pk, order_id=replayed)
    discarded = _park(deal)
    dead_letter_discard(deal_id=deal.pk, order_id=discarded)
    _park(deal)  # still parked
    last = _buy(deal)[1]
    assert _buy(deal)[0] == 400  # sold out
    stream_drain(deal_id=str(deal.id), idle_exit_ms=0)
    # acceptance times, pinned: three in the first second, the last unit 42.5 s after the first
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for order_id, offset in [(first, 0.1), (second, 0.5), (replayed, 0.9), (discarded, 1.2),
                             (last, 42.6)]:  # fmt: skip
        Order.objects.filter(pk=order_id).update(created_at=t0 + timedelta(seconds=offset))
    deal_reconcile(deal_id=deal.pk)
    Deal.objects.filter(pk=deal.pk).update(ended_at=timezone.now())
    return Deal.objects.select_related("product").get(pk=deal.pk)


def _rows(client: Client, deal: Deal) -> dict[str, str]:
    response = client.get(f"/admin/deals/deal/{deal.pk}/report.csv")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="deal-{deal.pk}-report.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["figure", "value"]
    return dict(rows[1:])


def test_the_csv_has_every_figure_of_the_sale(operator_client, sold_out):
    rows = _rows(operator_client, sold_out)

    figures = {key: rows[key] for key in [
        "status", "deal_price", "deal_stock", "units_sold", "revenue", "currency",
        "orders_confirmed", "orders_cancelled", "orders_failed", "time_to_sell_out_s",
        "peak_purchases_per_s", "answers_accepted", "answers_rejected_sold_out",
        "answers_rejected_limit", "dead_letters_replayed", "dead_letters_discarded",
        "dead_letters_parked", "reconciliation_ok", "reconciliation_findings",
    ]}  # fmt: skip
    assert figures == {
        "status": "ended", "deal_price": "5000", "deal_stock": "4", "units_sold": "4",
        "revenue": "20000", "currency": "KRW", "orders_confirmed": "4", "orders_cancelled": "0",
        "orders_failed": "1", "time_to_sell_out_s": "42.5", "peak_purchases_per_s": "3",
        "answers_accepted": "6", "answers_rejected_sold_out": "1", "answers_rejected_limit": "0",
        "dead_letters_replayed": "1", "dead_letters_discarded": "1", "dead_letters_parked": "1",
        "reconciliation_ok": "true", "reconciliation_findings": "0",
    }  # fmt: skip
    assert list(rows)[:3] == ["report_made_at", "deal_id", "product"]


def test_the_page_shows_the_same_figures_formatted(operator_client, sold_out):
    page = operator_client.get(f"/admin/deals/deal/{sold_out.pk}/report/").content.decode()

    assert '<td id="report-revenue">KRW 20,000 (4 x KRW 5,000)</td>' in page
    assert '<td id="report-units_sold">4 of 4</td>' in page
    assert '<td id="report-time_to_sell_out_s">42.5 s</td>' in page
    assert '<td id="report-reconciliation_ok">books balance</td>' in page
    assert f'href="/admin/deals/deal/{sold_out.pk}/report.csv"' in page


def test_a_deal_with_units_left_is_not_sold_out_and_says_what_redis_no_longer_has(
    operator_client,
):
    deal = make_deal(deal_stock=4, load=False)  # nobody tried to buy: no answers counted

    rows = _rows(operator_client, deal)
    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/report/").content.decode()

    assert (rows["time_to_sell_out_s"], rows["answers_accepted"], rows["units_sold"]) == (
        "",
        "",
        "0",
    )
    assert '<td id="report-time_to_sell_out_s">not sold out</td>' in page
    assert "Not kept: answers are counted in Redis and kept 30 days" in page


def test_the_report_reads_five_small_queries(sold_out, django_assert_num_queries):
    with django_assert_num_queries(5):
        report = deal_report(sold_out)

    assert (report.units_sold, report.peak_per_second) == (4, 3)


def test_a_viewer_with_the_deals_view_permission_reads_it(sold_out):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_deal"))
    client, nobody = Client(), Client()
    client.force_login(viewer)
    nobody.force_login(UserFactory(is_staff=True))

    assert client.get(f"/admin/deals/deal/{sold_out.pk}/report/").status_code == 200
    assert client.get(f"/admin/deals/deal/{sold_out.pk}/report.csv").status_code == 200
    assert nobody.get(f"/admin/deals/deal/{sold_out.pk}/report.csv").status_code == 403


def test_ended_deals_link_their_report(operator_client, sold_out):
    live = make_deal(load=False)
    report_url = f"/admin/deals/deal/{sold_out.pk}/report/"

    changelist = operator_client.get("/admin/deals/deal/").content.decode()
    change = operator_client.get(f"/admin/deals/deal/{sold_out.pk}/change/").content.decode()

    assert report_url in changelist and report_url in change
    assert f"/admin/deals/deal/{live.pk}/report/" not in changelist
