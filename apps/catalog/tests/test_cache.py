"""Cache-aside: read-your-write, the off switch, version loss, and stampede protection."""

import threading
import time

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


def test_cold_key_is_computed_once_under_a_stampede(cache_on):
    calls, lock = [], threading.Lock()

    def slow_compute():
        with lock:
            calls.append(1)
        time.sleep(0.15)
        return {"value": 42}

    results = _stampede(lambda: cache_aside(scopes=[CATALOG], key=("hot",), compute=slow_compute))

    assert results == [{"value": 42}] * 10
    assert len(calls) == 1


def test_negative_control_naive_cache_aside_computes_once_per_request(cache_on):
    calls, lock = [], threading.Lock()

    def slow_compute():
        with lock:
            calls.append(1)
        time.sleep(0.15)
        return {"value": 42}

    def naive():
        value = cache.get("naive")
        if value is None:
            value = slow_compute()
            cache.set("naive", value)
        return value

    assert _stampede(naive) == [{"value": 42}] * 10
    assert len(calls) == 10


def test_lock_holder_too_slow_waiters_compute_for_themselves(cache_on, monkeypatch):
    monkeypatch.setattr(catalog_cache, "WAIT_TOTAL", 0.05)
    calls, lock = [], threading.Lock()

    def very_slow():
        with lock:
            calls.append(1)
        time.sleep(0.3)
        return {"value": 1}

    results = _stampede(lambda: cache_aside(scopes=[CATALOG], key=("x",), compute=very_slow))

    assert results == [{"value": 1}] * 10  # slower, never an error
    assert len(calls) == 10


def _stampede(read, n: int = 10) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = read()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results
