"""Rebalance: two workers share the partitions; one is stopped (SIGTERM) while the stream
flows, then started again. Its partitions move to the survivor and back, each time with
the brands' state recovered from the table's changelog.

Checked as in the crash test: every alert event the offline replay emits is delivered,
repeats are exact, every mention is counted once in its brand's state, and baselines
equal the offline replay's. On top: both workers really had partitions (each applied
mentions before the stop and after the restart), and no brand's state was split, i.e.
every brand's state was only ever written to one changelog partition.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.kafka_util import EmbeddedBroker

from .conftest import TEST_CONFIG
from .support import (
    Delivery,
    Deployment,
    Metrics,
    Quiet,
    TopicLog,
    Worker,
    aligned_start,
    assert_outcome,
    calm,
    decode_events,
    encode,
    event_time,
    kill_worker,
    latest_states,
    mention_events,
    offline_replay,
    own_broker,
    produce,
    read_all,
    skipped_mentions,
    spike,
    state_partitions,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKETS = 36
PLANS = {
    "first": [calm(8), spike(3), calm(BUCKETS - 11)],
    "second": [calm(16), spike(3), calm(BUCKETS - 19)],
    "third": [calm(24), spike(3), calm(BUCKETS - 27)],
    "calm-a": [calm(BUCKETS)],
    "calm-b": [calm(BUCKETS)],
    "calm-c": [calm(BUCKETS)],
    "calm-d": [calm(BUCKETS)],
    "calm-e": [calm(BUCKETS)],
}
TIMEOUT = 240.0
QUIET = 15.0  # seconds without a mention handled: the workers are done


def input_partitions(worker: Worker, topic: str) -> set[str]:
    """The partitions of ``topic`` the worker is assigned and has fetched from."""
    return {
        dict(labels)["partition"]
        for name, labels in worker.metrics().samples
        if name == "crisis_radar_consumer_lag_records" and ("topic", topic) in labels
    }


def applied(worker: Worker) -> float:
    try:
        metrics = worker.metrics()
    except (OSError, ValueError):
        return 0.0
    return metrics.total("crisis_radar_mentions_processed_total", stage="detect", outcome="applied")


def handled(worker: Worker) -> float:
    try:
        metrics = worker.metrics()
    except (OSError, ValueError):
        return 0.0
    return metrics.total("crisis_radar_mentions_processed_total", stage="detect")


def judged_brands(metrics: Metrics) -> set[str]:
    return metrics.label_values("crisis_radar_last_event_timestamp_seconds", "brand")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with own_broker(tmp_path / "broker.log") as embedded:
        yield embedded


def test_stop_and_restart_one_of_two_workers(broker: EmbeddedBroker, tmp_path: Path) -> None:
    started = time.monotonic()
    deployment = Deployment.fresh(broker.address, tmp_path, TEST_CONFIG, "rebalance")
    settings = deployment.settings
    suffix = deployment.app_id[-8:]
    start = aligned_start(hours_ago=2)
    events = sorted(
        (
            e
            for name, plan in PLANS.items()
            for e in mention_events(f"{name}-{suffix}", start, plan)
        ),
        key=event_time,
    )
    records = [(e["brand"].encode(), encode(e)) for e in events]
    sent: dict[str, int] = {}
    for e in events:
        sent[e["brand"]] = sent.get(e["brand"], 0) + 1
    expected, reference_states = offline_replay([v for _, v in records], settings)
    expected_ids = {e["id"] for e in expected}
    third = len(records) // 3
    chunks = [records[:third], records[third : 2 * third], records[2 * third :]]

    producer = KafkaProducer(bootstrap_servers=deployment.broker_list, acks="all", linger_ms=5)
    alert_log = TopicLog(deployment.broker_list, settings.alerts_topic)
    changelog = TopicLog(deployment.broker_list, deployment.changelog_topic)
    workers: list[Worker] = []
    figures: dict[str, Any] = {}
    try:
        # 1. Two workers share the partitions.
        one, two = deployment.start_worker("one"), deployment.start_worker("two")
        workers += [one, two]
        produce(producer, settings.mentions_topic, chunks[0])
        t0 = time.monotonic()
        one.wait("worker one to apply mentions", lambda: applied(one) > 0, TIMEOUT)
        two.wait("worker two to apply mentions", lambda: applied(two) > 0, TIMEOUT)
        one.wait(
            "the first third applied",
            lambda: applied(one) + applied(two) >= len(chunks[0]),
            TIMEOUT,
        )
        figures["both working after"] = time.monotonic() - t0
        owned_by_two = judged_brands(two.metrics())
        owned_by_one = judged_brands(one.metrics())
        assert owned_by_one and owned_by_two
        end_of_first = max(event_time(json.loads(v)) for _, v in chunks[0])

        # 2. Worker two stops while the second third arrives; one takes its brands over.
        # Half of the second third is sent before the stop, half once worker two has
        # exited: a worker that fast could otherwise finish all of it before the stop
        # lands, and worker one would have none of two's brands to take over.
        half = len(chunks[1]) // 2
        produce(producer, settings.mentions_topic, chunks[1][:half])
        t1 = time.monotonic()
        code = kill_worker(two, signal.SIGTERM)
        figures["stop took"] = time.monotonic() - t1
        assert code == 0, two.describe()
        after_stop = {key.decode() for key, _ in chunks[1][half:]}
        assert owned_by_two <= after_stop, "no mention of worker two's brands after the stop"
        produce(producer, settings.mentions_topic, chunks[1][half:])

        def one_took_over() -> bool:
            metrics = one.metrics()
            return all(
                (metrics.get("crisis_radar_last_event_timestamp_seconds", brand=b) or 0)
                > end_of_first
                for b in owned_by_two
            )

        one.wait("worker one to judge worker two's brands", one_took_over, TIMEOUT)
        figures["takeover after"] = time.monotonic() - t1

        # 3. Worker two starts again and gets partitions back; the last third arrives.
        again = deployment.start_worker("two-again")
        workers.append(again)
        t2 = time.monotonic()
        # The last third only once the restarted worker has input partitions: worker one
        # could otherwise handle all of it before the rebalance ends.
        again.wait(
            "the restarted worker to have input partitions",
            lambda: input_partitions(again, settings.mentions_topic),
            TIMEOUT,
        )
        produce(producer, settings.mentions_topic, chunks[2])
        again.wait("the restarted worker to apply mentions", lambda: applied(again) > 0, TIMEOUT)
        figures["restarted worker applying after"] = time.monotonic() - t2

        quiet = Quiet()

        def finished() -> bool:
            alert_log.poll()
            changelog.poll()
            seen = {e["id"] for e in decode_events(alert_log.records)}
            states = latest_states(changelog.records)
            counted = {b: states.get(b, {}).get("mentions") for b in sent}
            if expected_ids <= seen and counted == sent:
                return True
            # Or both have handled all they were handed: nothing moved for QUIET
            # seconds (the outcome check then says what is missing).
            return quiet.for_seconds(handled(one) + handled(again)) >= QUIET

        one.wait("the workers to finish the stream", finished, TIMEOUT)
        figures["all done after restart"] = time.monotonic() - t2
        assert judged_brands(again.metrics()), "the restarted worker judged no brand"
        for worker in (one, again):
            assert kill_worker(worker, signal.SIGTERM) == 0, worker.describe()
    finally:
        for worker in workers:
            if worker.alive():
                kill_worker(worker)
        producer.close(10)
        alert_log.close()
        changelog.close()

    delivery = Delivery.of(decode_events(read_all(deployment.broker_list, settings.alerts_topic)))
    records_of_changelog = read_all(deployment.broker_list, deployment.changelog_topic)
    states = latest_states(records_of_changelog)
    split = {b: p for b, p in state_partitions(records_of_changelog).items() if len(p) > 1}
    print(
        f"\nrebalance: {len(records)} mentions of {len(sent)} brands, 2 workers "
        f"({len(owned_by_one)} and {len(owned_by_two)} brands), one stopped and restarted; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items())
        + f"; alert events expected {len(expected_ids)}, distinct delivered {len(delivery.ids)}, "
        f"delivered {len(delivery.events)}, duplicates {delivery.duplicates} (differing "
        f"{len(delivery.differing)}); brands with state in more than one partition {len(split)}; "
        f"wall time {time.monotonic() - started:.0f} s",
        flush=True,
    )
    skipped = skipped_mentions(deployment, len(records))
    lost = {b: n - states.get(b, {}).get("mentions", 0) for b, n in sent.items()}
    print(f"  mentions the consumer left out (read again) {skipped}, missing from the state {lost}")
    assert_outcome(delivery, expected, states, sent, skipped, reference_states)
    assert split == {}
