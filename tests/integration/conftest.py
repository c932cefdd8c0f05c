"""Session fixtures of the integration layer: ONE embedded Tansu broker and ONE real worker
process (``python -m streams.cli worker``) for the whole session, plus a producer and
readers of the alert and dead-letter topics. No mocks: mentions go in over Kafka, alerts
and dead letters come out over Kafka, metrics over HTTP.

Every test uses brand names of its own, so the state the shared worker keeps per brand
does not leak between tests.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from config.settings import load_settings
from streams.kafka_util import EMBEDDED_ENV, EmbeddedBroker, free_port, stop_process

from .support import TopicLog, Worker, scrape, spawn_worker

TEST_CONFIG = Path(__file__).with_name("crisis-radar-test.yaml")
WORKER_START_TIMEOUT = 120.0

WORKER_LOG = pytest.StashKey[Path]()
BROKER_LOG = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedBroker]:
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    request.config.stash[BROKER_LOG] = log_path
    embedded = EmbeddedBroker(log_path=log_path).start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def worker(
    broker: EmbeddedBroker,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    run_dir = tmp_path_factory.mktemp("worker")
    port = free_port()
    # Start from a clean slate: a CRISIS_RADAR_* variable of the caller's shell must not
    # change the topics or thresholds under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_RADAR_")}
    env.update(EMBEDDED_ENV)
    app_id = f"crisis-radar-it-{uuid.uuid4().hex[:10]}"
    env.update(
        {
            "CRISIS_RADAR_BROKERS": broker.address,
            "CRISIS_RADAR_WEB_PORT": str(port),
            "CRISIS_RADAR_DATA_DIR": str(run_dir / "data"),
            "CRISIS_RADAR_APP_ID": app_id,
            "CRISIS_RADAR_CONTROL_TOPIC": f"{app_id}-control",
            "CRISIS_RADAR_CONFIG_FILE": str(TEST_CONFIG),
            "PYTHONUNBUFFERED": "1",
        }
    )
    settings = load_settings(env)
    log_path = run_dir / "worker.log"
    request.config.stash[WORKER_LOG] = log_path
    process = spawn_worker(env, log_path)
    running = Worker(process=process, port=port, log_path=log_path, settings=settings)
    try:
        running.wait("GET /metrics to answer 200", lambda: scrape(port), WORKER_START_TIMEOUT)
        yield running
    finally:
        code = stop_process(process, timeout=20)
        print(f"worker exit code {code}", file=sys.stderr)
        if code not in (0, -15):
            print(f"\nworker stopped with code {code}\n{running.describe()}", file=sys.stderr)


@pytest.fixture(scope="session")
def producer(worker: Worker) -> Iterator[KafkaProducer]:
    client = KafkaProducer(
        bootstrap_servers=worker.brokers, acks="all", linger_ms=10, client_id="crisis-radar-it"
    )
    try:
        yield client
    finally:
        client.close(10)


def _topic_log(worker: Worker, topic: str) -> Iterator[TopicLog]:
    log = TopicLog(worker.brokers, topic)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture(scope="session")
def alert_log(worker: Worker) -> Iterator[TopicLog]:
    yield from _topic_log(worker, worker.settings.alerts_topic)


@pytest.fixture(scope="session")
def dead_letter_log(worker: Worker) -> Iterator[TopicLog]:
    yield from _topic_log(worker, worker.settings.dead_letter_topic)


@pytest.fixture
def unique_brand(request: pytest.FixtureRequest) -> str:
    """A brand name nobody else in the session uses (brands are lower case)."""
    stem = request.node.name.removeprefix("test_").replace("_", "-")[:24]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After a failed run, show the tails of the worker's and the broker's logs."""
    if exitstatus == 0:
        return
    for key, name in ((WORKER_LOG, "worker"), (BROKER_LOG, "broker")):
        path = config.stash.get(key, None)
        if path is not None and path.exists():
            terminalreporter.write_sep("-", f"{name} log, last lines ({path})")
            terminalreporter.write_line(_tail(path))
