import factory

from apps.catalog.models import Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine thing."
    price = 50_000
    stock = 100
    category = "electronics"
    image_url = ""
