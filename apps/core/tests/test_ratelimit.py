"""apps.core.ratelimit: the client address, the exemption, the keys it leaves in the gate's Redis,
and what it does when Redis is down (docs/security.md, "Rate limits"). The endpoints' limits are
tested where they are applied (apps/accounts/tests/test_rate_limits.py, test_health.py)."""

import logging

import pytest
from django.test import RequestFactory

from apps.core import ratelimit
from apps.core.errors import RateLimited, ServiceUnavailable
from apps.core.ratelimit import client_address, is_exempt, rate_limit_hit
from apps.core.redis import get_redis
from apps.core.tests.redis_server import RedisServer


@pytest.fixture
def limits_on(settings):
    """Rate limits as `make run` has them: nobody exempt (the test settings exempt everyone)."""
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    return settings


def _request(remote_addr: str, forwarded_for: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **extra)


# --- the client address ------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = []

    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_x_forwarded_for_is_ignored_from_a_peer_that_is_not_the_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_behind_the_proxy_the_right_most_untrusted_hop_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.10"]

    # the client wrote "1.1.1.1, 2.2.2.2"; the CDN edge (192.0.2.10) appended the client's real
    # address, the proxy at 10.0.0.2 appended the edge's
    request = _request("10.0.0.2", "1.1.1.1, 2.2.2.2, 198.51.100.7, 192.0.2.10")

    assert client_address(request) == "198.51.100.7"


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        (None, "10.0.0.2"),  # the proxy sent no header: its own address
        ("", "10.0.0.2"),
        ("not-an-ip, 198.51.100.7", "198.51.100.7"),
        ("198.51.100.7, not-an-ip", "10.0.0.2"),  # garbage stops the walk at the last good hop
        ("198.51.100.7:51234", "198.51.100.7"),
        ("[2001:db8:1:2::99]:443", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_forwarded_hops_are_parsed_strictly(settings, forwarded_for, expected):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_address(_request("10.0.0.2", forwarded_for)) == expected


def test_ipv6_clients_count_per_64(settings):
    settings.TRUSTED_PROXIES = []

    first = client_address(_request("2001:db8:1:2::1"))
    rotated = client_address(_request("2001:db8:1:2:ffff:ffff:ffff:ffff"))

    assert first == rotated == "2001:db8:1:2::/64"
    assert client_address(_request("2001:db8:1:3::1")) == "2001:db8:1:3::/64"


def test_a_peer_that_is_not_an_ip_is_unknown():
    assert client_address(_request("")) == "unknown"


@pytest.mark.parametrize(
    ("address", "exempt"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("2001:db8:1:2::/64", True),
        ("2001:db9::/64", False),
        ("unknown", False),
    ],
)
def test_the_exemption_is_by_network(settings, address, exempt):
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = ["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"]

    assert is_exempt(address) is exempt


# --- the limiter -------------------------------------------------------------------------------


def test_a_full_window_raises_rate_limited_with_the_wait(limits_on):
    limits_on.RATE_LIMITS = {**limits_on.RATE_LIMITS, "refresh_address": "2/minute"}
    for _ in range(2):
        rate_limit_hit("refresh_address", "198.51.100.7", client_address="198.51.100.7")

    with pytest.raises(RateLimited) as refused:
        rate_limit_hit("refresh_address", "198.51.100.7", client_address="198.51.100.7")

    assert refused.value.http_status == 429
    assert refused.value.details == {"rule": "refresh_address"}
    assert refused.value.headers == {"Retry-After": "60"}
    # another identity has a window of its own
    rate_limit_hit("refresh_address", "198.51.100.8", client_address="198.51.100.8")


def test_every_limit_of_a_rule_applies(limits_on):
    limits_on.RATE_LIMITS = {**limits_on.RATE_LIMITS, "refresh_address": "5/minute;1/hour"}
    rate_limit_hit("refresh_address", "a", client_address="198.51.100.7")

    with pytest.raises(RateLimited) as refused:
        rate_limit_hit("refresh_address", "a", client_address="198.51.100.7")

    assert refused.value.headers == {"Retry-After": "3600"}


def test_an_exempt_address_is_never_limited(limits_on):
    limits_on.RATE_LIMITS = {**limits_on.RATE_LIMITS, "refresh_address": "1/minute"}
    limits_on.RATE_LIMIT_EXEMPT_ADDRESSES = ["198.51.100.0/24"]

    for _ in range(5):
        rate_limit_hit("refresh_address", "a", client_address="198.51.100.7")

    assert get_redis().keys("*") == []  # not even counted


def test_keys_have_their_own_prefix_and_expire_with_the_window(limits_on):
    limits_on.RATE_LIMITS = {**limits_on.RATE_LIMITS, "login_account": "5/minute"}

    rate_limit_hit("login_account", "someone@example.com", client_address="198.51.100.7")

    (name,) = get_redis().keys("*")
    assert name.startswith("fdtest:ratelimit:LIMITER/login_account/")
    assert "someone" not in name  # a digest, not the email
    assert 0 < get_redis().ttl(name) <= 60


@pytest.fixture
def redis_down(settings, tmp_path):
    """The app's Redis is a server that has just stopped."""
    with RedisServer(tmp_path) as server:
        settings.REDIS_URL = server.url
        get_redis.cache_clear()
        server.stop()
        yield
    get_redis.cache_clear()


def test_redis_down_fails_open_with_a_warning(limits_on, redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.core.ratelimit"):
        rate_limit_hit("login_address", "198.51.100.7", client_address="198.51.100.7")

    assert "rate limit login_address not checked (Redis unreachable)" in caplog.text


def test_a_fail_closed_rule_refuses_with_503_when_redis_is_down(limits_on, redis_down, monkeypatch):
    limits_on.RATE_LIMITS = {**limits_on.RATE_LIMITS, "closed": "5/minute"}
    monkeypatch.setitem(ratelimit.RULES, "closed", ratelimit.Rule("Closed.", fail_open=False))

    with pytest.raises(ServiceUnavailable):
        rate_limit_hit("closed", "198.51.100.7", client_address="198.51.100.7")
