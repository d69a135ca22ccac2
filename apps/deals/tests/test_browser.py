"""A real browser runs a deal from the admin: Playwright for Python driving Debian's headless
Chromium logs in, creates a product and a deal, publishes it through the go-live preflight,
watches the live page while shoppers buy through the API (a real Celery worker confirms their
orders), and sees it sell out. Screenshots go to test-artifacts/ (git-ignored).

Needs Debian's `chromium` (`make test` installs it when it can, CI always; otherwise the test
skips naming the command). Playwright's own browser download is never used (`playwright install`
needs a network we do not have).
"""

import json
import os
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import OPERATOR, VIEWER, role_grant
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.catalog.models import Product
from apps.core.tasks import beat_heartbeat_task
from apps.core.tests.celery_worker import ROOT
from apps.deals.models import Deal
from apps.orders.models import Order
from scripts import debian_tools

# Without the background-networking flags Chromium waits on services a closed network lacks.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 20_000


@pytest.fixture
def browser(monkeypatch):
    chromium = os.environ.get("CHROMIUM_PATH") or debian_tools.require("chromium")
    # Imported here, after the clearer "chromium is not installed" skip above; only this test
    # needs playwright.
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async-safety guard is lifted for this test.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()


def _api(base: str, path: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _login_token(base: str, email: str) -> str:
    request = urllib.request.Request(
        f"{base}/auth/login",
        data=json.dumps({"email": email, "password": DEFAULT_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_operator_runs_a_deal_in_a_real_browser(browser, live_server, celery_worker, settings):

    settings.ORDER_PIPELINE = "redis_async"
    # the operator role, not a superuser (docs/operator-guide.md, "Roles")
    operator = UserFactory(email="operator@flashdeals.local", is_staff=True)
    role_grant(user=operator, role=OPERATOR)
    viewer = UserFactory(email="support@flashdeals.local", is_staff=True)
    role_grant(user=viewer, role=VIEWER)
    shoppers = [UserFactory() for _ in range(6)]
    beat_heartbeat_task.delay()  # what beat would send every 10 s; the worker runs it
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    base = live_server.url

    # log in
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#deals-dashboard")  # the console opens on the deals dashboard

    # a product with 50 units
    page.goto(f"{base}/admin/catalog/product/add/")
    page.fill("#id_name", "Galaxy Buds3 Pro")
    page.fill("#id_price", "250000")
    page.fill("#id_stock", "50")
    page.fill("#id_category", "audio")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    product = Product.objects.get()

    # a deal of 5 units, 1 per shopper, picked through the product autocomplete
    page.goto(f"{base}/admin/deals/deal/add/")
    page.click(".field-product .select2-selection")
    page.fill(".select2-search__field", "Galaxy")
    page.click(".select2-results__option--highlighted, .select2-results__option >> nth=0")
    page.fill("#id_deal_price", "199000")
    page.fill("#id_deal_stock", "5")
    page.fill("#id_per_user_limit", "1")
    starts = timezone.localtime(timezone.now() - timedelta(minutes=1))
    ends = starts + timedelta(hours=2)
    page.fill("#id_starts_at_0", starts.strftime("%Y-%m-%d"))
    page.fill("#id_starts_at_1", starts.strftime("%H:%M:%S"))
    page.fill("#id_ends_at_0", ends.strftime("%Y-%m-%d"))
    page.fill("#id_ends_at_1", ends.strftime("%H:%M:%S"))
    page.click("input[name=_publish]")

    # the preflight: every check green (a worker consumes; beat's heartbeat arrived)
    page.wait_for_selector("#preflight-checks")
    deal = Deal.objects.get()
    assert deal.product_id == product.pk and deal.published_at is None
    deadline = time.monotonic() + 15
    while "All checks pass" not in page.content() and time.monotonic() < deadline:
        time.sleep(0.5)  # the heartbeat task may still be on its way to the worker
        page.reload()
    _shot(page, "preflight")
    assert page.locator("#preflight-checks li.fail").count() == 0, page.inner_text("#preflight")
    page.click("#publish-now")

    # the live page, before any sale
    page.wait_for_selector("#live-console")
    page.wait_for_function("document.querySelector('#live-preflight li.ok') !== null")
    # every time in one zone, labelled: the console's (CONSOLE_TIME_ZONE, Asia/Seoul here)
    assert page.inner_text("#console-zone") == "KST (Asia/Seoul, UTC+09:00)"
    assert page.inner_text("#live-updated").endswith(" KST")
    assert page.inner_text("#live-remaining") == "5"
    assert Product.objects.get().stock == 45  # the carve, listed in the movements table too
    assert "Deal Carve\t-5\t5\toperator@flashdeals.local" in page.inner_text("#live-console")

    # shoppers buy through the API: 5 accepted, one refused (sold out), one over the limit
    tokens = [_login_token(base, s.email) for s in shoppers]
    line = {"items": [{"product_id": str(product.pk), "deal_id": str(deal.pk), "quantity": 1}]}
    answers = [_api(base, "/orders", token, line)[0] for token in tokens]
    over_limit, body = _api(base, "/orders", tokens[0], line)
    assert answers == [202] * 5 + [400]
    assert (over_limit, body["error"]) in {(400, "DEAL_LIMIT_EXCEEDED"), (400, "DEAL_SOLD_OUT")}

    # the page updates by itself: sold out, every order confirmed by the worker, chart drawn
    page.wait_for_function(
        "document.querySelector('#live-status').textContent.trim() === 'sold_out'"
        " && document.querySelector('#live-orders-confirmed').textContent.trim() === '5'"
        " && document.querySelector('#live-backlog').textContent.trim() === '0'",
        timeout=TIMEOUT_MS,
    )
    assert page.inner_text("#live-remaining") == "0"
    assert page.inner_text("#live-units-sold") == "5"
    assert page.inner_text("#live-accepted") == "5"
    # the gate's refusal only: the last purchase was answered sold out from the web process's
    # memory (no Redis), counted in flashdeals_deal_sold_out_from_memory_total instead
    assert page.inner_text("#live-rejected-total") == "1"
    assert page.locator("#live-chart polyline.accepted").count() == 1
    _shot(page, "live-sold-out")
    assert Order.objects.filter(deal=deal, status="confirmed").count() == 5

    # the dashboard lists it live, sold through
    page.goto(f"{base}/admin/")
    row = page.locator("#dashboard-live tbody tr").filter(has_text="Galaxy Buds3 Pro")
    assert "\t5 / 5\t100.0%\tKRW 995,000\t" in row.inner_text()
    _shot(page, "dashboard")

    # cancelling an order asks for confirmation and a reason, then returns its unit
    cancelled = Order.objects.filter(deal=deal).earliest("created_at")
    page.goto(f"{base}/admin/orders/order/")
    page.check(f"input.action-select[value='{cancelled.pk}']")
    page.select_option("select[name=action]", "cancel_orders")
    page.click("button[name=index]")
    page.wait_for_selector("#id_reason")
    assert Order.objects.get(pk=cancelled.pk).status == "confirmed"  # nothing yet
    page.fill("#id_reason", "shopper asked by phone")
    _shot(page, "cancel-confirm")
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert Order.objects.get(pk=cancelled.pk).status == "cancelled"

    # ending early asks too; then the post-sale report
    page.goto(f"{base}/admin/deals/deal/{deal.pk}/live/")
    page.click("input[value='End early']")
    page.fill("#id_reason", "supplier recall")
    page.click("input[type=submit]")
    page.wait_for_selector("#live-console")
    deal.refresh_from_db()
    assert deal.ended_at is not None
    page.goto(f"{base}/admin/deals/deal/{deal.pk}/report/")
    assert page.inner_text("#report-units_sold").startswith("4")
    _shot(page, "report")

    # a viewer sees the live page and the orders, and can act on nothing
    viewer_page = browser.new_page(viewport={"width": 1280, "height": 900})
    viewer_page.set_default_timeout(TIMEOUT_MS)
    viewer_page.goto(f"{base}/admin/login/")
    viewer_page.fill("#id_username", viewer.email)
    viewer_page.fill("#id_password", DEFAULT_PASSWORD)
    viewer_page.click("input[type=submit]")
    viewer_page.wait_for_selector("#deals-dashboard")
    viewer_page.goto(f"{base}/admin/deals/deal/{deal.pk}/live/")
    viewer_page.wait_for_selector("#live-console")
    assert viewer_page.locator("form[method=post]").count() == 1  # the admin's logout only
    viewer_page.goto(f"{base}/admin/orders/order/")
    assert viewer_page.locator("select[name=action]").count() == 0
    assert viewer_page.locator("input[type=submit][name=_save]").count() == 0


def test_the_api_docs_render_offline(browser, live_server):
    """The README's first link: Swagger UI comes from this app's own static files, so it renders
    with no network. Every request the page makes to another host is refused and recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    elsewhere: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".opblock-summary-path")

    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/orders", "/auth/login", "/products/deals/{deal_id}/queue"} <= paths
    assert elsewhere == []
