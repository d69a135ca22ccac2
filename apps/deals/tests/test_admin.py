"""An operator sets a deal up end to end in the admin: draft, publish, pause, resume, end."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import Product
from apps.catalog.tests.factories import ProductFactory
from apps.deals.models import Deal
from apps.deals.tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def _when(delta: timedelta) -> dict:
    local = timezone.localtime(timezone.now() + delta)
    return {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M:%S")}


def _form(product, **overrides) -> dict:
    starts, ends = _when(-timedelta(minutes=5)), _when(timedelta(days=1))
    return {
        "product": str(product.pk),
        "deal_price": 9_000,
        "deal_stock": 30,
        "per_user_limit": 2,
        "starts_at_0": starts["date"],
        "starts_at_1": starts["time"],
        "ends_at_0": ends["date"],
        "ends_at_1": ends["time"],
    } | overrides


def _action(client, action: str, deal: Deal, **extra: str):
    # confirm_preflight: no Celery worker runs here, so publishing needs the operator's
    # confirmation (the preflight itself is tested in test_console.py)
    return client.post(
        "/admin/deals/deal/",
        {"action": action, "_selected_action": [str(deal.pk)], "confirm_preflight": "1"} | extra,
        follow=True,
    )


@pytest.mark.django_db(transaction=True)  # ending closes the deal on commit
def test_operator_runs_a_deal_end_to_end(operator_client):
    product = ProductFactory(price=10_000, stock=100)

    # create: a draft, nothing carved
    response = operator_client.post("/admin/deals/deal/add/", _form(product))
    assert response.status_code == 302, response.content.decode()[:3000]
    deal = Deal.objects.get()
    assert (deal.published_at, Product.objects.get().stock) == (None, 100)

    _action(operator_client, "publish", deal)
    deal.refresh_from_db()
    assert deal.published_at is not None and Product.objects.get().stock == 70

    _action(operator_client, "pause", deal)
    assert Deal.objects.get().status == "paused"
    _action(operator_client, "resume", deal)
    assert Deal.objects.get().status == "active"

    Deal.objects.filter(pk=deal.pk).update(remaining_stock=25)  # 5 sold
    with_messages = _action(
        operator_client, "end_early", deal, _confirmed="yes", reason="supplier recall"
    )
    assert "Ended 1 deal(s)." in with_messages.content.decode()
    deal.refresh_from_db()
    assert (deal.status, deal.closed_at is not None, deal.remaining_stock) == ("ended", True, 0)
    assert Product.objects.get().stock == 95


def test_save_and_publish_button(operator_client):
    product = ProductFactory(price=10_000, stock=100)

    page = operator_client.get("/admin/deals/deal/add/").content.decode()
    assert 'name="_publish"' in page
    saved = operator_client.post("/admin/deals/deal/add/", _form(product) | {"_publish": "1"})
    operator_client.post(saved["Location"], {"confirm_preflight": "1"})  # the go-live preflight

    deal = Deal.objects.get()
    assert deal.published_at is not None and Product.objects.get().stock == 70
    assert (
        'name="_publish"'
        not in operator_client.get(f"/admin/deals/deal/{deal.pk}/change/").content.decode()
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"deal_price": 10_000}, "deal_price", "Must be below the list price (10000)."),
        ({"deal_stock": 101}, "deal_stock", "Only 100 units in stock."),
        (
            {"ends_at_0": _when(-timedelta(days=1))["date"]},
            "ends_at",
            "The deal must end after it starts.",
        ),
    ],
)
def test_add_form_validates(operator_client, overrides, field, message):
    product = ProductFactory(price=10_000, stock=100)

    response = operator_client.post("/admin/deals/deal/add/", _form(product, **overrides))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]
    assert Deal.objects.count() == 0 and Product.objects.get().stock == 100


def test_terms_of_a_published_deal_cannot_change(operator_client):
    deal = DealFactory(product__price=10_000, deal_price=9_000, deal_stock=10)
    later = _when(timedelta(days=3))

    operator_client.post(
        f"/admin/deals/deal/{deal.pk}/change/",
        _form(deal.product, deal_price=1, deal_stock=99)
        | {"ends_at_0": later["date"], "ends_at_1": later["time"]},
    )

    deal.refresh_from_db()
    assert (deal.deal_price, deal.deal_stock) == (9_000, 10)  # read-only fields are ignored
    assert timezone.localtime(deal.ends_at).strftime("%Y-%m-%d") == later["date"]


def test_publish_action_reports_insufficient_stock(operator_client):
    product = ProductFactory(price=10_000, stock=100)
    operator_client.post("/admin/deals/deal/add/", _form(product))
    Product.objects.filter(pk=product.pk).update(stock=10)  # sold meanwhile

    page = _action(operator_client, "publish", Deal.objects.get()).content.decode()

    assert "Only 10 in stock; cannot take 30." in page
    assert Deal.objects.get().published_at is None and Product.objects.get().stock == 10


def test_published_deal_cannot_be_deleted(operator_client):
    deal = DealFactory()
    assert operator_client.get(f"/admin/deals/deal/{deal.pk}/delete/").status_code == 403


def test_changelist_shows_live_state(operator_client):
    DealFactory(product__name="Air fryer")
    page = operator_client.get("/admin/deals/deal/").content.decode()
    assert "Air fryer" in page and "active" in page


def test_product_admin_adjusts_stock_by_delta(operator_client):
    product = ProductFactory(name="Lamp", price=10_000, stock=5, category="home")
    data = {
        "name": "Lamp",
        "description": "",
        "price": 10_000,
        "category": "home",
        "image_url": "",
        "stock_delta": -2,
        "stock_reason": "two damaged",
    }
    Product.objects.filter(pk=product.pk).update(stock=8)  # a sale restocked meanwhile

    operator_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert Product.objects.get().stock == 6  # 8 - 2: the concurrent change is kept


def test_product_admin_refuses_stock_below_zero(operator_client):
    product = ProductFactory(name="Lamp", price=10_000, stock=1)
    data = {"name": "Renamed", "price": 10_000, "stock_delta": -2, "stock_reason": "damaged"}

    response = operator_client.post(
        f"/admin/catalog/product/{product.pk}/change/", data, follow=True
    )

    assert "INSUFFICIENT_STOCK" in response.content.decode()
    assert Product.objects.values_list("name", "stock").get() == ("Lamp", 1)  # all rolled back


def test_product_admin_creates_and_searches(operator_client):
    operator_client.post(
        "/admin/catalog/product/add/",
        {"name": "Hanwoo gift set", "price": 150_000, "stock": 7, "category": "food"},
    )
    product = Product.objects.get()
    assert (product.name, product.stock) == ("Hanwoo gift set", 7)
    assert "Hanwoo" in operator_client.get("/admin/catalog/product/?q=hanwoo").content.decode()
    assert operator_client.get("/admin/catalog/product/?category=food").status_code == 200
