"""The gate's Idempotency-Key claim (apps.deals.gate.idempotency): one atomic round trip binds
a shopper's key to the first body's fingerprint for IDEMPOTENCY_CLAIM_TTL_SECONDS; the key is
the shopper's, never under a deal's hash tag; Redis down is a 503."""

import uuid

import pytest

from apps.core.errors import ServiceUnavailable
from apps.core.redis import get_redis
from apps.core.tests.redis_server import free_port
from apps.deals import gate
from apps.deals.gate import Claim
from apps.deals.gate.client import gate_redis
from apps.deals.gate.keys import idempotency_claim_key

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_USER = uuid.UUID("00000000-0000-4000-8000-000000000002")


def claim(key: str, request_hash: str, user_id: uuid.UUID = USER) -> Claim:
    return gate.idempotency_claim(user_id=user_id, key=key, request_hash=request_hash)


def test_the_first_body_binds_the_key_and_a_retry_with_it_goes_on():
    assert claim("k-1", "hash-a") == Claim.CLAIMED
    assert claim("k-1", "hash-a") == Claim.SAME_BODY
    assert claim("k-1", "hash-b") == Claim.OTHER_BODY
    assert claim("k-1", "hash-a") == Claim.SAME_BODY  # a refusal does not rebind it


def test_keys_are_per_shopper():
    assert claim("k-2", "hash-a") == Claim.CLAIMED
    assert claim("k-2", "hash-b", user_id=OTHER_USER) == Claim.CLAIMED


def test_the_claim_lasts_the_configured_ttl(settings):
    settings.IDEMPOTENCY_CLAIM_TTL_SECONDS = 1234

    claim("k-3", "hash-a")

    name = idempotency_claim_key(USER, "k-3")
    assert gate_redis().get(name) == "hash-a"
    assert 1230 <= gate_redis().ttl(name) <= 1234


@pytest.mark.parametrize("key", ["plain", "{deal:x}", "a}b{c"])
def test_the_claim_key_never_takes_a_deals_hash_tag(settings, key):
    """Its cluster slot is picked by the first {...}: always the shopper's own tag, whatever
    braces the client's key holds."""
    name = idempotency_claim_key(USER, key)

    assert name == f"{settings.REDIS_KEY_PREFIX}:{{idem:{USER}}}:{key}"
    assert name[name.index("{") + 1 : name.index("}")] == f"idem:{USER}"


@pytest.mark.single_gate_server
def test_redis_down_is_a_503_with_retry_after(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            claim("k-4", "hash-a")
    finally:
        get_redis.cache_clear()

    assert refused.value.http_status == 503
    assert refused.value.headers == {"Retry-After": "1"}
