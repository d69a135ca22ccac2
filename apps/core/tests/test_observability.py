"""The dashboard and the alert rules (deploy/grafana, deploy/prometheus) over metrics that exist:
every metric name they use is one the app exports, and the rules pass `promtool check rules` and
their unit tests (`promtool test rules`: each alert fires on synthetic series at its threshold
and not before). docs/observability.md describes them."""

import json
import re
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from apps.core.metrics import render_metrics
from scripts import debian_tools

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "flashdeals.json"
METRIC = re.compile(r"\bflashdeals_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported() -> set[str]:
    """The series names /metrics serves: every family the app registers (the business ones are
    listed even with no live deal), with the suffixes its type gives its samples."""
    names = set()
    for family in text_string_to_metric_families(render_metrics().decode()):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_metrics_the_dashboard_and_alerts_use_are_exported(db):
    names = exported()
    alerts = "\n".join(
        line for line in (PROMETHEUS / "alerts.yml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    )  # fmt: skip

    used_by_dashboard = {m for expr in dashboard_exprs() for m in METRIC.findall(expr)}
    used_by_alerts = set(METRIC.findall(alerts))

    assert used_by_dashboard - names == set()
    assert used_by_alerts - names == set()
    # the figures the operator asked for are all on the dashboard
    assert {
        "flashdeals_deal_purchases_accepted_total",
        "flashdeals_deal_purchases_rejected_total",
        "flashdeals_http_request_duration_seconds_bucket",
        "flashdeals_deal_write_backlog",
        "flashdeals_order_confirmation_seconds_bucket",
        "flashdeals_order_confirmation_seconds_count",
        "flashdeals_deal_dead_letters",
        "flashdeals_deal_room_waiting",
        "flashdeals_beat_heartbeat_age_seconds",
        "flashdeals_gate_up",
        "flashdeals_reconciliation_drift_deals",
    } <= used_by_dashboard
    # and what should wake someone has a rule
    assert {
        "flashdeals_beat_heartbeat_age_seconds",
        "flashdeals_gate_up",
        "flashdeals_reconciliation_drift_deals",
        "flashdeals_deal_dead_letters",
        "flashdeals_deal_write_backlog",
    } <= used_by_alerts


def test_a_misspelt_metric_is_caught(db):
    """The check above can fail: a name the app does not export is reported."""
    assert {"flashdeals_deal_write_backlog_seconds"} - exported() == {
        "flashdeals_deal_write_backlog_seconds"
    }


def test_every_dashboard_panel_has_a_unique_id_and_uses_the_datasource_variable():
    panels = json.loads(DASHBOARD.read_text())["panels"]

    assert len({p["id"] for p in panels}) == len(panels)
    assert {p["datasource"]["uid"] for p in panels} == {"${datasource}"}


def test_the_alert_rules_are_valid_and_fire_at_their_thresholds():
    promtool = debian_tools.require("promtool")

    checked = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS, capture_output=True, text=True,
    )  # fmt: skip
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS, capture_output=True, text=True,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test():
    rules = set(re.findall(r"^\s+- alert: (\w+)$", (PROMETHEUS / "alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "alerts.test.yml").read_text()))

    assert len(rules) == 10
    assert rules == tested
