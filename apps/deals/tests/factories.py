from datetime import timedelta

import factory
from django.utils import timezone

from apps.catalog.tests.factories import ProductFactory
from apps.deals.models import Deal


class DealFactory(factory.django.DjangoModelFactory):
    """A published, live deal. Its quota is *not* carved from the product (a factory writes rows,
    not business operations); tests about carving go through apps.deals.services."""

    class Meta:
        model = Deal

    product = factory.SubFactory(ProductFactory)
    deal_price = 30_000
    deal_stock = 10
    remaining_stock = factory.LazyAttribute(lambda deal: deal.deal_stock)
    per_user_limit = 1
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    published_at = factory.LazyFunction(timezone.now)
