"""Rate limits on the account doors (docs/security.md, "Rate limits"): before, 40 wrong passwords in
a row met no delay (`/admin/login/` neither), each costing ~0.35 s of CPU, and registration was
unthrottled. Limits are on here explicitly (the test settings exempt every address)."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import token_pair_for
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.accounts.tests.hashers import COUNTING_HASHER, CountingMD5PasswordHasher
from conftest import assert_error

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"
ADDRESS_REFUSED = {
    "error": "RATE_LIMITED",
    "message": "Too many login attempts from this address; retry later.",
    "details": {"rule": "login_address"},
}
ACCOUNT_REFUSED = {
    "error": "RATE_LIMITED",
    "message": "Too many login attempts for this account; retry later.",
    "details": {"rule": "login_account"},
}


@pytest.fixture
def limits(settings):
    """Limits on, nobody exempt; returns a setter for the rules a test tightens."""
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []

    def set_limits(**rules: str) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rules}

    return set_limits


def login(email: str, password: str, address: str, client: APIClient | None = None):
    return (client or APIClient()).post(
        "/auth/login", {"email": email, "password": password}, format="json", REMOTE_ADDR=address
    )


# --- login -------------------------------------------------------------------------------------


def test_wrong_passwords_from_one_address_get_429_before_any_hash(limits, settings, user):
    # given: 3 logins a minute per address; a hasher that counts
    limits(login_address="3/minute", login_account="100/minute")
    settings.PASSWORD_HASHERS = [COUNTING_HASHER]
    user.set_password(DEFAULT_PASSWORD)
    user.save()
    for n in range(3):
        assert login(user.email, f"wrong-{n}", ATTACKER).status_code == 401

    # when: the fourth, and even the right password, from the same address
    hashed = CountingMD5PasswordHasher.calls
    refused = login(user.email, "wrong-3", ATTACKER)
    right = login(user.email, DEFAULT_PASSWORD, ATTACKER)

    # then: 429 in the contract's shape, told how long to wait, and no password was hashed
    for response in (refused, right):
        assert_error(response, 429, "RATE_LIMITED")
        assert response.json() == ADDRESS_REFUSED
        assert response["Retry-After"] == "60"
    assert CountingMD5PasswordHasher.calls == hashed
    # another address is not affected
    assert login(user.email, DEFAULT_PASSWORD, "198.51.100.1").status_code == 200


def test_an_unknown_email_is_limited_like_a_real_one(limits, settings):
    # Django hashes a dummy password for an unknown email (timing): that too must not run.
    limits(login_address="1/minute")
    settings.PASSWORD_HASHERS = [COUNTING_HASHER]
    assert login("nobody@example.com", "guess-1", ATTACKER).status_code == 401

    hashed = CountingMD5PasswordHasher.calls
    response = login("nobody@example.com", "guess-2", ATTACKER)

    assert response.json() == ADDRESS_REFUSED
    assert CountingMD5PasswordHasher.calls == hashed


def test_one_account_is_limited_across_addresses(limits, user):
    # given: a guesser spreading 3 wrong passwords over 3 addresses
    limits(login_account="3/minute", login_address="100/minute")
    for n in range(3):
        assert login(user.email, f"wrong-{n}", f"198.51.100.{n + 1}").status_code == 401

    # when: a fourth address, with the email spelled differently
    response = login(user.email.upper(), "wrong-3", "198.51.100.4")

    # then
    assert_error(response, 429, "RATE_LIMITED")
    assert response.json() == ACCOUNT_REFUSED
    assert response["Retry-After"] == "60"
    # other accounts are not affected
    other = UserFactory()
    assert login(other.email, DEFAULT_PASSWORD, "198.51.100.4").status_code == 200


def test_the_real_user_logs_in_once_the_guessers_window_passes(limits, user):
    # given: a one-second account window, filled by a guesser; the real user, from elsewhere,
    # is refused meanwhile
    limits(login_account="3/second", login_address="100/minute")
    for n in range(3):
        login(user.email, f"wrong-{n}", ATTACKER)
    locked_out = login(user.email, DEFAULT_PASSWORD, "198.51.100.20")
    assert locked_out.json() == ACCOUNT_REFUSED

    # when: the real user retries after the Retry-After the refusal gave
    time.sleep(int(locked_out["Retry-After"]))
    response = login(user.email, DEFAULT_PASSWORD, "198.51.100.20")

    # then: no lockout past the window
    assert response.status_code == 200, response.json()


def test_a_refused_address_does_not_use_the_accounts_budget(limits, user):
    # The address is checked first: a flood from one address refused there leaves the account
    # free for its owner elsewhere.
    limits(login_address="2/minute", login_account="3/minute")
    for n in range(10):
        login(user.email, f"wrong-{n}", ATTACKER)

    assert login(user.email, DEFAULT_PASSWORD, "198.51.100.30").status_code == 200


def test_x_forwarded_for_from_a_client_is_not_an_address(limits, settings, user):
    # given: no trusted proxy; the attacker sends a fresh X-Forwarded-For with every attempt
    settings.TRUSTED_PROXIES = []
    limits(login_address="2/minute")
    codes = [
        APIClient()
        .post(
            "/auth/login",
            {"email": user.email, "password": "wrong"},
            format="json",
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
        .status_code
        for n in range(4)
    ]

    assert codes == [401, 401, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(limits, settings, user):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    limits(login_address="1/minute")

    def via_proxy(client_ip: str, spoofed: str):
        return APIClient().post(
            "/auth/login",
            {"email": user.email, "password": "wrong"},
            format="json",
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"{spoofed}, {client_ip}",  # the proxy appended client_ip
        )

    assert via_proxy("198.51.100.1", spoofed="1.1.1.1").status_code == 401
    assert via_proxy("198.51.100.1", spoofed="2.2.2.2").status_code == 429  # spoof ignored
    assert via_proxy("198.51.100.2", spoofed="1.1.1.1").status_code == 401


# --- the limit holds under concurrency ---------------------------------------------------------

RACERS = 20
LIMIT = 5


def race_logins(settings) -> Counter:
    """RACERS wrong-password logins from one address, released together by a barrier. With the
    read-then-write control on, each also stops between its read and its write (the test-only
    hook RATE_LIMIT_UNSAFE_AFTER_READ) until all have read; the atomic path never calls it."""
    settings.RATE_LIMIT_EXEMPT_ADDRESSES = []
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_address": f"{LIMIT}/minute",
        "login_account": "1000/minute",
    }
    start = threading.Barrier(RACERS, timeout=60)
    every_read_done = threading.Barrier(RACERS, timeout=60)
    settings.RATE_LIMIT_UNSAFE_AFTER_READ = lambda rule: (
        every_read_done.wait() if rule == "login_address" else None
    )
    answers: Counter = Counter()
    lock = threading.Lock()

    def attempt(n: int) -> None:
        client = APIClient()
        try:
            start.wait()
            response = login(f"racer{n}@example.com", "wrong", ATTACKER, client)
            with lock:
                answers[f"{response.status_code} {response.json()['error']}"] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_the_limit_is_exact_under_concurrency(settings):
    # given: the library's atomic check-and-record (the default)
    settings.RATE_LIMIT_UNSAFE_READ_THEN_WRITE = False

    answers = race_logins(settings)

    # then: exactly LIMIT attempts reached the password check
    assert answers == {"401 INVALID_CREDENTIALS": LIMIT, "429 RATE_LIMITED": RACERS - LIMIT}


@pytest.mark.django_db(transaction=True)
def test_negative_control_read_then_write_lets_every_racer_through(settings):
    # given: DRF's throttle shape (read the window, decide, write) in the limiter's own code path
    settings.RATE_LIMIT_UNSAFE_READ_THEN_WRITE = True

    answers = race_logins(settings)

    # then: all read an empty window before any wrote, so all 20 got a password check
    assert answers == {"401 INVALID_CREDENTIALS": RACERS}


# --- the admin's login form --------------------------------------------------------------------


def test_the_admin_login_shares_the_login_limits(limits, settings, staff_user):
    # given: two wrong passwords through the API use up the account's budget
    limits(login_account="2/minute", login_address="100/minute")
    settings.PASSWORD_HASHERS = [COUNTING_HASHER]
    staff_user.set_password(DEFAULT_PASSWORD)
    staff_user.save()
    for n in range(2):
        login(staff_user.email, f"wrong-{n}", ATTACKER)

    # when: the right password through the admin's form, from the operator's own address
    browser = Client(enforce_csrf_checks=True)
    hashed = CountingMD5PasswordHasher.calls
    response = browser.post(
        "/admin/login/",
        {"username": staff_user.email, "password": DEFAULT_PASSWORD},
        REMOTE_ADDR="198.51.100.50",
    )

    # then: refused before the form (no CSRF check reached, no hash)
    assert_error(response, 429, "RATE_LIMITED")
    assert response.json() == ACCOUNT_REFUSED
    assert response["Retry-After"] == "60"
    assert CountingMD5PasswordHasher.calls == hashed


def test_the_admin_login_is_limited_per_address(limits):
    limits(login_address="2/minute")
    browser = Client()
    form = {"username": "operator@example.com", "password": "guess"}

    codes = [
        browser.post("/admin/login/", form, REMOTE_ADDR=ATTACKER).status_code for _ in range(3)
    ]

    assert codes == [200, 200, 429]  # the form again (wrong password), then the limit
    assert browser.get("/admin/login/", REMOTE_ADDR=ATTACKER).status_code == 200  # GET is free


def test_the_admin_login_still_logs_in(limits, staff_user):
    browser = Client()

    response = browser.post(
        "/admin/login/?next=/admin/",
        {"username": staff_user.email, "password": DEFAULT_PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="198.51.100.50",
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


# --- registration and refresh ------------------------------------------------------------------


def register(n: int, address: str, password: str = "a-long-passphrase"):
    return APIClient().post(
        "/auth/register",
        {"email": f"new{n}@example.com", "password": password, "name": "Kim"},
        format="json",
        REMOTE_ADDR=address,
    )


def test_registration_is_limited_per_address(limits):
    limits(register_address="2/hour")
    assert [register(n, ATTACKER).status_code for n in range(2)] == [201, 201]

    refused = register(2, ATTACKER)

    assert_error(refused, 429, "RATE_LIMITED")
    assert refused.json() == {
        "error": "RATE_LIMITED",
        "message": "Too many registrations from this address; retry later.",
        "details": {"rule": "register_address"},
    }
    assert refused["Retry-After"] == "3600"
    assert not User.objects.filter(email="new2@example.com").exists()
    assert User.objects.count() == 2
    assert register(3, "198.51.100.60").status_code == 201


def test_a_weak_password_does_not_use_the_registration_budget(limits):
    limits(register_address="1/hour")

    assert register(0, ATTACKER, password="password").status_code == 422
    assert register(0, ATTACKER).status_code == 201


def test_refresh_is_limited_per_address(limits, user):
    limits(refresh_address="1/minute")
    first, second = token_pair_for(user), token_pair_for(user)

    def refresh(token: str):
        return APIClient().post(
            "/auth/refresh", {"refresh_token": token}, format="json", REMOTE_ADDR=ATTACKER
        )

    assert refresh(first.refresh_token).status_code == 200
    refused = refresh(second.refresh_token)

    assert_error(refused, 429, "RATE_LIMITED", {"rule": "refresh_address"})
    assert refused["Retry-After"] == "60"
