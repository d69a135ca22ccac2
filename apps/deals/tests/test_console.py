"""The live deal page, its JSON, the go-live preflight and the console's actions, driven through
the admin as an operator would, against real PostgreSQL, Redis and (where it matters) a real
Celery worker."""

import time
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import Product, StockMovement
from apps.core.formatting import console_time
from apps.core.redis import get_redis
from apps.core.tasks import beat_heartbeat_age, beat_heartbeat_task
from apps.deals import gate
from apps.deals.models import Deal
from apps.deals.services import deal_create
from apps.deals.tests.gate_faults import is_parked, park_interrupted
from apps.orders.models import Order
from apps.orders.tests.helpers import deal_line, make_deal, make_product
from apps.orders.tests.test_waiting_room import room_deal
from conftest import bearer_client

pytestmark = pytest.mark.django_db


def _buy(deal: Deal, user, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return bearer_client(user).post("/orders", deal_line(deal), format="json", **headers)


def _live(client: Client, deal: Deal) -> dict:
    response = client.get(f"/admin/deals/deal/{deal.pk}/live.json")
    assert response.status_code == 200, response.content
    return response.json()


def _draft(*, stock: int = 100, quota: int = 30) -> Deal:
    product = make_product(price=10_000, stock=stock, name="Rice cooker")
    now = timezone.now()
    return deal_create(
        product_id=product.pk, deal_price=9_000, deal_stock=quota, per_user_limit=1,
        starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1), publish=False,
    )  # fmt: skip


def test_live_json_counts_sales_and_rejections(operator_client, settings):
    # given: the redis pipeline writes orders in the request, so no worker is needed here
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=3, per_user_limit=1)
    first, second = UserFactory(), UserFactory()

    # when: two purchases succeed, one shopper asks again (limit), the third unit sells, then
    # a fourth shopper finds it sold out
    assert _buy(deal, first).status_code == 201
    assert _buy(deal, second).status_code == 201
    assert _buy(deal, first).status_code == 400  # DEAL_LIMIT_EXCEEDED
    assert _buy(deal, UserFactory()).status_code == 201
    assert _buy(deal, UserFactory()).status_code == 400  # DEAL_SOLD_OUT

    # then
    data = _live(operator_client, deal)
    assert (data["remaining"], data["remaining_source"], data["status"]) == (0, "redis", "sold_out")
    assert (data["units_sold"], data["orders_confirmed"], data["orders_failed"]) == (3, 3, 0)
    outcomes = data["redis"]["outcomes"]
    assert outcomes["accepted"] == 3
    assert outcomes["rejected"] == {
        "sold_out": 1, "limit": 1, "not_active": 0, "not_admitted": 0, "rate_limited": 0,
        "unavailable": 0, "other": 0,
    }  # fmt: skip
    rate = data["redis"]["rate"]
    assert len(rate["accepted"]) == settings.CONSOLE_RATE_WINDOW_SECONDS
    assert (sum(rate["accepted"]), sum(rate["rejected"])) == (3, 2)
    assert data["redis"]["backlog"] == 0 and data["redis"]["dead_letters"] == 0


def test_live_json_stays_cheap(operator_client, settings, django_assert_num_queries):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=50, per_user_limit=5)
    for _ in range(5):
        _buy(deal, UserFactory())
    operator_client.post(f"/admin/deals/deal/{deal.pk}/reconcile/")

    # session, user, deal + product, one aggregate over the deal's orders, last reconciliation;
    # the same however many orders the deal has
    with django_assert_num_queries(5):
        data = _live(operator_client, deal)

    assert data["units_sold"] == 5 and data["reconciliation"]["ok"] is True


def test_live_page_renders_the_numbers(operator_client, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=4)
    _buy(deal, UserFactory())

    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()

    assert 'id="live-remaining">3<' in page
    assert 'id="live-units-sold">1<' in page
    assert "deals/live.js" in page and "Reconcile now" in page and "Pause sales" in page


# --- the waiting room on the live page -------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The web server's clock, on a whole second and moved by the test: the room, the purchase
    and the snapshot all read it, so the per-second series land on known seconds."""
    now = [timezone.now().replace(microsecond=0)]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(seconds: float = 0.0) -> datetime:
        now[0] += timedelta(seconds=seconds)
        return now[0]

    return advance


def test_live_json_shows_the_waiting_room(operator_client, settings, clock):
    # given: a room admitting 2 shoppers/s, 60 s to buy; the sale started a second ago
    settings.ORDER_PIPELINE = "redis"
    settings.CONSOLE_RATE_WINDOW_SECONDS = 300
    start = clock()
    deal = room_deal(stock=10, rate=2, admit=60)
    a, b, c, d, e = (UserFactory() for _ in range(5))

    # when: four join at once (the second's quota admits a, the line is empty after), a second
    # later b and c are admitted, a buys with the admission; 60.5 s on b's and c's admissions
    # have lapsed, d (61.5 s in line) is admitted and e joins behind nobody but waits a second
    ticket_a = gate.room_join(deal_id=deal.pk, user_id=a.pk)
    for shopper in (b, c, d):
        assert gate.room_join(deal_id=deal.pk, user_id=shopper.pk).state == "waiting"
    clock(1)
    assert gate.room_ticket(deal_id=deal.pk, user_id=b.pk).state == "admitted"
    bought = bearer_client(a).post(
        "/orders", deal_line(deal), format="json", HTTP_ADMISSION=ticket_a.admission
    )
    assert bought.status_code == 201, bought.json()
    clock(60.5)
    assert gate.room_ticket(deal_id=deal.pk, user_id=d.pk).state == "admitted"
    assert gate.room_join(deal_id=deal.pk, user_id=e.pk).state == "waiting"
    data = _live(operator_client, deal)

    # then
    admitted = [0] * 300  # the window ends at start + 61 s
    admitted[299 - 61], admitted[299 - 60], admitted[299] = 1, 2, 1
    assert data["room"] == {
        "enabled": True,
        "shown": True,
        "rate": 2,
        "rate_automatic": False,
        "admission_s": 60,
        "overbooking": "1.00",
        "prequeue_s": 600,
        "figures": {
            "waiting": 1,
            "admitted_now": 1,
            "joins": 5,
            "admitted": 4,
            "lapsed": 2,
            "revoked": 0,
            "wait_p50_s": 1,
            "wait_p95_s": 120,
        },  # fmt: skip
        "admitted_per_s": admitted,
        "admitted_recent_per_s": 0.1,
        "recent_s": 10,
        "seed": None,
    }
    assert data["redis"]["rate"]["start"] == int(start.timestamp()) + 61 - 299
    assert "room" not in data["redis"]
    assert (data["remaining"], data["redis"]["outcomes"]["accepted"]) == (9, 1)


def test_an_automatic_rate_shows_the_rate_the_room_admits_at(operator_client, settings):
    settings.WAITING_ROOM_AUTO_RATE = 250
    deal = room_deal(rate=0)

    room = _live(operator_client, deal)["room"]

    assert (room["rate"], room["rate_automatic"], room["seed"]) == (250, True, None)
    assert room["figures"] == {
        "waiting": 0, "admitted_now": 0, "joins": 0, "admitted": 0, "lapsed": 0, "revoked": 0,
        "wait_p50_s": None, "wait_p95_s": None,
    }  # fmt: skip


def test_the_seed_is_published_once_the_deal_has_ended(operator_client, clock):
    deal = room_deal()
    shopper = UserFactory()
    gate.room_join(deal_id=deal.pk, user_id=shopper.pk)
    assert _live(operator_client, deal)["room"]["seed"] is None

    clock(3601)  # past ends_at
    room = _live(operator_client, deal)["room"]

    assert (room["seed"], room["shown"]) == (deal.room_seed, True)
    assert room["figures"]["joins"] == 1


def test_without_a_room_the_page_hides_its_panel(operator_client, settings):
    settings.ORDER_PIPELINE = "redis"
    deal = make_deal(deal_stock=4)
    _buy(deal, UserFactory())

    data = _live(operator_client, deal)
    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()

    assert (data["room"]["enabled"], data["room"]["shown"]) == (False, False)
    assert '<section id="live-room" hidden>' in page


def test_the_live_page_renders_the_room(operator_client, clock):
    deal = room_deal(rate=1)
    first, second = UserFactory(), UserFactory()
    gate.room_join(deal_id=deal.pk, user_id=first.pk)  # admitted at once
    gate.room_join(deal_id=deal.pk, user_id=second.pk)  # waits

    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()

    assert '<section id="live-room">' in page
    assert 'admits <span id="live-room-rate">1</span> shoppers/s' in page
    assert 'id="live-room-waiting">1<' in page
    assert 'id="live-room-admitted-now">1<' in page
    assert 'id="live-room-admitted-rate">0.1<' in page
    assert 'id="live-room-lapsed">0<' in page
    assert 'id="live-room-wait-p50">1<' in page and 'id="live-room-seed">-<' in page


@pytest.mark.parametrize("staff", [False, None])
def test_json_endpoints_need_staff(staff, settings):
    deal = make_deal()
    client = Client()
    if staff is not None:
        client.force_login(UserFactory(is_staff=staff))

    for suffix in ("live.json", "preflight.json"):
        response = client.get(f"/admin/deals/deal/{deal.pk}/{suffix}")
        expected = (401, "UNAUTHORIZED") if staff is None else (403, "FORBIDDEN")
        assert (response.status_code, response.json()["error"]) == expected
        assert set(response.json()) == {"error", "message", "details"}


def test_live_json_of_an_unknown_deal_is_a_404_body(operator_client):
    response = operator_client.get(
        "/admin/deals/deal/00000000-0000-0000-0000-000000000000/live.json"
    )
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")


# --- preflight and publishing ---------------------------------------------------------------


def _checks(client: Client, deal: Deal) -> dict:
    data = client.get(f"/admin/deals/deal/{deal.pk}/preflight.json").json()
    return {check["name"]: check["ok"] for check in data["checks"]}


def test_preflight_without_worker_or_beat_fails_those_checks(operator_client):
    deal = _draft(stock=10, quota=30)

    checks = _checks(operator_client, deal)

    assert checks == {
        "terms": True, "quota": False, "state": True, "room": True, "eviction": True,
        "scripts": True, "worker": False, "beat": False,
    }  # fmt: skip


def test_failing_preflight_needs_confirmation_to_publish(
    operator_client, operator, django_capture_on_commit_callbacks
):
    deal = _draft()
    url = f"/admin/deals/deal/{deal.pk}/preflight/"
    page = operator_client.get(url).content.decode()
    assert "Some checks fail" in page and 'name="confirm_preflight"' in page

    refused = operator_client.post(url, follow=True).content.decode()
    assert "tick the confirmation" in refused
    assert Deal.objects.get().published_at is None and Product.objects.get().stock == 100

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(url, {"confirm_preflight": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"/admin/deals/deal/{deal.pk}/live/"
    assert Deal.objects.get().published_at is not None and Product.objects.get().stock == 70
    assert gate.deal_state_loaded(deal.pk)
    assert list(StockMovement.objects.values_list("kind", "delta", "actor_id")) == [
        ("deal_carve", -30, operator.pk)
    ]


@pytest.mark.django_db(transaction=True)
def test_green_preflight_publishes_at_once(operator_client, celery_worker):

    # given: a worker consumes, and it ran beat's heartbeat task (beat itself is not needed)
    beat_heartbeat_task.delay()
    deadline = time.monotonic() + 10
    while beat_heartbeat_age() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    deal = _draft()
    assert all(_checks(operator_client, deal).values())

    # when: the publish action, no confirmation
    response = operator_client.post(
        "/admin/deals/deal/", {"action": "publish", "_selected_action": [str(deal.pk)]}, follow=True
    )

    # then
    assert "Published 1 deal(s)." in response.content.decode()
    assert Deal.objects.get().published_at is not None


def test_publish_action_with_failing_preflight_asks_first(operator_client):
    deal = _draft()
    form = {"action": "publish", "_selected_action": [str(deal.pk)]}

    asked = operator_client.post("/admin/deals/deal/", form)
    assert "Publish anyway" in asked.content.decode()
    assert Deal.objects.get().published_at is None

    operator_client.post("/admin/deals/deal/", form | {"confirm_preflight": "1"})
    assert Deal.objects.get().published_at is not None


def test_save_and_publish_opens_the_preflight(operator_client):
    product = make_product(price=10_000, stock=100)
    starts = timezone.localtime(timezone.now() - timedelta(minutes=1))
    ends = starts + timedelta(days=1)
    form = {
        "product": str(product.pk), "deal_price": 9_000, "deal_stock": 30, "per_user_limit": 2,
        "starts_at_0": starts.strftime("%Y-%m-%d"), "starts_at_1": starts.strftime("%H:%M:%S"),
        "ends_at_0": ends.strftime("%Y-%m-%d"), "ends_at_1": ends.strftime("%H:%M:%S"),
        "_publish": "1",
    }  # fmt: skip

    response = operator_client.post("/admin/deals/deal/add/", form)

    deal = Deal.objects.get()
    assert response["Location"] == f"/admin/deals/deal/{deal.pk}/preflight/"
    assert deal.published_at is None  # the draft is saved; publishing happens on the preflight


# --- actions on the live page --------------------------------------------------------------


def test_reconcile_now_repairs_and_reports(operator_client, operator):
    deal = make_deal(deal_stock=10)
    Deal.objects.filter(pk=deal.pk).update(remaining_stock=8)  # drift

    page = operator_client.post(
        f"/admin/deals/deal/{deal.pk}/reconcile/", follow=True
    ).content.decode()

    assert "repaired [{&#x27;db_remaining&#x27;: [8, 10]}]" in page
    assert Deal.objects.get().remaining_stock == 10
    assert _live(operator_client, deal)["reconciliation"]["repairs"] == [{"db_remaining": [8, 10]}]
    movement = StockMovement.objects.get()
    assert (movement.kind, movement.deal_delta, movement.actor_id) == (
        "reconcile_repair", 2, operator.pk
    )  # fmt: skip


def test_reconcile_is_get_proof(operator_client):
    deal = make_deal()
    assert operator_client.get(f"/admin/deals/deal/{deal.pk}/reconcile/").status_code == 405


def test_pause_resume_and_end_from_the_live_page(
    operator_client, operator, django_capture_on_commit_callbacks
):
    deal = make_deal(deal_stock=5)
    base = f"/admin/deals/deal/{deal.pk}/lifecycle"

    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"{base}/pause/")
    assert Deal.objects.get().status == "paused"
    assert _buy(deal, UserFactory()).json()["error"] == "DEAL_NOT_ACTIVE"
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"{base}/resume/")
    assert Deal.objects.get().status == "active"
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"{base}/end/", {"_confirmed": "yes", "reason": "supplier recall"})
    deal.refresh_from_db()
    assert (deal.status, deal.closed_at is not None) == ("ended", True)
    assert list(StockMovement.objects.values_list("kind", "delta", "actor")) == [
        ("deal_return", 5, operator.pk)
    ]


# --- dead letters ---------------------------------------------------------------------------


def _park(deal: Deal, user, *, settings) -> str:
    """A purchase the writer could not persist: accepted in Redis, then dead-lettered (its units
    go back to the deal), exactly as the stream writer does after too many failed deliveries."""
    settings.ORDER_PIPELINE = "redis_async"
    response = _buy(deal, user)
    assert response.status_code == 202
    order_id = response.json()["id"]
    reservation = gate.pending_snapshot(deal.pk)[order_id]
    gate.dead_letter_park(deal.pk, reservation, reason="IntegrityError: boom")
    return order_id


def test_dead_letter_replay_writes_the_order_and_takes_the_units(operator_client, settings):
    deal = make_deal(deal_stock=3)
    user = UserFactory()
    order_id = _park(deal, user, settings=settings)
    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()
    assert order_id in page and "IntegrityError: boom" in page
    assert _live(operator_client, deal)["remaining"] == 3  # units went back when parked

    operator_client.post(f"/admin/deals/deal/{deal.pk}/dead-letters/{order_id}/replay/")

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.user_id) == ("confirmed", user.pk)
    data = _live(operator_client, deal)
    assert (data["remaining"], data["db_remaining"], data["redis"]["dead_letters"]) == (2, 2, 0)
    assert list(StockMovement.objects.values_list("kind", "deal_delta")) == [
        ("dead_letter_replay", -1)
    ]


def test_dead_letter_replay_is_refused_when_no_units_are_left(operator_client, settings):
    deal = make_deal(deal_stock=1)
    order_id = _park(deal, UserFactory(), settings=settings)
    assert _buy(deal, UserFactory()).status_code == 202  # someone else took the last unit

    page = operator_client.post(
        f"/admin/deals/deal/{deal.pk}/dead-letters/{order_id}/replay/", follow=True
    ).content.decode()

    assert "CANNOT_REPLAY: Not enough units left" in page
    assert not Order.objects.filter(pk=order_id).exists()
    assert is_parked(deal.pk, order_id)  # still parked
    assert StockMovement.objects.count() == 0


def test_dead_letter_discard_leaves_a_visible_failed_order(operator_client, operator, settings):
    deal = make_deal(deal_stock=3)
    user = UserFactory()
    order_id = _park(deal, user, settings=settings)

    operator_client.post(
        f"/admin/deals/deal/{deal.pk}/dead-letters/{order_id}/discard/",
        {"_confirmed": "yes", "reason": "shopper asked"},
    )

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.failure_reason) == ("failed", "IntegrityError: boom")
    assert bearer_client(user).get(f"/orders/{order_id}").json()["status"] == "failed"
    data = _live(operator_client, deal)
    assert (data["remaining"], data["redis"]["dead_letters"], data["orders_failed"]) == (3, 0, 1)
    assert list(StockMovement.objects.values_list("kind", "delta", "deal_delta", "actor")) == [
        ("dead_letter_discard", 0, 0, operator.pk)
    ]
    again = operator_client.post(
        f"/admin/deals/deal/{deal.pk}/dead-letters/{order_id}/discard/",
        {"_confirmed": "yes", "reason": "shopper asked"},
        follow=True,
    )
    assert "DEAD_LETTER_NOT_FOUND" in again.content.decode()


@pytest.mark.single_gate_server
def test_preflight_refuses_an_evicting_redis(operator_client):
    deal = _draft(stock=50, quota=30)
    client = get_redis()
    client.config_set("maxmemory-policy", "volatile-lru")
    try:
        data = operator_client.get(f"/admin/deals/deal/{deal.pk}/preflight.json").json()
    finally:
        client.config_set("maxmemory-policy", "noeviction")

    eviction = next(check for check in data["checks"] if check["name"] == "eviction")
    assert (eviction["ok"], eviction["detail"]) == (
        False,
        "maxmemory-policy is volatile-lru; the deal gate's Redis needs maxmemory-policy "
        "noeviction (an evicted key loses accepted purchases)",
    )


def _pending(deal: Deal, user, *, age: timedelta) -> gate.Reservation:
    """A reservation accepted `age` ago that nothing has written (no writer was started)."""
    reservation = gate.Reservation.new(
        user_id=user.id, quantity=1, created_at=timezone.now() - age, request_hash="",
        idempotency_key=None, shipping=None,
    )  # fmt: skip
    result = gate.deal_reserve(
        deal_id=deal.id, product_id=deal.product_id, reservation=reservation, mode="sync"
    )
    assert result.outcome == gate.Outcome.OK and result.reservation is not None
    return result.reservation


def test_the_live_page_lists_reservations_pending_longer_than_the_threshold(
    operator_client, settings
):
    # given: one reservation stuck for 45 s, one parked but left pending for 60 s (a park
    # interrupted before its release), and one accepted just now
    settings.CONSOLE_PENDING_OVERDUE_SECONDS = 30
    deal = make_deal(deal_stock=5)
    stuck_user, parked_user = UserFactory(), UserFactory()
    stuck = _pending(deal, stuck_user, age=timedelta(seconds=45))
    parked = _pending(deal, parked_user, age=timedelta(seconds=60))
    park_interrupted(deal.id, parked, reason="WRITE_FAILED: test")
    fresh = _pending(deal, UserFactory(), age=timedelta(0))

    # when
    data = _live(operator_client, deal)
    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/live/").content.decode()

    # then: the oldest first, each aged against the snapshot's own clock
    now = datetime.fromisoformat(data["server_time"])

    def row(reservation: gate.Reservation, *, is_parked: bool) -> dict:
        return {
            "order_id": reservation.order_id,
            "user_id": reservation.user_id,
            "quantity": 1,
            "accepted_at": reservation.created_at,
            "accepted_at_text": console_time(reservation.accepted_at),
            "age_s": int((now - reservation.accepted_at).total_seconds()),
            "parked": is_parked,
        }

    assert data["redis"]["backlog"] == 3
    assert data["redis"]["overdue"] == {
        "threshold_s": 30,
        "count": 2,
        "list": [row(parked, is_parked=True), row(stuck, is_parked=False)],
    }
    assert 'id="live-overdue">2<' in page
    overdue_table = page.split('id="live-overdue-list"')[1].split("</table>")[0]
    assert stuck.order_id in overdue_table and parked.order_id in overdue_table
    assert str(stuck_user.id) in overdue_table
    assert console_time(stuck.accepted_at)["text"] in overdue_table  # type: ignore[index]
    assert fresh.order_id not in page


def test_pending_overdue_reads_ages_against_the_callers_clock(user):
    deal = make_deal(deal_stock=5)
    older = _pending(deal, user, age=timedelta(seconds=90))
    newer = _pending(deal, UserFactory(), age=timedelta(seconds=40))
    _pending(deal, UserFactory(), age=timedelta(seconds=10))
    now = older.accepted_at + timedelta(seconds=100)

    overdue = gate.deal_pending_overdue(deal.id, now=now, older_than_s=30, limit=1)

    assert overdue.count == 2  # 100 s and 50 s old; the third is 20 s old
    assert overdue.reservations == [
        gate.OverdueReservation(
            order_id=older.order_id, user_id=str(user.id), quantity=1,
            accepted_at=older.created_at, age_s=100, parked=False,
        )
    ]  # fmt: skip
    assert newer.order_id not in {r.order_id for r in overdue.reservations}  # past the limit


def test_the_deal_admin_counts_reservations_pending_too_long(operator_client, settings):
    settings.CONSOLE_PENDING_OVERDUE_SECONDS = 30
    deal = make_deal(deal_stock=5)
    _pending(deal, UserFactory(), age=timedelta(seconds=45))
    _pending(deal, UserFactory(), age=timedelta(0))

    page = operator_client.get(f"/admin/deals/deal/{deal.pk}/change/").content.decode()

    field = page.split("field-pending_overdue")[1].split("</div>\n</div>")[0]
    assert "Pending too long" in field
    assert '<div class="readonly">1 (accepted over 30 s ago, not written)</div>' in field
