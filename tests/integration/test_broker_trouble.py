"""Broker trouble: the worker started before its broker exists, the broker frozen for a
while (SIGSTOP, then SIGCONT: it keeps its topics, unlike a restart of the in-memory
embedded broker), and SIGTERM in the middle of a stream. Each time the worker says what
is going on in its log, needs no restart by hand, and loses or doubles nothing.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_util import EmbeddedBroker, free_port

from .conftest import TEST_CONFIG
from .support import (
    Delivery,
    Deployment,
    Progress,
    Quiet,
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
    processed,
    produce,
    read_all,
    skipped_mentions,
    spike,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT = 180.0
QUIET = 15.0  # seconds without a mention handled: the worker is done
SETTLED = 5.0  # seconds without a mention handled by a worker that answers
SILENT = re.compile(r"Kafka at \S+ does not answer \((?P<reason>[^)]*)\)")
ANSWERS = re.compile(r"Kafka at \S+ answers again after (?P<seconds>\d+) s")
NO_BROKER_SECONDS = 15.0  # how long the worker runs before its broker exists
FROZEN_SECONDS = 25.0  # how long the broker is stopped: beyond the 10 s session timeout


def log_text(worker: Worker) -> str:
    return worker.log_path.read_text(encoding="utf-8", errors="replace")


def stream(suffix: str) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    start = aligned_start(hours_ago=2)
    events = sorted(
        (
            e
            for name, plan in {
                "crisis": [calm(8), spike(3), calm(9)],
                "steady": [calm(20)],
            }.items()
            for e in mention_events(f"{name}-{suffix}", start, plan)
        ),
        key=event_time,
    )
    sent: dict[str, int] = {}
    for e in events:
        sent[e["brand"]] = sent.get(e["brand"], 0) + 1
    return [(e["brand"].encode(), encode(e)) for e in events], sent


def check_outcome(
    deployment: Deployment, records: list[tuple[bytes, bytes]], sent: dict[str, int]
) -> Delivery:
    """Every expected alert event delivered, repeats exact, every mention counted once
    (but those the consumer never handed out, which the worker logs: docs/delivery.md)."""
    settings = deployment.settings
    expected, reference_states = offline_replay([v for _, v in records], settings)
    delivery = Delivery.of(decode_events(read_all(deployment.broker_list, settings.alerts_topic)))
    states = latest_states(read_all(deployment.broker_list, deployment.changelog_topic))
    skipped = skipped_mentions(deployment, len(records))
    assert_outcome(delivery, expected, states, sent, skipped, reference_states)
    return delivery


def wait_until_done(
    worker: Worker,
    deployment: Deployment,
    records: list[tuple[bytes, bytes]],
    sent: dict[str, int],
) -> None:
    """Until every expected alert is out and every mention counted, or the worker has
    handled all it was handed (nothing moved for QUIET seconds)."""
    expected, _ = offline_replay([v for _, v in records], deployment.settings)
    expected_ids = {e["id"] for e in expected}
    progress = Progress(deployment)
    quiet = Quiet()
    try:

        def done() -> bool:
            if progress.complete(expected_ids, sent):
                return True
            handled = processed(worker)
            return handled > 0 and quiet.for_seconds(handled) >= QUIET

        worker.wait("every alert and every mention counted", done, TIMEOUT)
    finally:
        progress.close()


def test_worker_started_before_its_broker(tmp_path: Path) -> None:
    port = free_port()
    deployment = Deployment.fresh(f"127.0.0.1:{port}", tmp_path, TEST_CONFIG, "early")
    worker = deployment.start_worker("worker")
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
    try:
        spawned = time.monotonic()
        said = worker.wait(
            "a log line saying Kafka does not answer", lambda: SILENT.search(log_text(worker)), 60
        )
        assert said["reason"] == f"127.0.0.1:{port}: connection refused", said.group(0)
        # The scenario: no broker for a while. The worker must stay up meanwhile.
        while time.monotonic() - spawned < NO_BROKER_SECONDS:
            assert worker.alive(), worker.describe()
            time.sleep(0.5)
        broker.start()
        up = time.monotonic()
        answered = worker.wait(
            "a log line saying Kafka answers again", lambda: ANSWERS.search(log_text(worker)), 60
        )
        records, sent = stream(deployment.app_id[-8:])
        producer = KafkaProducer(bootstrap_servers=deployment.broker_list, acks="all", linger_ms=5)
        try:
            produce(producer, deployment.settings.mentions_topic, records)
        finally:
            producer.close(10)
        worker.wait("the first mention handled", lambda: processed(worker) > 0, TIMEOUT)
        first = time.monotonic() - up
        wait_until_done(worker, deployment, records, sent)
        assert worker.alive(), worker.describe()
        code = kill_worker(worker, signal.SIGTERM)
        assert code == 0, worker.describe()
        delivery = check_outcome(deployment, records, sent)
    finally:
        if worker.alive():
            kill_worker(worker)
        broker.stop()
    print(
        f"\nworker before broker: waited {NO_BROKER_SECONDS:.0f} s with "
        f"'{said.group(0)}' in its log, then '{answered.group(0)}'; first mention handled "
        f"{first:.1f} s after the broker started; {len(delivery.ids)} alert events",
        flush=True,
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with own_broker(tmp_path / "broker.log") as embedded:
        yield embedded


def test_broker_frozen_for_a_while(broker: EmbeddedBroker, tmp_path: Path) -> None:
    deployment = Deployment.fresh(broker.address, tmp_path, TEST_CONFIG, "frozen")
    records, sent = stream(deployment.app_id[-8:])
    half = len(records) // 2
    worker = deployment.start_worker("worker")
    producer = KafkaProducer(bootstrap_servers=deployment.broker_list, acks="all", linger_ms=5)
    assert broker.process is not None
    try:
        produce(producer, deployment.settings.mentions_topic, records[:half])
        first_half = Quiet()

        def first_half_handled() -> bool:
            handled = processed(worker)
            return handled >= half or (handled > 0 and first_half.for_seconds(handled) > QUIET)

        worker.wait("the first half handled", first_half_handled, TIMEOUT)
        before_freeze = processed(worker)
        pid = worker.process.pid
        os.kill(broker.process.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            said = worker.wait(
                "a log line saying Kafka does not answer",
                lambda: SILENT.search(log_text(worker)),
                FROZEN_SECONDS,
            )
            noticed = time.monotonic() - frozen
            while time.monotonic() - frozen < FROZEN_SECONDS:
                assert worker.alive(), worker.describe()
                time.sleep(0.5)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        thawed = time.monotonic()
        answered = worker.wait(
            "a log line saying Kafka answers again", lambda: ANSWERS.search(log_text(worker)), 60
        )
        produce(producer, deployment.settings.mentions_topic, records[half:])
        worker.wait("mentions handled again", lambda: processed(worker) > before_freeze, TIMEOUT)
        resumed = time.monotonic() - thawed
        wait_until_done(worker, deployment, records, sent)
        done_after = time.monotonic() - thawed
        assert worker.process.pid == pid and worker.alive(), "the worker was restarted"
        code = kill_worker(worker, signal.SIGTERM)
        assert code == 0, worker.describe()
        delivery = check_outcome(deployment, records, sent)
    finally:
        producer.close(10)
        if worker.alive():
            kill_worker(worker)
    print(
        f"\nbroker frozen {FROZEN_SECONDS:.0f} s: noticed after {noticed:.1f} s "
        f"('{said.group(0)}'), then '{answered.group(0)}'; mentions handled again "
        f"{resumed:.1f} s after the broker came back, all of them after {done_after:.1f} s; "
        f"{len(delivery.ids)} alert events, {delivery.duplicates} repeats; same worker "
        "process throughout",
        flush=True,
    )


def test_sigterm_mid_stream_flushes_offsets_and_state(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    deployment = Deployment.fresh(broker.address, tmp_path, TEST_CONFIG, "sigterm")
    records, sent = stream(deployment.app_id[-8:])
    first = deployment.start_worker("first")
    producer = KafkaProducer(bootstrap_servers=deployment.broker_list, acks="all", linger_ms=5)
    try:
        produce(producer, deployment.settings.mentions_topic, records)
        first.wait(
            "a third of the stream handled", lambda: processed(first) >= len(records) // 3, TIMEOUT
        )
        stopping = time.monotonic()
        code = kill_worker(first, signal.SIGTERM)
        stop_seconds = time.monotonic() - stopping
        assert code == 0, first.describe()
        log = log_text(first)
        assert "Traceback" not in log and "Crashed" not in log, first.describe()

        # What the stopped worker left: its offsets and the states they cover. A second
        # worker starts from there and replays at most the last batch of each agent.
        second = deployment.start_worker("second")
        try:
            wait_until_done(second, deployment, records, sent)
            # The first worker may have finished the stream's work before it stopped: the
            # second then only reads what was not committed. Wait until it answers and
            # has handled nothing new for a while.
            settled = Quiet()

            def replays_when_settled() -> tuple[float] | None:
                metrics = second.metrics()
                handled = metrics.total("crisis_radar_mentions_processed_total", stage="detect")
                if settled.for_seconds(handled) < SETTLED:
                    return None
                duplicates = metrics.total(
                    "crisis_radar_mentions_processed_total", stage="detect", outcome="duplicate"
                )
                return (duplicates,)  # a true value also for no replays

            [replays] = second.wait("the second worker settled", replays_when_settled, TIMEOUT)
            assert kill_worker(second, signal.SIGTERM) == 0, second.describe()
        finally:
            if second.alive():
                kill_worker(second)
        delivery = check_outcome(deployment, records, sent)
    finally:
        producer.close(10)
        if first.alive():
            kill_worker(first)
    print(
        f"\nSIGTERM mid-stream: exit code 0 after {stop_seconds:.1f} s; the next worker "
        f"skipped {replays:.0f} replayed mentions; {len(delivery.ids)} alert events, "
        f"{delivery.duplicates} repeats",
        flush=True,
    )
    # What a stop leaves to replay: the batch each agent was in (not acknowledged, so not
    # committed), each mention of which the detect agent then skips as a duplicate.
    assert replays <= 2 * deployment.settings.batch_size
