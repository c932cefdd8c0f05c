"""The shipped Grafana dashboard and Prometheus rules query only metrics the worker really
exports (or that Prometheus itself adds to every scrape, like ``up``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from config.settings import MetricsSettings
from streams.metrics import WorkerMetrics

CONFIG = Path(__file__).resolve().parents[2] / "config"
DASHBOARDS = sorted((CONFIG / "grafana" / "dashboards").glob("*.json"))
RULES = CONFIG / "prometheus" / "alerts.yml"

# Series Prometheus adds to every scrape target itself.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}

# PromQL words that are not metric names: operators, modifiers, aggregations.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "inf", "nan",
}  # fmt: skip
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
MATCHERS = re.compile(r"\{[^}]*\}")
RANGES = re.compile(r"\[[^\]]*\]")
# Numbers and durations (5m, 1h30m, 1e-3).
NUMBERS = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?:[a-z]+\d*)*")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported_series() -> set[str]:
    """Every sample name a worker's registry can expose."""
    registry = CollectorRegistry()
    WorkerMetrics(registry, MetricsSettings())
    names: set[str] = set()
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function names left out)."""
    text = STRINGS.sub('""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = MATCHERS.sub(" ", text)
    text = RANGES.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = NUMBERS.sub(" ", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue  # an operator, or a function or aggregation call
        names.add(word)
    return names


def walk_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str | dict):
                query = value if isinstance(value, str) else value.get("query")
                if isinstance(query, str):
                    yield from label_values_metric(query)
            else:
                yield from walk_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_exprs(item)


def label_values_metric(query: str) -> Iterator[str]:
    """The metric selector of a Grafana ``label_values(METRIC, LABEL)`` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
    if match:
        yield match.group(1)


def dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (path.name, expr)
        for path in DASHBOARDS
        for expr in walk_exprs(json.loads(path.read_text()))
    ]


def rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [
        (rule.get("alert") or rule.get("record"), rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def test_the_metric_name_extraction_leaves_out_functions_labels_and_variables() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{brand=~"$brand"}'
        "[$__rate_interval]))) > 1e-3"
        " and on (brand) time() - max without (x) (b_total offset 1h30m)"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total"}


def test_the_worker_exports_the_catalogued_metrics() -> None:
    names = exported_series()
    for name in (
        "crisis_radar_mentions_processed_total",
        "crisis_radar_dead_letters_total",
        "crisis_radar_event_to_decision_seconds_bucket",
        "crisis_radar_ingest_to_alert_seconds_bucket",
        "crisis_radar_consumer_lag_records",
        "crisis_radar_worker_up",
        "crisis_radar_worker_info",
        "crisis_radar_last_event_timestamp_seconds",
        "crisis_radar_alert_open",
    ):
        assert name in names


def test_there_is_a_dashboard_with_queries() -> None:
    assert DASHBOARDS
    assert len(dashboard_exprs()) >= 10


@pytest.mark.parametrize(("where", "expr"), dashboard_exprs() + rule_exprs())
def test_every_query_names_an_exported_metric(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - exported_series() - PROMETHEUS_SERIES
    assert not unknown, f"{where}: {expr!r} queries metrics the worker does not export: {unknown}"


def test_every_panel_has_a_unique_id_and_a_position() -> None:
    for path in DASHBOARDS:
        panels = json.loads(path.read_text())["panels"]
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels:
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Grafana's variables replaced by plain values, each dashboard query must be valid PromQL
    (checked by promtool as the expression of a recording rule)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def grafana_to_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$brand", ".*")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_latency_and_last_event_metrics_observe_wall_clock_against_event_time() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, MetricsSettings(max_brand_labels=1))
    metrics.observe_judged("acme", event_time=1000.0, now=1003.0)
    metrics.observe_judged("acme", event_time=990.0, now=1004.0)  # late: newest stays 1000
    metrics.observe_judged("beta", event_time=1010.0, now=1000.0)  # ahead of the clock: 0 s
    metrics.observe_alert_sent(ingested_at=999.5, now=1000.0)
    metrics.observe_alert_sent(ingested_at=None, now=1000.0)  # no ingest time: not observed
    name = "crisis_radar_event_to_decision_seconds"
    assert sample(registry, f"{name}_count") == 3
    assert sample(registry, f"{name}_sum") == 3.0 + 14.0 + 0.0
    assert sample(registry, f"{name}_bucket", le="2.5") == 1
    assert sample(registry, "crisis_radar_ingest_to_alert_seconds_count") == 1
    assert sample(registry, "crisis_radar_ingest_to_alert_seconds_sum") == 0.5
    assert sample(registry, "crisis_radar_last_event_timestamp_seconds", brand="acme") == 1000.0
    # Brand labels stay bounded: the second brand is folded into "other".
    assert sample(registry, "crisis_radar_last_event_timestamp_seconds", brand="other") == 1010.0


def test_worker_health_and_consumer_lag() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, MetricsSettings())
    assert sample(registry, "crisis_radar_worker_up") == 1
    info = [
        s for f in registry.collect() for s in f.samples if s.name == "crisis_radar_worker_info"
    ]
    assert len(info) == 1 and info[0].value == 1
    assert set(info[0].labels) == {"version", "detector_version"}
    assert sample(registry, "crisis_radar_consumer_lag_records", topic="m", partition="0") is None
    metrics.consumer_lag.source = lambda: {("mentions", 0): 12, ("mentions", 1): -3}
    assert sample(registry, "crisis_radar_consumer_lag_records", topic="mentions", partition="0")
    assert (
        sample(registry, "crisis_radar_consumer_lag_records", topic="mentions", partition="1") == 0
    )

    def broken() -> dict[tuple[str, int], int]:
        raise RuntimeError("consumer not started")

    metrics.consumer_lag.source = broken
    body, _ = metrics.exposition()  # a scrape never fails on the lag
    assert b"crisis_radar_worker_up 1.0" in body
