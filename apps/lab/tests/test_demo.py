import pytest
from django.core.management import call_command

from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.models import Deal
from apps.lab.demo import PRODUCTS, seed_demo_catalog

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_is_idempotent_with_a_live_and_an_upcoming_deal(staff_user):
    seed_demo_catalog(operator=staff_user)
    snapshot = sorted(Product.objects.values_list("name", "stock"))
    deals = sorted(Deal.objects.values_list("id", "remaining_stock"))

    seed_demo_catalog(operator=staff_user)

    assert sorted(Product.objects.values_list("name", "stock")) == snapshot
    assert sorted(Deal.objects.values_list("id", "remaining_stock")) == deals
    assert Product.objects.count() == len(PRODUCTS)
    assert len({category for _, category, *_ in PRODUCTS}) == 4
    statuses = sorted(deal.status for deal in Deal.objects.all())
    assert statuses == ["active", "scheduled"]
    live = next(d for d in Deal.objects.all() if d.status == "active")
    assert (live.deal_stock, live.per_user_limit) == (100, 2)
    assert gate.deal_remaining([d.id for d in Deal.objects.all()]) == {
        d.id: 100 for d in Deal.objects.all()
    }


def test_seed_demo_command_runs_twice(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert "12 demo products (0 new)" in capsys.readouterr().out
