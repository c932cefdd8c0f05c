"""Helpers of the integration tests: the worker process, /metrics scraping, topic
readers and mention streams. Everything here talks to real processes over real sockets."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings

T = TypeVar("T")

BUCKET_SECONDS = 60  # bucket_seconds of crisis-radar-test.yaml
CALM_PER_BUCKET = 30
CALM_NEGATIVE_SHARE = 0.1
SPIKE_PER_BUCKET = 6 * CALM_PER_BUCKET
SPIKE_NEGATIVE_SHARE = 0.8

# VADER compound <= -0.05 (negative) for every text of the first list, > -0.05 for the second.
NEGATIVE_TEXTS = (
    "worst service ever, terrible",
    "awful delays again, I hate this",
    "this is a disaster, refund me now, horrible experience",
    "terrible support, they lost my bag and nobody cares",
)
CALM_TEXTS = (
    "love the new app, great job",
    "just landed, smooth flight",
    "thanks for the quick reply",
    "checking in for my flight today",
    "nice crew and a good snack on board",
    "booked the summer trip this morning",
)

PLUS_TWO = timezone(timedelta(hours=2))


# --- mention streams ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """``buckets`` consecutive event-time buckets of ``per_bucket`` mentions each, of which
    the share ``negative_share`` is negative (spread evenly through the bucket)."""

    buckets: int
    per_bucket: int
    negative_share: float


def calm(buckets: int) -> Segment:
    return Segment(buckets, CALM_PER_BUCKET, CALM_NEGATIVE_SHARE)


def spike(buckets: int) -> Segment:
    return Segment(buckets, SPIKE_PER_BUCKET, SPIKE_NEGATIVE_SHARE)


def aligned_start(hours_ago: float = 3.0) -> float:
    """A bucket boundary a few hours before now: event times of the streams start there."""
    start = time.time() - hours_ago * 3600
    return float(int(start // BUCKET_SECONDS) * BUCKET_SECONDS)


def mention_events(brand: str, start: float, plan: Sequence[Segment]) -> list[dict[str, Any]]:
    """Mentions of ``brand`` following ``plan`` from ``start``, in event-time order.
    ``created_at`` alternates between ISO-8601 with a +02:00 offset and epoch seconds."""
    events: list[dict[str, Any]] = []
    bucket = 0
    for segment in plan:
        for _ in range(segment.buckets):
            n = segment.per_bucket
            negatives = round(n * segment.negative_share)
            for j in range(n):
                negative = (j + 1) * negatives // n > j * negatives // n
                created = start + bucket * BUCKET_SECONDS + (j + 0.5) * BUCKET_SECONDS / n
                serial = len(events)
                texts = NEGATIVE_TEXTS if negative else CALM_TEXTS
                events.append(
                    {
                        "id": f"{brand}-{serial}",
                        "brand": brand,
                        "text": f"{texts[serial % len(texts)]} #{brand}",
                        "created_at": (
                            datetime.fromtimestamp(created, PLUS_TWO).isoformat()
                            if serial % 2
                            else round(created, 3)
                        ),
                        "platform": "test",
                        "lang": "en",
                        "author": {"id": f"user-{serial % 97}", "followers": 10 + serial % 500},
                        "engagement": {
                            "reposts": serial % 7,
                            "likes": serial % 11,
                            "replies": serial % 3,
                        },
                    }
                )
            bucket += 1
    return events


def event_time(event: dict[str, Any]) -> float:
    created = event["created_at"]
    if isinstance(created, str):
        return datetime.fromisoformat(created).timestamp()
    return float(created)


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode("utf-8")


def produce(
    producer: KafkaProducer, topic: str, records: Iterable[tuple[bytes, bytes]], timeout: float = 60
) -> int:
    """Send (key, value) records as fast as possible; return how many were sent."""
    futures = [producer.send(topic, key=key, value=value) for key, value in records]
    producer.flush(timeout)
    for future in futures:
        future.get(timeout)  # raises if a record was not written
    return len(futures)


# --- /metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics: sample name + labels -> value."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(samples)

    def get(self, name: str, **labels: str) -> float | None:
        """The sample with exactly these labels, or None."""
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples whose labels include these."""
        wanted = set(labels.items())
        return sum(v for (n, lab), v in self.samples.items() if n == name and wanted <= lab)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(lab)[label] for n, lab in self.samples if n == name and label in dict(lab)}


def scrape(port: int, timeout: float = 5.0) -> Metrics:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
        if answer.status != 200:
            raise RuntimeError(f"/metrics answered {answer.status}")
        return Metrics.parse(answer.read().decode("utf-8"))


def detect_processed(metrics: Metrics) -> float:
    """Mentions the detect agent has finished with, whatever the outcome."""
    return metrics.total("crisis_radar_mentions_processed_total", stage="detect")


# --- the worker process ---------------------------------------------------------------------


class WorkerFailed(AssertionError):
    pass


@dataclass
class Worker:
    """The one worker process of the session."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    settings: Settings

    @property
    def brokers(self) -> list[str]:
        return self.settings.broker_list

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with code {self.process.returncode}"
        return (
            f"worker pid {self.process.pid} {state}; log {self.log_path}; last lines:\n"
            f"{self.log_tail()}"
        )

    def metrics(self) -> Metrics:
        return scrape(self.port)

    def wait(
        self,
        description: str,
        check: Callable[[], T],
        timeout: float = 90.0,
        interval: float = 0.3,
    ) -> T:
        """Poll ``check()`` until it returns a true value and return it. Fails at once if
        the worker dies, or after ``timeout`` with the last error and the worker's log."""
        deadline = time.monotonic() + timeout
        last: str = "condition false"
        while True:
            if not self.alive():
                raise WorkerFailed(
                    f"worker died while waiting for {description}\n{self.describe()}"
                )
            try:
                value = check()
            except (OSError, ValueError, RuntimeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if value:
                    return value
                last = f"condition false (last value {value!r})"
            if time.monotonic() > deadline:
                raise WorkerFailed(
                    f"timed out after {timeout:.0f} s waiting for {description} ({last})\n"
                    f"{self.describe()}"
                )
            time.sleep(interval)

    def wait_processed(self, before: Metrics, count: int, timeout: float = 90.0) -> Metrics:
        """Wait until the detect agent has handled ``count`` more mentions than ``before``."""
        start = detect_processed(before)

        def done() -> Metrics | None:
            now = self.metrics()
            return now if detect_processed(now) - start >= count else None

        return self.wait(f"the detect agent to handle {count} more mentions", done, timeout)


# --- topic readers --------------------------------------------------------------------------


class TopicLog:
    """Every record of a topic since its beginning, read without a consumer group and
    accumulated across polls."""

    def __init__(self, brokers: list[str], topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=brokers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            client_id=f"crisis-radar-it-{topic}",
        )
        self.records: list[Any] = []

    def poll(self, timeout_ms: int = 200) -> None:
        for batch in self.consumer.poll(timeout_ms=timeout_ms).values():
            self.records.extend(batch)

    def with_key(self, key: bytes) -> list[Any]:
        self.poll()
        return [r for r in self.records if r.key == key]

    def read_to_end(self, timeout: float = 30.0) -> None:
        """Poll until every assigned partition's position has reached its end offset.
        (The worker writes one record per batch, so the end offsets are right even on
        Tansu; see DESIGN.md's known traps.)"""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            assigned = self.consumer.assignment()
            if assigned:
                ends = self.consumer.end_offsets(list(assigned))
                if all(self.consumer.position(tp) >= ends[tp] for tp in assigned):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic} to its end in {timeout:.0f} s")

    def close(self) -> None:
        self.consumer.close()


def alert_events(log: TopicLog, brand: str) -> list[dict[str, Any]]:
    """The alert events of ``brand`` seen so far, in topic order."""
    events = []
    for record in log.with_key(brand.encode()):
        event = json.loads(record.value)
        if event.get("data", {}).get("brand") == brand:
            events.append(event)
    return events


def first(events: Iterable[dict[str, Any]], kind: str, phase: str) -> dict[str, Any] | None:
    return next(
        (e for e in events if e["data"]["kind"] == kind and e["data"]["phase"] == phase), None
    )


def iso_to_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()
