"""``crisis-radar forward``: post alert events to a webhook as Slack-compatible JSON.

A separate consumer process with its own consumer group: it reads the alert topic, posts
``{"text": ...}`` for each event, retries failed posts with exponential backoff for a
bounded number of attempts, then logs the event as failed, counts it and moves on. Offsets
are committed only after the events of a poll have been handled (delivered, or given up
on), so a crash re-delivers them (at-least-once; duplicates by (source, id) are dropped
within one process). It never blocks detection: the worker does not wait for it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("crisis_radar.forward")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _slack_escape(text: str) -> str:
    """Slack's required escaping of &, < and > (mention texts are untrusted)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: dict[str, Any]) -> dict[str, str]:
    """The Slack-compatible payload for one alert event: ``{"text": ...}``."""
    data = event.get("data", {})
    observed, expected = data.get("observed", {}), data.get("expected", {})
    phase = str(data.get("phase", "?")).upper()
    kind, brand = str(data.get("kind", "?")), str(data.get("brand", event.get("subject", "?")))
    lines = [
        f"*{phase}* {kind} alert for *{brand}* ({data.get('severity', '?')}) "
        f"at {event.get('time', '?')}",
        f"{float(observed.get('count', 0)):.0f} mentions vs "
        f"{float(expected.get('count', 0)):.1f} expected",
    ]
    if "negative_share" in observed:
        lines[-1] += (
            f", negative share {float(observed['negative_share']):.0%} vs "
            f"{float(expected.get('negative_share', 0)):.0%} normal"
        )
    planned = data.get("planned")
    if isinstance(planned, dict):
        note = f": {planned['note']}" if planned.get("note") else ""
        lines.append(
            f"inside planned event {planned.get('id', '?')} "
            f"(expected {float(planned.get('expect', 0)):g}x volume{note})"
        )
    terms = ", ".join(str(t.get("term", "")) for t in data.get("top_terms", []))
    if terms:
        lines.append(f"top terms: {terms}")
    sample = next(iter(data.get("samples", [])), {}).get("text", "")
    if sample and data.get("phase") == "opened":
        lines.append(f"e.g. “{str(sample)[:200]}”")
    lines.append(f"alert {data.get('alert_id', '?')}")
    return {"text": _slack_escape("\n".join(lines))}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # in all, the first one included
    backoff: float = 0.5  # seconds before the 2nd attempt, doubled after each failure
    max_backoff: float = 30.0
    timeout: float = 10.0  # per request

    def delay(self, failures: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (failures - 1)))


@dataclass
class PostResult:
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def post_json(
    url: str,
    payload: dict[str, Any],
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PostResult:
    """POST ``payload`` as JSON, retrying connection errors, timeouts, 429 and 5xx with
    exponential backoff, at most ``policy.attempts`` times. Other 4xx are not retried."""
    policy = policy or RetryPolicy()
    body = json.dumps(payload).encode("utf-8")
    status: int | None = None
    error = ""
    for attempt in range(1, policy.attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout) as response:
                status = int(response.status)
                response.read()
            return PostResult(True, attempt, status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            exc.close()
            if exc.code not in RETRY_STATUSES:
                return PostResult(False, attempt, status, error)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, str(getattr(exc, "reason", exc))
        if attempt < policy.attempts:
            sleep(policy.delay(attempt))
    return PostResult(False, policy.attempts, status, error)


@dataclass
class Forwarder:
    """Handles one alert event at a time: drop duplicates, post, count."""

    url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    remember: int = 10_000  # (source, id) pairs kept for deduplication
    delivered: int = 0
    failed: int = 0
    duplicates: int = 0
    invalid: int = 0
    _seen: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)

    def handle(self, event: Any) -> PostResult | None:
        """Post one event; None when it was skipped (a duplicate or not an alert event)."""
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            self.invalid += 1
            log.warning("skipping a record that is not an alert event")
            return None
        key = (str(event.get("source", "")), str(event.get("id", "")))
        if key in self._seen:
            self.duplicates += 1
            return None
        result = post_json(self.url, slack_message(event), self.policy, self.sleep)
        if result.ok:
            self.delivered += 1
        else:
            self.failed += 1
            log.error(
                "giving up on alert event %s after %d attempts (%s)",
                key[1],
                result.attempts,
                result.error,
            )
        self._seen[key] = None
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        return result


def run_forwarder(
    brokers: list[str],
    topic: str,
    forwarder: Forwarder,
    group: str,
    from_beginning: bool = False,
    max_events: int | None = None,
    rebalance_timeout: float = 300.0,
) -> None:
    """Consume ``topic`` and hand each event to ``forwarder``; commit after handling.
    ``rebalance_timeout`` is also the longest a batch may take (kafka-python's
    max_poll_interval); the embedded broker completes a group join only after it."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=brokers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        max_poll_interval_ms=int(rebalance_timeout * 1000),
        # A batch must be handled within the poll interval, retries included.
        max_poll_records=max(1, min(500, int(rebalance_timeout // 10))),
    )
    handled = 0
    try:
        while max_events is None or handled < max_events:
            batch = consumer.poll(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                    except (TypeError, ValueError):
                        event = None
                    forwarder.handle(event)
                    handled += 1
            if batch:
                consumer.commit()
                log.info(
                    "delivered %d, failed %d, duplicates %d, invalid %d",
                    forwarder.delivered,
                    forwarder.failed,
                    forwarder.duplicates,
                    forwarder.invalid,
                )
    finally:
        consumer.close()
