"""Cache-aside: read-your-write, the off switch, version loss, and stampede protection.

The stampede tests are ordered by events, never by sleeps: `compute` holds each read that computes
until enough of the racing reads have either computed or started waiting for another's fill (the
cache logs that at DEBUG), so their outcome is the same on a fast or a loaded machine. The negative
control runs the same race with the stampede lock switched off (the test-only setting
CATALOG_CACHE_NAIVE_FILLS)."""

import logging
import threading
from collections.abc import Callable

import pytest
from django.core.cache import cache

from apps.catalog import cache as catalog_cache
from apps.catalog.cache import CATALOG, cache_aside, scope_bump, scope_versions
from apps.catalog.models import Product
from apps.catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)  # invalidation runs on commit


def test_read_after_write_never_sees_the_old_page(api_client, staff_client, cache_on):
    product = ProductFactory(name="Old name", stock=5)
    assert api_client.get("/products").json()["items"][0]["name"] == "Old name"  # cached
    assert api_client.get(f"/products/{product.id}").json()["name"] == "Old name"

    staff_client.patch(f"/products/{product.id}", {"name": "New name"}, format="json")
    assert api_client.get("/products").json()["items"][0]["name"] == "New name"
    assert api_client.get(f"/products/{product.id}").json()["name"] == "New name"

    staff_client.patch(f"/products/{product.id}/stock", {"delta": 3}, format="json")
    assert api_client.get("/products").json()["items"][0]["stock"] == 8
    assert api_client.get(f"/products/{product.id}").json()["stock"] == 8

    created = staff_client.post("/products", {"name": "Fresh", "price": 1}, format="json").json()
    listed = api_client.get("/products").json()
    assert (listed["total"], listed["items"][0]["id"]) == (2, created["id"])


def test_cached_reads_do_not_touch_the_database(api_client, cache_on, django_assert_num_queries):
    product = ProductFactory()
    api_client.get(f"/products/{product.id}")
    api_client.get("/products?category=electronics&page=1&size=5")

    with django_assert_num_queries(0):
        api_client.get(f"/products/{product.id}")
        api_client.get("/products?category=electronics&page=1&size=5")


def test_a_write_behind_the_cache_shows_the_cache_is_really_used(api_client, cache_on):
    product = ProductFactory(name="Cached")
    api_client.get(f"/products/{product.id}")
    Product.objects.filter(pk=product.pk).update(name="Sneaky")  # no service: no invalidation

    assert api_client.get(f"/products/{product.id}").json()["name"] == "Cached"


def test_switched_off_every_read_goes_to_the_database(api_client, cache_off):
    product = ProductFactory(name="Before")
    api_client.get(f"/products/{product.id}")
    Product.objects.filter(pk=product.pk).update(name="After")

    assert api_client.get(f"/products/{product.id}").json()["name"] == "After"
    assert cache.keys("*") == []


def test_a_lost_version_key_restarts_above_every_old_version(cache_on):
    scope_versions([CATALOG])
    for _ in range(3):
        scope_bump(CATALOG)
    (old,), _ = scope_versions([CATALOG])
    cache.delete("cv:catalog")  # Redis restarted or evicted it

    (new,), _ = scope_versions([CATALOG])

    assert new > old  # restarts at the clock in ns, above every bump: old keys stay unreachable


READERS = 10
HOLD_SECONDS = 10  # bounds a broken race only: a passing test never waits this long


class Race(logging.Handler):
    """What each racing read did: computed (through `compute`) or started waiting for another
    request's fill (the cache's DEBUG record with `cache_fill="wait"`). `compute` holds its
    caller until `release_when(race)` is true, then returns the value."""

    def __init__(self, release_when: Callable[["Race"], bool]) -> None:
        super().__init__(level=logging.DEBUG)
        self.computes = self.waits = 0
        self.release_when = release_when
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "cache_fill", None) == "wait":
            with self.changed:
                self.waits += 1
                self.changed.notify_all()

    def compute(self) -> dict:
        with self.changed:
            self.computes += 1
            self.changed.notify_all()
            if not self.changed.wait_for(lambda: self.release_when(self), HOLD_SECONDS):
                raise AssertionError(f"stuck: {self.computes} computes, {self.waits} waits")
        return {"value": 42}


def all_arrived(race: Race) -> bool:
    """Every reader has missed: it is computing, or it waits for the one that is."""
    return race.computes + race.waits == READERS


def all_computed(race: Race) -> bool:
    return race.computes == READERS


@pytest.fixture
def stampede(cache_on, caplog, monkeypatch):
    """Runs READERS concurrent cache_aside reads of one cold key (threads released together) and
    returns their results and the Race. Waiters wait as long as a compute can be held, so only
    the events decide who computes."""
    caplog.set_level(logging.DEBUG, logger=catalog_cache.logger.name)
    monkeypatch.setattr(catalog_cache, "WAIT_TOTAL", HOLD_SECONDS)

    def run(release_when: Callable[[Race], bool]) -> tuple[list, Race]:
        race = Race(release_when)
        catalog_cache.logger.addHandler(race)
        try:
            results = _in_threads(
                lambda: cache_aside(scopes=[CATALOG], key=("hot",), compute=race.compute)
            )
        finally:
            catalog_cache.logger.removeHandler(race)
        return results, race

    return run


def test_cold_key_is_computed_once_under_a_stampede(stampede):
    # when: the first reader to miss computes, held until the nine others missed too
    results, race = stampede(release_when=all_arrived)

    # then: the nine waited for its fill instead of computing
    assert results == [{"value": 42}] * READERS
    assert (race.computes, race.waits) == (1, 9)


def test_negative_control_without_the_fill_lock_every_miss_computes(stampede, settings):
    # given: the same race with cache_aside's stampede lock switched off
    settings.CATALOG_CACHE_NAIVE_FILLS = True

    results, race = stampede(release_when=all_arrived)

    # then: all ten misses computed the value concurrently (held until all ten were computing)
    assert results == [{"value": 42}] * READERS
    assert (race.computes, race.waits) == (10, 0)


def test_lock_holder_too_slow_waiters_compute_for_themselves(stampede, monkeypatch):
    # given: waiters give up after 50 ms, and the lock holder is held until all ten computed,
    # so no waiter can ever see its fill
    monkeypatch.setattr(catalog_cache, "WAIT_TOTAL", 0.05)

    results, race = stampede(release_when=all_computed)

    # then: slower, never an error: the nine waited, gave up and computed for themselves
    assert results == [{"value": 42}] * READERS
    assert (race.computes, race.waits) == (10, 9)


def _in_threads(read: Callable[[], dict]) -> list:
    barrier = threading.Barrier(READERS)
    results: list = [None] * READERS

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = read()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * HOLD_SECONDS)
    return results
