"""The console at a laptop's width: the dashboard, the deal list and the live page fit 1280 and
1366 px without a horizontal scroll, and the live link is on screen. Screenshots go to
test-artifacts/ (git-ignored); needs Debian's chromium like test_browser.py."""

from datetime import timedelta

import pytest

from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.deals.tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser  # noqa: F401 - fixture
from apps.orders.tests.helpers import make_deal, make_product


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 1366])
def test_the_console_fits_a_laptop_screen(browser, live_server, settings, width):  # noqa: F811
    # given: deals in every section, with long product names
    settings.ORDER_PIPELINE = "redis"
    name = "Samsung Galaxy Buds3 Pro noise-cancelling earbuds, silver"
    live = make_deal(product=make_product(price=398_000, name=name), deal_price=199_000)
    make_deal(product=make_product(name=f"{name} (upcoming)"), starts_in=timedelta(hours=3))
    make_deal(product=make_product(name=f"{name} (ended)"), starts_in=-timedelta(hours=2),
              lasts=timedelta(hours=1))  # fmt: skip
    operator = UserFactory(is_staff=True, is_superuser=True)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")

    for path, shot in [
        ("/admin/", "dashboard"),
        ("/admin/deals/deal/", "deal-list"),
        (f"/admin/deals/deal/{live.pk}/live/", "live"),
    ]:
        # when
        page.goto(f"{live_server.url}{path}")
        if shot == "live":
            page.wait_for_selector("#live-chart polyline", state="attached")
        page.screenshot(path=str(ARTIFACTS / f"console-{shot}-{width}.png"), full_page=True)

        # then: nothing sticks out sideways, and the way to the live page is on screen
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at {width} px"
        if shot != "live":
            link = page.locator(f'a[href="/admin/deals/deal/{live.pk}/live/"]').first
            box = link.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (path, box)
