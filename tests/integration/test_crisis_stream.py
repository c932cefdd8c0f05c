"""A crisis brand and a calm brand streamed through the real worker: the crisis brand gets
virality and negativity alerts (valid CloudEvents, valid against the v1 JSON Schema, one
stable alert id per episode), the calm brand gets none, and /metrics tells the story."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from kafka import KafkaProducer

from detector.core import alert_id

from .support import (
    BUCKET_SECONDS,
    CALM_PER_BUCKET,
    Metrics,
    TopicLog,
    Worker,
    alert_events,
    aligned_start,
    calm,
    encode,
    event_time,
    first,
    iso_to_epoch,
    mention_events,
    produce,
    spike,
)

pytestmark = pytest.mark.integration

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "alert-v1.schema.json"
KINDS = ("virality", "negativity")
CALM_BEFORE, SPIKE_BUCKETS, CALM_AFTER = 15, 3, 12


@dataclass(frozen=True)
class CrisisRun:
    crisis_brand: str
    calm_brand: str
    start: float
    spike_start: float  # event time of the first spike bucket
    sent: dict[str, int]
    before: Metrics

    @property
    def total(self) -> int:
        return sum(self.sent.values())


@pytest.fixture(scope="module")
def run(worker: Worker, producer: KafkaProducer) -> CrisisRun:
    """Produce both brands' streams, interleaved in event time, as fast as possible."""
    suffix = uuid.uuid4().hex[:8]
    crisis_brand, calm_brand = f"crisis-{suffix}", f"calm-{suffix}"
    start = aligned_start(hours_ago=3)
    crisis = mention_events(
        crisis_brand, start, [calm(CALM_BEFORE), spike(SPIKE_BUCKETS), calm(CALM_AFTER)]
    )
    steady = mention_events(calm_brand, start, [calm(CALM_BEFORE + SPIKE_BUCKETS + CALM_AFTER)])
    before = worker.metrics()
    stream = sorted(crisis + steady, key=event_time)
    produce(
        producer,
        worker.settings.mentions_topic,
        ((e["brand"].encode(), encode(e)) for e in stream),
    )
    return CrisisRun(
        crisis_brand=crisis_brand,
        calm_brand=calm_brand,
        start=start,
        spike_start=start + CALM_BEFORE * BUCKET_SECONDS,
        sent={crisis_brand: len(crisis), calm_brand: len(steady)},
        before=before,
    )


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def wait_for_alerts(
    worker: Worker, alert_log: TopicLog, brand: str, wanted: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Wait until ``brand`` has an alert event of every (kind, phase) in ``wanted``."""

    def seen() -> list[dict[str, Any]] | None:
        events = alert_events(alert_log, brand)
        return events if all(first(events, k, p) for k, p in wanted) else None

    return worker.wait(f"alerts {wanted} for {brand}", seen, timeout=90)


def test_crisis_brand_gets_virality_and_negativity_alerts(
    run: CrisisRun,
    worker: Worker,
    alert_log: TopicLog,
    schema_validator: Draft202012Validator,
) -> None:
    brand = run.crisis_brand
    events = wait_for_alerts(worker, alert_log, brand, [(k, "opened") for k in KINDS])

    for event in events:
        errors = sorted(schema_validator.iter_errors(event), key=lambda e: list(e.path))
        assert not errors, "alert event violates alert-v1.schema.json:\n" + "\n".join(
            f"  {list(e.path)}: {e.message}" for e in errors
        )
        assert event["specversion"] == "1.0"
        assert event["source"] == worker.settings.alert_source
        assert event["subject"] == brand
        data = event["data"]
        assert data["brand"] == brand
        assert data["kind"] in event["type"] and data["phase"] in event["type"]
        assert event["id"] == f"{data['alert_id']}/{data['sequence']}-{data['phase']}"

    for kind in KINDS:
        opened = first(events, kind, "opened")
        assert opened is not None
        data = opened["data"]
        assert data["sequence"] == 0
        assert data["samples"], f"opened {kind} alert carries no sample mentions: {data}"
        assert all(brand in sample["text"] for sample in data["samples"])
        # The episode opened in one of the spike buckets, judged while it was filling.
        opened_at = iso_to_epoch(data["opened_at"])
        assert run.spike_start <= opened_at < run.spike_start + SPIKE_BUCKETS * BUCKET_SECONDS
        assert iso_to_epoch(data["window"]["start"]) == opened_at
        assert data["window"]["seconds"] == BUCKET_SECONDS
        assert data["alert_id"] == alert_id(brand, kind, opened_at)
        assert data["thresholds"]["warmup_buckets"] == 5  # the test config is in force
        assert data["observed"]["count"] >= data["thresholds"][f"{kind}_min_count"]
    virality = first(events, "virality", "opened")
    assert virality is not None
    observed, expected = virality["data"]["observed"], virality["data"]["expected"]
    assert observed["volume"] >= 3 * expected["volume"] > 0  # reach-weighted volume
    assert observed["count"] > expected["count"] > 0
    assert virality["data"]["statistic"]["name"] == "z_volume"
    assert virality["data"]["statistic"]["value"] >= virality["data"]["statistic"]["threshold"]
    negativity = first(events, "negativity", "opened")
    assert negativity is not None
    assert negativity["data"]["observed"]["negative_share"] >= 0.4
    assert negativity["data"]["expected"]["negative_share"] < 0.2


def test_alert_episode_keeps_its_id_until_resolved(
    run: CrisisRun,
    worker: Worker,
    alert_log: TopicLog,
    schema_validator: Draft202012Validator,
) -> None:
    brand = run.crisis_brand
    events = wait_for_alerts(worker, alert_log, brand, [(k, "resolved") for k in KINDS])
    for kind in KINDS:
        episode = [e for e in events if e["data"]["kind"] == kind]
        phases = [e["data"]["phase"] for e in episode]
        assert phases[0] == "opened" and phases[-1] == "resolved", phases
        assert set(phases[1:-1]) <= {"escalated"}, phases
        assert {e["data"]["alert_id"] for e in episode} == {episode[0]["data"]["alert_id"]}
        assert [e["data"]["sequence"] for e in episode] == list(range(len(episode)))
        assert len({(e["source"], e["id"]) for e in episode}) == len(episode)
        assert {e["data"]["opened_at"] for e in episode} == {episode[0]["data"]["opened_at"]}
        times = [iso_to_epoch(e["time"]) for e in episode]
        assert times == sorted(times)
        for event in episode:
            assert not list(schema_validator.iter_errors(event)), event


def test_calm_brand_gets_no_alert(run: CrisisRun, worker: Worker, alert_log: TopicLog) -> None:
    worker.wait_processed(run.before, run.total)
    # The crisis brand's last alerts come from the end of the stream: once they are on
    # the topic, everything before them has been judged.
    wait_for_alerts(worker, alert_log, run.crisis_brand, [(k, "resolved") for k in KINDS])
    alert_log.read_to_end()

    assert alert_events(alert_log, run.calm_brand) == []
    after = worker.metrics()
    brand = run.calm_brand
    # It was judged (out of warm-up), and never alerted.
    assert after.get("crisis_radar_brand_warming_up", brand=brand) == 0
    assert after.total("crisis_radar_alerts_emitted_total", brand=brand) == 0
    for kind in KINDS:
        assert after.get("crisis_radar_alert_open", brand=brand, kind=kind) == 0


def test_metrics_over_http(run: CrisisRun, worker: Worker, alert_log: TopicLog) -> None:
    worker.wait_processed(run.before, run.total)
    wait_for_alerts(worker, alert_log, run.crisis_brand, [(k, "resolved") for k in KINDS])
    before, after = run.before, worker.metrics()

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    processed = "crisis_radar_mentions_processed_total"
    assert delta(processed, stage="ingest", outcome="accepted") == run.total
    assert delta(processed, stage="ingest", outcome="rejected") == 0
    assert delta(processed, stage="detect", outcome="applied") == run.total
    assert delta(processed, stage="detect", outcome="late") == 0
    assert delta(processed, stage="detect", outcome="duplicate") == 0

    brand = run.crisis_brand
    for kind in KINDS:
        assert (
            after.total("crisis_radar_alerts_emitted_total", brand=brand, kind=kind, phase="opened")
            >= 1
        )
        assert (
            after.total(
                "crisis_radar_alerts_emitted_total", brand=brand, kind=kind, phase="resolved"
            )
            >= 1
        )
        assert after.get("crisis_radar_alert_open", brand=brand, kind=kind) == 0

    baseline = after.get("crisis_radar_brand_baseline_mentions", brand=brand)
    assert baseline is not None and 15 <= baseline <= 60, baseline
    assert abs(baseline - CALM_PER_BUCKET) < 10, baseline  # the spike was kept out of it
    assert after.get("crisis_radar_brand_warming_up", brand=brand) == 0
    share = after.get("crisis_radar_brand_baseline_negative_share_ratio", brand=brand)
    # The calm stream is 10 % negative texts: the learned share approaches that from below.
    assert share is not None and 0.025 <= share <= 0.1 + 1e-9, share

    # Every rejection reason is exported, even at zero.
    reasons = after.label_values("crisis_radar_dead_letters_total", "reason")
    assert {"invalid_json", "invalid_utf8", "bad_timestamp", "missing_field"} <= reasons
