"""The console's roles and its record: what an "operator" and a "viewer" can reach (exact
statuses), destructive actions that ask for a reason, read-only pages without Save, and every
action recorded with who, when, what and why on the deal."""

import logging
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import OPERATOR, VIEWER, role_grant, roles_sync
from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product, StockMovement
from apps.deals.models import Deal
from apps.deals.services import deal_close, deal_end
from apps.orders.models import Order
from apps.orders.services import LineInput, OrderInput, order_place
from apps.orders.tests.helpers import make_deal, make_product
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _client(role: str) -> tuple[User, Client]:
    roles_sync()  # a flushed test database keeps no groups
    user = UserFactory()
    role_grant(user=user, role=role)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def setting(settings):
    settings.ORDER_PIPELINE = "db_update"
    deal = make_deal(deal_stock=5)
    draft = make_deal(deal_stock=5, published=False)
    order = order_place(
        user_id=UserFactory().pk, data=OrderInput(items=(LineInput(make_product().pk, 1),))
    ).order
    return deal, draft, order


def _recorded(deal_id) -> list[tuple[str, str]]:
    entries = LogEntry.objects.filter(object_id=str(deal_id)).order_by("id")
    return [(e.user.email, e.change_message) for e in entries]


# (method, url, operator's status, viewer's status); {deal}, {draft}, {order} filled in.
REACH = [
    ("get", "/admin/", 200, 200),
    ("get", "/admin/deals/deal/", 200, 200),
    ("get", "/admin/deals/deal/{deal}/change/", 200, 200),
    ("get", "/admin/deals/deal/{deal}/history/", 200, 200),
    ("get", "/admin/deals/deal/{deal}/live/", 200, 200),
    ("get", "/admin/deals/deal/{deal}/live.json", 200, 200),
    ("get", "/admin/deals/deal/{draft}/preflight/", 200, 200),
    ("get", "/admin/deals/deal/add/", 200, 403),
    ("get", "/admin/catalog/product/", 200, 200),
    ("get", "/admin/catalog/product/add/", 200, 403),
    ("get", "/admin/catalog/stockmovement/", 200, 200),
    ("get", "/admin/orders/order/", 200, 200),
    ("get", "/admin/orders/order/{order}/change/", 200, 200),
    ("get", "/admin/orders/order/export.csv", 200, 200),
    ("get", "/admin/orders/reconciliationreport/", 200, 200),
    ("get", "/metrics", 200, 200),
    ("get", "/admin/accounts/user/", 403, 403),
    ("get", "/admin/auth/group/", 403, 403),
    ("post", "/admin/deals/deal/{deal}/lifecycle/pause/", 302, 403),
    ("post", "/admin/deals/deal/{deal}/reconcile/", 302, 403),
    ("post", "/admin/deals/deal/{draft}/preflight/", 302, 403),
    ("post", "/admin/deals/deal/{deal}/lifecycle/end/", 200, 403),  # the confirmation page
    ("post", "/admin/deals/deal/", 302, 403),  # the pause action
    ("post", "/admin/orders/order/", 200, 403),  # cancel: the confirmation page
]


@pytest.mark.parametrize("role", [OPERATOR, VIEWER])
def test_what_each_role_reaches(role, setting):
    deal, draft, order = setting
    _, client = _client(role)
    ids = {"deal": deal.pk, "draft": draft.pk, "order": order.pk}
    data = {
        "/admin/deals/deal/": {"action": "pause", "_selected_action": [str(deal.pk)]},
        "/admin/orders/order/": {"action": "cancel_orders", "_selected_action": [str(order.pk)]},
        "/admin/deals/deal/{draft}/preflight/": {"confirm_preflight": "1"},
    }
    got = []
    for method, url, *_ in REACH:
        sent = data.get(url, {}) if method == "post" else {}
        response = getattr(client, method)(url.format(**ids), sent)
        got.append((method, url, response.status_code))

    column = 2 if role == OPERATOR else 3
    assert got == [(row[0], row[1], row[column]) for row in REACH]
    if role == VIEWER:  # nothing changed
        assert Deal.objects.get(pk=deal.pk).paused_at is None
        assert Deal.objects.get(pk=draft.pk).published_at is None
        assert Order.objects.get(pk=order.pk).status == "confirmed"
        assert LogEntry.objects.count() == 0


def test_viewer_pages_show_no_save_and_no_action_buttons(setting):
    deal, draft, order = setting
    _, client = _client(VIEWER)

    for url in [
        f"/admin/deals/deal/{deal.pk}/change/",
        f"/admin/deals/deal/{draft.pk}/change/",
        f"/admin/orders/order/{order.pk}/change/",
    ]:
        page = client.get(url).content.decode()
        assert 'name="_save"' not in page and 'name="_publish"' not in page, url
    live = client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()
    assert "lifecycle/pause/" not in live and 'id="reconcile-now"' not in live
    changelist = client.get("/admin/deals/deal/").content.decode()
    assert 'name="action"' not in changelist


def test_read_only_pages_show_no_save_even_for_a_superuser(operator_client, setting):
    deal, _, order = setting
    deal_end(deal_id=deal.pk)
    deal_close(deal_id=deal.pk)

    for url in [f"/admin/orders/order/{order.pk}/change/", f"/admin/deals/deal/{deal.pk}/change/"]:
        response = operator_client.get(url)
        assert response.status_code == 200
        assert 'name="_save"' not in response.content.decode(), url
        assert operator_client.post(url, {}).status_code == 403, url


def test_ending_early_asks_for_a_reason_and_records_it(setting):
    deal, _, _ = setting
    operator, client = _client(OPERATOR)
    action = {"action": "end_early", "_selected_action": [str(deal.pk)]}

    asked = client.post("/admin/deals/deal/", action)
    refused = client.post("/admin/deals/deal/", action | {"_confirmed": "yes", "reason": " "})

    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert str(deal) in asked.content.decode()  # the deal's readable label
    assert refused.status_code == 200
    assert "A reason is required: nothing was changed." in refused.content.decode()
    assert Deal.objects.get(pk=deal.pk).ended_at is None
    assert LogEntry.objects.count() == 0

    done = client.post(
        "/admin/deals/deal/", action | {"_confirmed": "yes", "reason": "supplier recall"}
    )

    assert done.status_code == 302
    assert Deal.objects.get(pk=deal.pk).ended_at is not None
    assert _recorded(deal.pk) == [(operator.email, "end: ended early (reason: supplier recall)")]


def test_ending_from_the_live_page_asks_for_a_reason(setting):
    deal, _, _ = setting
    _, client = _client(OPERATOR)
    url = f"/admin/deals/deal/{deal.pk}/lifecycle/end/"

    asked = client.post(url)
    refused = client.post(url, {"_confirmed": "yes", "reason": ""})

    assert (asked.status_code, refused.status_code) == (200, 200)
    assert "A reason is required" in refused.content.decode()
    assert Deal.objects.get(pk=deal.pk).ended_at is None


def test_discarding_a_dead_letter_without_a_reason_is_refused(setting):
    deal, _, order = setting
    _, client = _client(OPERATOR)

    response = client.post(
        f"/admin/deals/deal/{deal.pk}/dead-letters/{order.pk}/discard/", {"_confirmed": "yes"}
    )

    assert response.status_code == 200
    assert "A reason is required: nothing was changed." in response.content.decode()


def test_cancelling_orders_asks_for_a_reason_and_records_it(setting):
    _, _, order = setting
    operator, client = _client(OPERATOR)
    action = {"action": "cancel_orders", "_selected_action": [str(order.pk)]}

    refused = client.post("/admin/orders/order/", action | {"_confirmed": "yes"})

    assert "A reason is required: nothing was changed." in refused.content.decode()
    assert Order.objects.get(pk=order.pk).status == "confirmed"

    client.post("/admin/orders/order/", action | {"_confirmed": "yes", "reason": "fraud"})

    assert Order.objects.values_list("status", "cancel_reason").get(pk=order.pk) == (
        "cancelled", "fraud"
    )  # fmt: skip
    entry = LogEntry.objects.get(object_id=str(order.pk))
    assert (entry.user_id, entry.change_message) == (operator.pk, "cancel (reason: fraud)")
    assert StockMovement.objects.get(kind="cancellation").note == f"order {order.pk}; fraud"


def test_taking_stock_needs_a_reason():
    _, client = _client(OPERATOR)
    product = make_product(price=10_000, stock=5)
    data = {"name": product.name, "price": 10_000, "stock_delta": -2}

    refused = client.post(f"/admin/catalog/product/{product.pk}/change/", data)
    client.post(f"/admin/catalog/product/{product.pk}/change/", data | {"stock_reason": "broken"})

    assert "Taking units needs a reason." in refused.content.decode()
    assert Product.objects.get().stock == 3
    assert list(StockMovement.objects.values_list("delta", "note")) == [(-2, "admin: broken")]


def test_pause_and_resume_are_recorded_and_listed_on_the_deal(setting, caplog):
    deal, _, _ = setting
    operator, client = _client(OPERATOR)
    selected = {"_selected_action": [str(deal.pk)]}

    with caplog.at_level(logging.INFO, logger="flashdeals.audit"):
        client.post("/admin/deals/deal/", {"action": "pause", **selected})
        client.post("/admin/deals/deal/", {"action": "resume", **selected})
        client.post("/admin/deals/deal/", {"action": "resume", **selected})  # a no-op

    assert _recorded(deal.pk) == [(operator.email, "pause"), (operator.email, "resume")]
    audit = [r for r in caplog.records if r.name == "flashdeals.audit"]
    lines = [(r.actor, r.action, r.object_id) for r in audit]
    assert lines == [(str(operator.pk), a, str(deal.pk)) for a in ("pause", "resume")]
    page = client.get(f"/admin/deals/deal/{deal.pk}/change/").content.decode()
    assert "Recorded actions" in page
    assert page.count(f"<td>{operator.email}</td>") == 2


@pytest.mark.django_db(transaction=True)  # ending closes the deal on commit
def test_a_system_close_is_logged_as_system_and_listed_on_the_deal(settings, caplog):
    settings.ORDER_PIPELINE = "db_update"
    deal = make_deal(deal_stock=5)
    _, client = _client(OPERATOR)
    Deal.objects.filter(pk=deal.pk).update(ended_at=deal.starts_at)

    with caplog.at_level(logging.INFO, logger="flashdeals.audit"):
        deal_close(deal_id=deal.pk)

    assert LogEntry.objects.count() == 0  # a LogEntry needs a user: the log and the trail
    audit = [r for r in caplog.records if r.name == "flashdeals.audit"]
    assert [(r.actor, r.action) for r in audit] == [("system", "close")]
    page = client.get(f"/admin/deals/deal/{deal.pk}/change/").content.decode()
    assert "<td>system</td><td>deal_return: product +5, deal -5</td>" in page


def test_orders_reference_deals_by_label(operator_client, setting):
    deal, _, _ = setting
    order_place(
        user_id=UserFactory().pk, data=OrderInput(items=(LineInput(deal.product_id, 1, deal.pk),))
    )

    page = operator_client.get("/admin/orders/order/").content.decode()

    assert f'<a href="/admin/deals/deal/{deal.pk}/change/">{deal}</a>' in page
    assert str(deal) == f"{deal.product.name} ({timezone.localtime(deal.starts_at):%Y-%m-%d %H:%M})"


def test_view_site_leads_to_the_api_docs(operator_client):
    assert 'href="/api/docs"' in operator_client.get("/admin/").content.decode()


def test_seed_demo_operator_is_staff_in_the_operator_group_not_superuser(settings):
    call_command("seed_demo")
    call_command("seed_demo")

    operator = User.objects.get(email=settings.DEMO_ADMIN_EMAIL.lower())
    assert (operator.is_staff, operator.is_superuser) == (True, False)
    assert list(operator.groups.values_list("name", flat=True)) == [OPERATOR]
    assert operator.has_perm("deals.run_deal") and not operator.has_perm("auth.view_group")


def test_grant_role_command_switches_roles():
    roles_sync()
    user = UserFactory(email="support@example.com")

    call_command("grant_role", "support@example.com", VIEWER)
    call_command("grant_role", "support@example.com", OPERATOR)

    user.refresh_from_db()
    assert user.is_staff and list(user.groups.values_list("name", flat=True)) == [OPERATOR]
    call_command("grant_role", "support@example.com", "--revoke")
    user.refresh_from_db()
    assert (user.is_staff, user.groups.count()) == (False, 0)


# --- the JSON API's writes follow the same roles ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/products", {"name": "Lamp", "price": 10_000, "stock": 5, "category": "home"}),
        ("patch", "/products/{product}", {"price": 12_000}),
        ("patch", "/products/{product}/stock", {"delta": -1}),
        ("post", "/products/deals", "deal"),
    ],
)
def test_a_viewer_can_write_nothing_through_the_api_and_an_operator_can(method, path, body, db):
    """Before: the API checked only is_staff, which a viewer is: it could publish a deal."""
    product = make_product(price=10_000, stock=50)
    if body == "deal":
        now = timezone.now()
        body = {"product_id": str(product.pk), "deal_price": 5_000, "deal_stock": 5,
                "per_user_limit": 1, "starts_at": (now + timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat()}  # fmt: skip
    url = path.format(product=product.pk)
    viewer, operator = UserFactory(is_staff=True), UserFactory(is_staff=True)
    role_grant(user=viewer, role=VIEWER)
    role_grant(user=operator, role=OPERATOR)

    refused = getattr(bearer_client(viewer), method)(url, body, format="json")
    product.refresh_from_db()
    unchanged = (product.price, product.stock, Deal.objects.count())
    allowed = getattr(bearer_client(operator), method)(url, body, format="json")

    assert (refused.status_code, refused.json()["error"]) == (403, "FORBIDDEN")
    assert unchanged == (10_000, 50, 0)
    assert allowed.status_code in (200, 201)
