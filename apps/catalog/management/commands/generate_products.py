"""Generates a large, realistic catalog fast for the load tests (1,000,000 products in well under
a minute here): rows are streamed to PostgreSQL with COPY in batches, one transaction per batch,
with a progress bar on stderr. Products only; stock is generous so load tests never run dry."""

import random
import sys
import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from apps.catalog.cache import CATALOG, scope_changed

# category -> (brands, nouns, price range in KRW)
CATALOG_SHAPE: dict[str, tuple[list[str], list[str], tuple[int, int]]] = {
    "electronics": (
        ["Samsung", "LG", "Xiaomi", "Sony", "Anker", "Logitech"],
        ["earbuds", "monitor", "power bank", "keyboard", "smartwatch", "speaker", "tablet"],
        (19_000, 2_500_000),
    ),
    "food": (
        ["CJ", "Ottogi", "Nongshim", "Pulmuone", "Orion", "Dongwon"],
        ["kimchi 2kg", "ramyeon 5-pack", "hanwoo gift set", "tuna can set", "rice 10kg"],
        (3_000, 250_000),
    ),
    "beauty": (
        ["Sulwhasoo", "Innisfree", "Laneige", "Missha", "COSRX", "Etude"],
        ["serum", "sunscreen", "cushion compact", "toner", "sheet mask 10-pack", "cleanser"],
        (8_000, 320_000),
    ),
    "home": (
        ["Lock&Lock", "Cuckoo", "Hanssem", "Coway", "Dyson", "Philips"],
        ["rice cooker", "air purifier", "storage set", "blanket", "air fryer", "desk lamp"],
        (9_000, 1_200_000),
    ),
    "fashion": (
        ["MUSINSA", "SPAO", "8seconds", "Fila", "Discovery", "New Balance"],
        ["hoodie", "padded jacket", "sneakers", "backpack", "cap", "slacks"],
        (12_000, 450_000),
    ),
}
ADJECTIVES = ["Premium", "Classic", "Slim", "Pro", "Mini", "Eco", "Limited", "Everyday", "Max"]
COLUMNS = "id, name, description, price, stock, category, image_url, created_at, updated_at"


class Command(BaseCommand):
    help = "Bulk-generate realistic products with COPY (load-test catalogs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1_000_000)
        parser.add_argument("--batch-size", type=int, default=50_000)
        parser.add_argument("--seed", type=int, default=42, help="same seed, same catalog shape")
        parser.add_argument("--days", type=int, default=365, help="spread created_at over this")

    def handle(self, *args, count: int, batch_size: int, seed: int, days: int, **options):
        rng = random.Random(seed)
        now = timezone.now()
        started = time.monotonic()
        written = 0
        while written < count:
            n = min(batch_size, count - written)
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.cursor.copy(f"COPY catalog_product ({COLUMNS}) FROM STDIN") as copy:
                    for _ in range(n):
                        copy.write_row(_row(rng, now, days))
                if written + n >= count:
                    scope_changed(CATALOG)  # cached pages must show the new products
            written += n
            _progress(written, count, started)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_product")  # plans for the newest-first index scans
        sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        self.stdout.write(f"generated {count} products in {elapsed:.1f}s")


def _row(rng: random.Random, now, days: int) -> tuple:
    category = rng.choice(list(CATALOG_SHAPE))
    brands, nouns, (low, high) = CATALOG_SHAPE[category]
    brand, noun = rng.choice(brands), rng.choice(nouns)
    name = f"{brand} {rng.choice(ADJECTIVES)} {noun} {rng.randint(1, 9999):04d}"
    price = rng.randint(low // 100, high // 100) * 100  # KRW, whole hundreds
    created = now - timedelta(
        seconds=rng.randint(0, days * 86_400), microseconds=rng.randint(0, 999_999)
    )
    product_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    image = f"https://img.flashdeals.local/{category}/{product_id.hex[:12]}.jpg"
    description = f"{brand} {noun}, {category}. Fast delivery in Korea."
    return (
        product_id,
        name,
        description,
        price,
        rng.randint(10, 10_000),
        category,
        image,
        created,
        created,
    )


def _progress(done: int, total: int, started: float, width: int = 40) -> None:
    filled = width * done // total
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed else 0
    eta = (total - done) / rate if rate else 0
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(
        f"\r[{bar}] {done:>9,}/{total:,} {100 * done // total:3d}% {rate:,.0f}/s eta {eta:4.0f}s"
    )
    sys.stderr.flush()
