import pytest


@pytest.fixture
def cache_on(settings):
    settings.CATALOG_CACHE_ENABLED = True
    return settings


@pytest.fixture
def cache_off(settings):
    settings.CATALOG_CACHE_ENABLED = False
    return settings
