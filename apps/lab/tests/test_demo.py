import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import User
from apps.catalog.models import Product
from apps.deals import gate
from apps.deals.models import Deal
from apps.lab.demo import LIVE_DEAL_PRODUCT, PRODUCTS, ROOM_DEAL_PRODUCT, seed_demo_catalog

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_is_idempotent_with_two_live_deals_one_behind_the_room_and_an_upcoming_one(
    staff_user,
):
    seed_demo_catalog(operator=staff_user)
    snapshot = sorted(Product.objects.values_list("name", "stock"))
    deals = sorted(Deal.objects.values_list("id", "remaining_stock"))

    seed_demo_catalog(operator=staff_user)

    assert sorted(Product.objects.values_list("name", "stock")) == snapshot
    assert sorted(Deal.objects.values_list("id", "remaining_stock")) == deals
    assert Product.objects.count() == len(PRODUCTS)
    assert len({category for _, category, *_ in PRODUCTS}) == 4
    statuses = sorted(deal.status for deal in Deal.objects.all())
    assert statuses == ["active", "active", "scheduled"]
    live = Deal.objects.get(product__name=LIVE_DEAL_PRODUCT)
    assert (live.deal_stock, live.per_user_limit, live.room_enabled) == (100, 2, False)
    room = Deal.objects.get(product__name=ROOM_DEAL_PRODUCT)
    assert (room.status, room.room_enabled, room.room_rate) == ("active", True, 2)
    assert gate.deal_remaining([d.id for d in Deal.objects.all()]) == {
        d.id: 100 for d in Deal.objects.all()
    }


def test_seed_demo_command_runs_twice(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert "12 demo products (0 new)" in capsys.readouterr().out


# --- production settings: no account from a published password (docs/security.md) -----------


@pytest.fixture
def production_demo(settings):
    """What flashdeals.settings.production sets for seed_demo (passwords only from the env)."""
    settings.DEMO_PUBLISHED_PASSWORDS_ALLOWED = False
    settings.DEMO_ADMIN_PASSWORD = ""
    settings.DEMO_SHOPPER_PASSWORD = ""
    return settings


def test_production_seed_creates_no_account_by_default(production_demo, capsys):
    call_command("seed_demo")

    out = capsys.readouterr().out
    assert User.objects.count() == 0
    assert Product.objects.count() == len(PRODUCTS)
    assert "createsuperuser" in out


def test_production_seed_ignores_the_published_demo_passwords(production_demo, capsys):
    # docker-compose loads .env.example, which carries them
    production_demo.DEMO_ADMIN_PASSWORD = "admin-pass-123"
    production_demo.DEMO_SHOPPER_PASSWORD = "shopper-pass-123"

    call_command("seed_demo")

    assert User.objects.count() == 0
    assert "published demo password" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "DEMO_ADMIN_PASSWORD is not set"),
        ("admin-pass-123", "published demo password"),
        ("12345678", "too common"),
    ],
)
def test_production_seed_refuses_an_operator_without_a_password_of_ones_own(
    production_demo, password, message
):
    production_demo.DEMO_ADMIN_PASSWORD = password

    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", "--operator")

    assert not User.objects.filter(is_superuser=True).exists()


def test_production_seed_creates_the_operator_when_asked_with_an_own_password(production_demo):
    production_demo.DEMO_ADMIN_PASSWORD = "Vk2-quiet-harbour-lantern"
    production_demo.DEMO_SHOPPER_PASSWORD = "Zq8-amber-meadow-compass"

    call_command("seed_demo", "--operator")

    admin = User.objects.get(email=production_demo.DEMO_ADMIN_EMAIL)
    shopper = User.objects.get(email=production_demo.DEMO_SHOPPER_EMAIL)
    assert admin.check_password("Vk2-quiet-harbour-lantern")
    assert (admin.is_staff, admin.is_superuser) == (True, False)  # the operator role, below
    assert list(admin.groups.values_list("name", flat=True)) == ["operator"]
    assert shopper.check_password("Zq8-amber-meadow-compass") and not shopper.is_staff
