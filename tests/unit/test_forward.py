"""The webhook forwarder's posting and retry logic, against a real local HTTP server that
fails the first N requests (no Kafka, no mock of the HTTP layer); and the example consumer."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from streams.forward import Forwarder, RetryPolicy, post_json, slack_message

ROOT = Path(__file__).resolve().parents[2]


def alert_event(seq: int = 0, phase: str = "opened", text: str = "so bad") -> dict[str, Any]:
    alert_id = "49eb29b6-0c1f-5b3e-9a57-4d1e2f3a4b5c"
    return {
        "specversion": "1.0",
        "id": f"{alert_id}/{seq}-{phase}",
        "source": "urn:crisis-radar:detector",
        "type": f"io.crisis-radar.alert.negativity.{phase}.v1",
        "subject": "acme-air",
        "time": "2026-11-22T16:20:32.465Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:crisis-radar:schema:alert:v1",
        "data": {
            "alert_id": alert_id,
            "sequence": seq,
            "brand": "acme-air",
            "kind": "negativity",
            "phase": phase,
            "severity": "warning",
            "opened_at": "2026-11-22T16:20:00Z",
            "window": {"start": "2026-11-22T16:20:00Z", "seconds": 60},
            "observed": {"count": 32, "negative_share": 0.5, "reach": 41250},
            "expected": {"count": 34.0, "negative_share": 0.1},
            "factor": 4.9,
            "statistic": {"name": "wilson_lower_negative_share", "value": 0.29, "threshold": 0.25},
            "thresholds": {"warmup_buckets": 30},
            "samples": [
                {
                    "id": "m-1",
                    "text": text,
                    "created_at": "2026-11-22T16:20:05Z",
                    "compound": -0.7,
                    "reposts": 5,
                    "followers": 10,
                    "repost_of": None,
                }
            ],
            "top_terms": [{"term": "refund", "count": 4}],
            "detector_version": "0.1.0",
        },
    }


class Hook:
    """A webhook on 127.0.0.1 (ephemeral port) that answers ``fail_status`` to the first
    ``fail_first`` requests, then 200, and records every body it received."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                failing = len(hook.bodies) <= hook.fail_first
                self.send_response(hook.fail_status if failing else 200)
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_hook() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(**kwargs: Any) -> Hook:
        hooks.append(Hook(**kwargs))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


POLICY = RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5, timeout=5)


def test_delivers_after_transient_failures_with_exponential_backoff(make_hook: Any) -> None:
    hook = make_hook(fail_first=2)
    sleeps = Sleeps()
    result = post_json(hook.url, {"text": "hello"}, POLICY, sleeps)
    assert result.ok and result.attempts == 3 and result.status == 200
    assert sleeps == [0.5, 1.0]
    assert hook.bodies == [{"text": "hello"}] * 3


def test_gives_up_after_bounded_attempts_then_moves_on(make_hook: Any) -> None:
    hook = make_hook(fail_first=100, fail_status=500)
    sleeps = Sleeps()
    forwarder = Forwarder(hook.url, POLICY, sleeps)
    result = forwarder.handle(alert_event(0))
    assert result is not None and not result.ok and result.attempts == 4
    assert result.status == 500
    assert sleeps == [0.5, 1.0, 1.5]  # capped at max_backoff
    assert len(hook.bodies) == 4
    assert (forwarder.delivered, forwarder.failed) == (0, 1)
    # the forwarder moves on: the next event is handled (and fails the same way)
    hook.fail_first = 0
    assert forwarder.handle(alert_event(1, "escalated")) is not None
    assert (forwarder.delivered, forwarder.failed) == (1, 1)


def test_client_errors_are_not_retried(make_hook: Any) -> None:
    hook = make_hook(fail_first=100, fail_status=400)
    sleeps = Sleeps()
    result = post_json(hook.url, {"text": "x"}, POLICY, sleeps)
    assert not result.ok and result.attempts == 1 and result.status == 400 and sleeps == []


def test_connection_refused_is_retried_and_bounded(make_hook: Any) -> None:
    hook = make_hook()
    url = hook.url
    hook.close()  # nothing listens there any more
    sleeps = Sleeps()
    result = post_json(url, {"text": "x"}, RetryPolicy(attempts=3, backoff=0.1), sleeps)
    assert not result.ok and result.attempts == 3 and result.status is None
    assert sleeps == [0.1, 0.2]


def test_forwarder_posts_slack_text_and_drops_duplicates(make_hook: Any) -> None:
    hook = make_hook()
    forwarder = Forwarder(hook.url, POLICY, Sleeps())
    event = alert_event(0, text="<@U123> <!channel> lost bag & more")
    assert forwarder.handle(event) is not None
    assert forwarder.handle(json.loads(json.dumps(event))) is None  # a redelivered copy
    assert forwarder.handle({"not": "an alert"}) is None
    assert (forwarder.delivered, forwarder.duplicates, forwarder.invalid) == (1, 1, 1)
    assert len(hook.bodies) == 1
    text = hook.bodies[0]["text"]
    assert set(hook.bodies[0]) == {"text"}
    assert "*OPENED* negativity alert for *acme-air*" in text
    assert "refund" in text and event["data"]["alert_id"] in text
    # untrusted text cannot ping people or inject Slack markup
    assert "<@U123>" not in text and "<!channel>" not in text
    assert "&lt;@U123&gt; &lt;!channel&gt; lost bag &amp; more" in text


def test_slack_message_of_a_resolved_event_has_no_sample() -> None:
    text = slack_message(alert_event(2, "resolved"))["text"]
    assert text.startswith("*RESOLVED*") and "so bad" not in text


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "consume_alerts", ROOT / "examples" / "consume_alerts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_consumer_validates_and_deduplicates() -> None:
    pytest.importorskip("jsonschema")
    example = _example()
    printer = example.AlertPrinter(example.load_validator(ROOT / "config/alert-v1.schema.json"))
    event = alert_event(0)
    line = printer.handle(json.dumps(event).encode())
    assert line is not None and "opened" in line and "acme-air" in line
    assert printer.handle(json.dumps(event).encode()) is None  # duplicate (source, id)
    bad = {**event, "type": "something.else"}
    bad["id"] = event["id"].replace("0-opened", "1-escalated")
    assert printer.handle(json.dumps(bad).encode()) is None
    assert printer.handle(b"not json") is None
    assert (printer.printed, printer.duplicates, printer.invalid) == (1, 1, 2)
