"""deploy/monitoring: the Prometheus rules parse, and every metric and label the rules and the
Grafana dashboard use is one the worker, webhook, evaluator or console exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from dunning.console.metrics import ConsoleMetrics
from dunning.intents import Channel
from dunning.producers.metrics import EvaluatorMetrics
from dunning.receipts.metrics import WebhookMetrics
from dunning.workers.metrics.prometheus import WorkerMetrics

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}
_METRIC = re.compile(r"\b(dunning_[a-z0-9_]+)(\{[^}]*\})?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exported() -> dict[str, set[str]]:
    """Every series name the code exports, with its label names."""
    names: dict[str, set[str]] = {}
    for owner in (
        WorkerMetrics(Channel.SMS),
        WebhookMetrics(),
        EvaluatorMetrics(),
        ConsoleMetrics(),
    ):
        for value in vars(owner).values():
            if not isinstance(value, MetricWrapperBase):
                continue
            labels = set(value._labelnames)
            for suffix in _SUFFIXES[value._type]:
                names[value._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def check_expression(expr: str, known: dict[str, set[str]]) -> list[str]:
    """What in ``expr`` names a metric or label the code does not export."""
    problems = []
    used_labels: set[str] = set()
    found = _METRIC.findall(expr)
    if not found:
        problems.append(f"no dunning metric in {expr!r}")
    for name, matchers in found:
        if name not in known:
            problems.append(f"unknown metric {name}")
            continue
        used_labels |= known[name]
        for label in _MATCHER.findall(matchers or ""):
            if label not in known[name]:
                problems.append(f"{name} has no label {label}")
    for grouping in _GROUPING.findall(expr):
        for label in (part.strip() for part in grouping.split(",")):
            if label and label not in used_labels:
                problems.append(f"grouping by {label}, which no metric of {expr!r} has")
    return problems


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "prometheus-rules.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_rules_file_parses_into_named_alerts_with_severity_and_summary() -> None:
    found = rules()
    assert len(found) >= 10
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names))
    for rule in found:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert isinstance(rule["expr"], str), rule["alert"]


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_uses_metrics_the_code_exports(rule: dict[str, Any]) -> None:
    assert check_expression(rule["expr"], exported()) == []


@pytest.mark.parametrize("expr", dashboard_expressions())
def test_every_dashboard_panel_uses_metrics_the_code_exports(expr: str) -> None:
    assert check_expression(expr, exported()) == []


def test_the_check_catches_a_renamed_metric_or_label() -> None:
    known = exported()
    assert check_expression("rate(dunning_messages_sent_total[5m])", known) == [
        "unknown metric dunning_messages_sent_total"
    ]
    assert check_expression('dunning_dlq_depth{queue="x"}', known) == [
        "dunning_dlq_depth has no label queue"
    ]
    assert check_expression("sum by (route) (dunning_dlq_depth)", known) != []


def test_each_component_has_rules() -> None:
    text = " ".join(rule["expr"] for rule in rules())
    for prefix in ("dunning_worker_", "dunning_webhook_", "dunning_evaluator_", "dunning_console_"):
        assert prefix in text, prefix


def test_the_webhook_serves_its_counts_at_metrics(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from dunning.ledger import Ledger
    from dunning.receipts.app import create_app
    from dunning.settings import Settings

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    config = Path(__file__).resolve().parents[2] / "config"
    try:
        app = create_app(Settings(sandbox=True, config_dir=config), ledger)
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            scraped = client.get("/metrics")
    finally:
        ledger.close()
    assert scraped.status_code == 200
    assert 'dunning_webhook_requests_total{route="/healthz",status="200"} 1.0' in scraped.text


def test_the_evaluator_counts_each_run() -> None:
    from datetime import date

    from dunning.producers.run import RunReport

    metrics = EvaluatorMetrics()
    report = RunReport(as_of=date(2026, 11, 28), dry_run=False, published=7)
    report.summary.accounts = 9
    metrics.observe(report)
    metrics.observe(report)
    value = metrics.registry.get_sample_value
    assert value("dunning_evaluator_runs_total") == 2
    assert value("dunning_evaluator_intents_published_total") == 14
    assert value("dunning_evaluator_accounts_total") == 18
    assert (value("dunning_evaluator_last_run_timestamp_seconds") or 0) > 0
