"""Live configuration through the real control topic, and the alert topic's other readers.

`crisis-radar thresholds set` and `crisis-radar plan add` run as real commands against the
embedded broker; the session worker applies them without a restart (seen on /metrics and in
the alerts it then sends, or does not send). `crisis-radar report --brokers` and
`crisis-radar forward --brokers` then read the alerts back from the topic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.kafka_util import stop_process

from .conftest import TEST_CONFIG
from .support import (
    BUCKET_SECONDS,
    REPO_ROOT,
    TopicLog,
    Worker,
    alert_events,
    aligned_start,
    calm,
    encode,
    event_time,
    first,
    mention_events,
    produce,
    spike,
)

pytestmark = pytest.mark.integration

CALM_BEFORE, SPIKE_BUCKETS, CALM_AFTER = 15, 3, 6


def cli(worker: Worker, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_RADAR_")}
    env.update(
        {
            "CRISIS_RADAR_CONFIG_FILE": str(TEST_CONFIG),
            "CRISIS_RADAR_CONTROL_TOPIC": worker.settings.control_topic,
            "CRISIS_RADAR_ALERTS_TOPIC": worker.settings.alerts_topic,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args, "--brokers", worker.settings.brokers],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def control_changes(worker: Worker, kind: str, outcome: str = "applied") -> float:
    value = worker.metrics().get("crisis_radar_control_changes_total", kind=kind, outcome=outcome)
    return value or 0.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class Run:
    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.tuned = f"tuned-{suffix}"  # live thresholds make its spike unremarkable
        self.planned = f"planned-{suffix}"  # its spike lies inside a planned event
        self.start = aligned_start(hours_ago=2)
        self.spike_start = self.start + CALM_BEFORE * BUCKET_SECONDS
        self.spike_end = self.spike_start + SPIKE_BUCKETS * BUCKET_SECONDS
        self.plan_id = f"launch-{suffix}"


@pytest.fixture(scope="module")
def run(worker: Worker, producer: KafkaProducer) -> Run:
    r = Run()
    applied = control_changes(worker, "thresholds")
    set_ = cli(
        worker,
        "thresholds",
        "set",
        r.tuned,
        "virality_factor=50",
        "negativity_min_share=0.95",
        "drift_min_share=0.95",  # the slow drift rule has a floor of its own
        "--by",
        "integration-test",
        "--note",
        "too noisy",
    )
    assert set_.returncode == 0, set_.stderr
    worker.wait(
        "the live threshold change to be applied",
        lambda: control_changes(worker, "thresholds") >= applied + 1,
        timeout=30,
    )
    planned = control_changes(worker, "plan")
    add = cli(
        worker,
        "plan",
        "add",
        r.planned,
        "--from",
        iso(r.spike_start - BUCKET_SECONDS),
        "--to",
        iso(r.spike_end + BUCKET_SECONDS),
        "--expect",
        "20x",
        "--note",
        "spring launch",
        "--id",
        r.plan_id,
    )
    assert add.returncode == 0, add.stderr
    worker.wait(
        "the planned event to be applied",
        lambda: control_changes(worker, "plan") >= planned + 1,
        timeout=30,
    )
    plan = [calm(CALM_BEFORE), spike(SPIKE_BUCKETS), calm(CALM_AFTER)]
    stream = sorted(
        mention_events(r.tuned, r.start, plan) + mention_events(r.planned, r.start, plan),
        key=event_time,
    )
    before = worker.metrics()
    produce(
        producer, worker.settings.mentions_topic, ((e["brand"].encode(), encode(e)) for e in stream)
    )
    worker.wait_processed(before, len(stream), timeout=120)
    return r


def test_a_live_threshold_change_applies_without_a_restart(
    run: Run, worker: Worker, alert_log: TopicLog
) -> None:
    # The planned brand's negativity alert comes from the same stream, after the tuned
    # brand's spike: once it is there, the tuned brand has had its chance to alert.
    def planned_alert() -> bool:
        return first(alert_events(alert_log, run.planned), "negativity", "opened") is not None

    worker.wait("the planned brand's negativity alert", planned_alert, timeout=60)
    assert alert_events(alert_log, run.tuned) == []
    shown = cli(worker, "thresholds", "show", run.tuned)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.strip().startswith("virality_factor"))
    assert "50.0" in line and f"live ({run.tuned}) by integration-test" in line
    assert worker.metrics().get("crisis_radar_live_threshold_overrides", scope=run.tuned) == 3
    listing = cli(worker, "thresholds", "show")
    assert f"{run.tuned}: set by integration-test" in listing.stdout
    assert "(too noisy)" in listing.stdout
    assert "live thresholds of" in worker.log_tail(400)


def test_an_invalid_value_is_refused_before_it_is_published(run: Run, worker: Worker) -> None:
    applied = control_changes(worker, "thresholds")
    refused = cli(worker, "thresholds", "set", run.tuned, "virality_factor=0.5")
    assert refused.returncode == 2
    assert "virality_factor must be > 1" in refused.stderr
    unknown = cli(worker, "thresholds", "set", run.tuned, "bucket_seconds=30")
    assert unknown.returncode == 2 and "cannot change live" in unknown.stderr
    shown = cli(worker, "thresholds", "show", run.tuned)
    assert "50.0" in next(
        x for x in shown.stdout.splitlines() if x.strip().startswith("virality_factor")
    )
    assert control_changes(worker, "thresholds") == applied
    assert control_changes(worker, "thresholds", "refused") == 0


def test_alerts_inside_a_planned_event_say_so_and_the_plan_absorbs_the_surge(
    run: Run, worker: Worker, alert_log: TopicLog
) -> None:
    def negativity() -> dict[str, Any] | None:
        return first(alert_events(alert_log, run.planned), "negativity", "opened")

    opened = worker.wait("the planned brand's negativity alert", negativity, timeout=60)
    planned = opened["data"]["planned"]
    assert planned["id"] == run.plan_id and planned["expect"] == 20.0
    assert planned["note"] == "spring launch"
    kinds = {e["data"]["kind"] for e in alert_events(alert_log, run.planned)}
    assert "virality" not in kinds and "crisis" not in kinds
    listing = cli(worker, "plan", "list", run.planned, "--all")
    assert run.plan_id in listing.stdout and "expect 20x" in listing.stdout


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("RecordingHook", (Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_report_and_forwarder_read_the_alert_topic(
    run: Run,
    worker: Worker,
    alert_log: TopicLog,
    webhook: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    def negativity() -> dict[str, Any] | None:
        return first(alert_events(alert_log, run.planned), "negativity", "opened")

    alert_id = worker.wait("the planned brand's alert", negativity, timeout=60)["data"]["alert_id"]
    page = tmp_path / "report.html"
    report = cli(worker, "report", alert_id[:13], "--out", str(page))
    assert report.returncode == 0, report.stderr
    html = page.read_text(encoding="utf-8")
    assert alert_id in html and run.planned in html

    url, received = webhook
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_RADAR_")}
    env["CRISIS_RADAR_ALERTS_TOPIC"] = worker.settings.alerts_topic
    log_path = tmp_path / "forward.log"
    with log_path.open("wb") as log_file:
        forwarder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "forward",
                "--brokers",
                worker.settings.brokers,
                "--webhook",
                url,
                "--group",
                f"forward-it-{uuid.uuid4().hex[:8]}",
                "--from-beginning",
                "--rebalance-timeout",
                "8",
            ],
            env={**env, "CRISIS_RADAR_CONFIG_FILE": str(TEST_CONFIG)},
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def posted() -> bool:
            if forwarder.poll() is not None:
                raise AssertionError(log_path.read_text(errors="replace"))
            return any(alert_id in post.get("text", "") for post in received)

        worker.wait("the forwarder to post the alert", posted, timeout=120)
    finally:
        stop_process(forwarder, timeout=15)
    texts = [post["text"] for post in received if alert_id in post.get("text", "")]
    assert texts and run.planned in texts[0]
