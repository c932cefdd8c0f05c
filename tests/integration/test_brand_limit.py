"""The brand cardinality limit on a real worker: once ``validation.max_brands`` brands
have a state, mentions of further brands are dead-lettered as ``too_many_brands`` (with
the position of their original bytes), counted, and never get a state, while the brands
admitted before keep being detected on."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from streams.app import REASON_HEADER
from streams.kafka_util import EmbeddedBroker

from .conftest import TEST_CONFIG
from .support import (
    Deployment,
    aligned_start,
    calm,
    encode,
    event_time,
    kill_worker,
    latest_states,
    mention_events,
    processed,
    produce,
    read_all,
)

pytestmark = pytest.mark.integration

MAX_BRANDS = 3


def test_brands_beyond_the_limit_are_dead_lettered(broker: EmbeddedBroker, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    admitted = [f"limit-{i}-{tag}" for i in range(MAX_BRANDS)]
    refused = [f"limit-late-{i}-{tag}" for i in range(2)]
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["validation"] = {"max_brands": MAX_BRANDS}
    config_file = tmp_path / "brand-limit.yaml"
    config_file.write_text(yaml.safe_dump(config))
    deployment = Deployment.fresh(broker.address, tmp_path, config_file, "limit")
    settings = deployment.settings
    assert settings.limits.max_brands == MAX_BRANDS

    start = aligned_start(hours_ago=1)
    first = sorted(
        (e for b in admitted for e in mention_events(b, start, [calm(2)])), key=event_time
    )
    # Later: the admitted brands go on, and two new brands arrive among them.
    later_start = start + 2 * settings.thresholds.defaults.bucket_seconds
    later = sorted(
        (e for b in admitted + refused for e in mention_events(b, later_start, [calm(2)])),
        key=event_time,
    )
    later = [{**e, "id": f"{e['id']}-later"} for e in later]
    refused_events = [e for e in later if e["brand"] in refused]
    admitted_later = len(later) - len(refused_events)

    worker = deployment.start_worker("worker")
    producer = KafkaProducer(bootstrap_servers=deployment.broker_list, acks="all", linger_ms=20)
    try:
        produce(
            producer, settings.mentions_topic, ((e["brand"].encode(), encode(e)) for e in first)
        )
        # Every brand of the first part has a state before any new brand is seen.
        worker.wait(
            "the admitted brands' mentions", lambda: processed(worker) >= len(first), timeout=180
        )
        produce(
            producer, settings.mentions_topic, ((e["brand"].encode(), encode(e)) for e in later)
        )
        worker.wait(
            "every later mention", lambda: processed(worker) >= len(first) + len(later), timeout=120
        )
        metrics = worker.metrics()
        assert worker.alive(), worker.describe()
    finally:
        producer.close(10)
        code = kill_worker(worker, signal.SIGTERM)
    assert code == 0, worker.describe()

    counted = "crisis_radar_mentions_processed_total"
    assert metrics.total(counted, stage="ingest", outcome="accepted") == len(first) + len(later)
    assert metrics.total(counted, stage="detect", outcome="applied") == len(first) + admitted_later
    assert metrics.total(counted, stage="detect", outcome="rejected") == len(refused_events)
    assert metrics.total("crisis_radar_dead_letters_total", reason="too_many_brands") == len(
        refused_events
    )

    letters = read_all(deployment.broker_list, settings.dead_letter_topic)
    assert len(letters) == len(refused_events)
    assert sorted(json.loads(r.value)["id"] for r in letters) == sorted(
        e["id"] for e in refused_events
    )
    for record in letters:
        headers = dict(record.headers)
        assert headers[REASON_HEADER] == b"too_many_brands"
        assert f"validation.max_brands) is {MAX_BRANDS}".encode() in headers["crisis-radar-detail"]
        source = headers["crisis-radar-source"].decode()
        assert source.startswith(f"{settings.mentions_topic}/"), source
        assert json.loads(record.value)["brand"] in refused

    # The dead letter names where the original event is: read it back from there.
    by_position = {
        f"{settings.mentions_topic}/{r.partition}/{r.offset}": r.value
        for r in read_all(deployment.broker_list, settings.mentions_topic)
    }
    for record in letters:
        original = json.loads(by_position[dict(record.headers)["crisis-radar-source"].decode()])
        assert original["id"] == json.loads(record.value)["id"]

    states = latest_states(read_all(deployment.broker_list, deployment.changelog_topic))
    assert set(states) == set(admitted)
    assert {s["mentions"] for s in states.values()} == {(len(first) + admitted_later) // MAX_BRANDS}
