"""The load-test lab's definitions and the deal-overload arithmetic, without running k6: every
scenario names a script, stacks and variants that exist; the data preparation makes a room deal
that has not started yet; the figures the deal-overload page marks targets with come out of a
run's numbers as defined there."""

import json
import uuid

import pytest
from django.core.management import call_command

from apps.catalog.models import Product
from apps.deals.models import Deal
from loadtests import overload_report
from loadtests.scenarios import SCENARIOS
from loadtests.stack import LOADTESTS


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_names_what_exists(name):
    sc = SCENARIOS[name]

    assert (LOADTESTS / sc.script).is_file()
    assert {v.stack for v in sc.variants} <= set(sc.stacks)
    assert {sc.before, sc.after} <= {v.name for v in sc.variants}
    assert sc.model in ("closed", "spike", "overload")


def test_deal_overload_compares_room_off_and_on_on_one_stack():
    sc = SCENARIOS["deal-overload"]

    assert [(v.name, v.k6_env["MODE"]) for v in sc.variants] == [
        ("room off", "direct"),
        ("room on", "room"),
    ]
    assert {v.stack for v in sc.variants} == {"redis_async"}
    assert sc.stacks["redis_async"].worker


@pytest.mark.django_db(transaction=True)
def test_prepare_makes_a_room_deal_that_starts_later_and_reads_its_admissions(tmp_path, capsys):
    spec, out = tmp_path / "spec.json", tmp_path / "out.json"
    room = {"room_enabled": True, "room_rate": 50, "room_prequeue_seconds": 3600}
    spec.write_text(json.dumps([{"name": "queue", "stock": 10, "starts_in": 3000, "room": room}]))

    call_command("loadtest_prepare", "deals", "--spec", str(spec), "--out", str(out))
    made = json.loads(out.read_text())["queue"]
    capsys.readouterr()
    call_command("loadtest_prepare", "room", "--deal", made["deal_id"], "--since", "1000",
                 "--until", "1009")  # fmt: skip

    deal = Deal.objects.get(pk=uuid.UUID(made["deal_id"]))
    assert (deal.room_enabled, deal.room_rate, deal.deal_stock) == (True, 50, 10)
    assert 2990 <= (deal.starts_at - deal.created_at).total_seconds() <= 3000
    assert Product.objects.get(pk=deal.product_id).stock == 10 + 1_000 - 10  # extra, carved
    read = json.loads(capsys.readouterr().out)
    assert (read["start"], read["admitted"]) == (1000, [0] * 10)
    assert read["figures"]["waiting"] == 0


# --- deal-overload's figures ----------------------------------------------------------------------


def test_admission_windows_skip_the_partial_first_second_and_the_last():
    # given: nothing, a partial first second, 23 s at the rate, the last (stock-bound) second
    admitted = [0, 0, 37, *([100] * 10), *([95] * 10), 100, 100, 100, 12, 0]

    windows = overload_report.admission_windows({"admitted": admitted}, rate=100)

    assert windows == [
        {"from_s": 1, "admitted": 1_000, "deviation": 0.0},
        {"from_s": 11, "admitted": 950, "deviation": pytest.approx(-0.05)},
    ]


def _run(model: str, *, accepted: int, stock: int, statuses: dict, unexpected: int, **o) -> dict:
    counters = dict.fromkeys(
        ("arrivals", "admitted_seen", "sold_out_waiters", "sold_out_at_join",
         "still_waiting_at_end", "poll_failures", "purchase_unanswered"), 0,
    )  # fmt: skip
    return {
        "model": model,
        "accepted": accepted,
        "seconds": 10,
        "deal": {"deal_stock": stock},
        "statuses": statuses,
        "unexpected": unexpected,
        "cpu_s": {"web": 1.0},
        "overload": counters | o,
    }


def test_goodput_runs_from_the_first_arrival_to_the_last_sale_and_waiters_are_judged():
    plan = {"capacity": 100.0}
    trends = {
        "first_arrival_at": {"min": 1_000_000},
        "accepted_sent_at": {"max": 1_009_000},
        "accepted_answered_at": {"max": 1_010_000},
        "purchase_duration": {"med": 5.0, "p(95)": 20.0, "p(99)": 40.0},
    }
    # given: 950 sold out in 10 s; a waiter polling every 5 s told 9.5 s after the last send
    on = _run(
        "room", accepted=950, stock=950, unexpected=0,
        statuses={"200": 5_000, "201": 3_000, "202": 950, "400": 50},
        sold_out_at_join=50, sold_out_waiters=2_000,
        sold_out_seen_at={"max": 1_018_500}, sold_out_deadline={"max": 1_008_500},
        **trends,
    )  # fmt: skip
    late = _run(
        "room", accepted=950, stock=950, unexpected=0, statuses={"202": 950},
        sold_out_seen_at={"max": 1_020_000}, sold_out_deadline={"max": 1_010_000}, **trends,
    )  # fmt: skip
    off = _run("direct", accepted=400, stock=950, unexpected=30,
               statuses={"202": 400, "0": 30}, **trends)  # fmt: skip

    got_on = overload_report.overload_figures(on, plan)
    got_late = overload_report.overload_figures(late, plan)
    got_off = overload_report.overload_figures(off, plan)

    assert (got_on["goodput"], got_on["goodput_share"], got_on["to_sold_out_s"]) == (95, 0.95, 10)
    assert (got_on["p99"], got_on["errors"], got_on["undesigned_share"]) == (40.0, 50, 0)
    assert (got_on["told_in_time"], got_on["told_lag_s"]) == (True, 9.5)
    assert got_late["told_in_time"] is False  # 11 s after the last send: over 2 x 5 s
    assert (got_off["goodput"], got_off["to_sold_out_s"], got_off["sold_out"]) == (40, None, False)
    assert (got_off["undesigned_share"], got_off["told_in_time"]) == (1.0, None)
    # shoppers who gave up bought the rest: sold out, though k6 saw fewer accepted answers
    sold_out = overload_report.overload_figures(off, plan, sold=950)
    assert (sold_out["sold_out"], sold_out["to_sold_out_s"], sold_out["goodput"]) == (True, 10, 40)
