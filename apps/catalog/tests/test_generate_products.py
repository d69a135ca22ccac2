import pytest
from django.core.management import call_command

from apps.catalog.models import Product

pytestmark = pytest.mark.django_db(transaction=True)


def test_generates_a_realistic_catalog_in_batches(api_client, cache_on):
    assert api_client.get("/products").json()["total"] == 0  # cached empty page

    call_command("generate_products", count=2_500, batch_size=1_000, seed=7)

    assert Product.objects.count() == 2_500
    assert set(Product.objects.values_list("category", flat=True).distinct()) == {
        "electronics",
        "food",
        "beauty",
        "home",
        "fashion",
    }
    assert not Product.objects.filter(price__lt=3_000).exists()
    assert not Product.objects.exclude(price__endswith="00").exists()  # whole hundreds of KRW
    assert api_client.get("/products").json()["total"] == 2_500  # the cache saw the import
