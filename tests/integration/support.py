"""Helpers of the integration tests: the worker process, /metrics scraping, topic
readers and mention streams. Everything here talks to real processes over real sockets."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings, load_settings
from detector import alerts
from detector.replay import Replayer
from streams import scored as scored_batch
from streams.app import STATE_TABLE, decode_state
from streams.kafka_util import EMBEDDED_ENV, EmbeddedBroker, free_port

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


# --- workers of their own: crash, rebalance and broker-trouble tests -------------------------
# These tests kill, stop and restart workers, so they never touch the session worker: each
# starts its own worker processes with an app id (consumer group, table changelog) and
# topics of its own.

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployment:
    """What the workers of one test share: brokers, app id, topics, detection settings."""

    brokers: str
    app_id: str
    config_file: Path
    run_dir: Path
    partitions: int = 4
    extra_env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def fresh(
        cls,
        brokers: str,
        run_dir: Path,
        config_file: Path,
        name: str,
        partitions: int = 4,
        **extra_env: str,
    ) -> Deployment:
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        env = {
            "CRISIS_RADAR_MENTIONS_TOPIC": f"mentions-{tag}",
            "CRISIS_RADAR_ALERTS_TOPIC": f"alerts-{tag}",
            "CRISIS_RADAR_DEAD_LETTER_TOPIC": f"dead-letter-{tag}",
            "CRISIS_RADAR_CONTROL_TOPIC": f"control-{tag}",
            **extra_env,
        }
        return cls(
            brokers=brokers,
            app_id=f"crisis-radar-{tag}",
            config_file=config_file,
            run_dir=run_dir,
            partitions=partitions,
            extra_env=tuple(sorted(env.items())),
        )

    def env(self, port: int, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_RADAR_")}
        env.update(EMBEDDED_ENV)
        env.update(
            {
                "CRISIS_RADAR_BROKERS": self.brokers,
                "CRISIS_RADAR_APP_ID": self.app_id,
                "CRISIS_RADAR_WEB_PORT": str(port),
                "CRISIS_RADAR_DATA_DIR": str(data_dir),
                "CRISIS_RADAR_CONFIG_FILE": str(self.config_file),
                "CRISIS_RADAR_PARTITIONS": str(self.partitions),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(dict(self.extra_env))
        return env

    @property
    def settings(self) -> Settings:
        return load_settings(self.env(0, self.run_dir / "data"))

    @property
    def broker_list(self) -> list[str]:
        return self.settings.broker_list

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-{STATE_TABLE}-changelog"

    def start_worker(self, name: str) -> Worker:
        """Start ``crisis-radar worker`` in a process group of its own; returns at once
        (wait for readiness with ``worker.wait``)."""
        port = free_port()
        log_path = self.run_dir / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = self.env(port, self.run_dir / f"{name}-data")
        process = spawn_worker(env, log_path)
        return Worker(process=process, port=port, log_path=log_path, settings=load_settings(env))


def spawn_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``crisis-radar worker`` with ``env``, in a process group of its own (so that a
    test can signal it with its children), its output appended to ``log_path``."""
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_worker(worker: Worker, sig: int = signal.SIGKILL, timeout: float = 60.0) -> int:
    """Send ``sig`` to the worker's process group and wait for it to exit."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, sig)
    return worker.process.wait(timeout)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def processed(worker: Worker, stage: str = "detect") -> float:
    """Mentions one stage of this worker process has finished with, whatever the outcome
    (0 while /metrics does not answer)."""
    try:
        metrics = worker.metrics()
    except (OSError, ValueError):
        return 0.0
    return metrics.total("crisis_radar_mentions_processed_total", stage=stage)


def read_all(brokers: list[str], topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic``, read to the end of each partition."""
    log = TopicLog(brokers, topic)
    try:
        log.read_to_end(timeout)
        return list(log.records)
    finally:
        log.close()


def latest_states(records: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The last state per brand in the records of the brand-state changelog, with the
    changelog partition it was written to under ``"_partition"``."""
    states: dict[str, dict[str, Any]] = {}
    for record in records:
        brand = json.loads(record.key)
        if record.value is None:
            states.pop(brand, None)
            continue
        states[brand] = {**decode_state(record.value), "_partition": record.partition}
    return states


def state_partitions(records: Iterable[Any]) -> dict[str, set[int]]:
    """Every changelog partition each brand's state was ever written to."""
    partitions: dict[str, set[int]] = {}
    for record in records:
        partitions.setdefault(json.loads(record.key), set()).add(record.partition)
    return partitions


def offline_replay(
    values: Iterable[bytes], settings: Settings
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The alert events the offline replay (the backtest's path through the same core)
    emits for these raw mention values, in order, and every brand's final state."""
    # The worker's own scorer, as the backtest uses it.
    scorer = settings.sentiment.scorer()
    replayer = Replayer(settings.thresholds, scorer, settings.limits, now=time.time())
    events = []
    for value in values:
        for decision in replayer.feed(value):
            events.append(alerts.to_event(decision, settings.alert_source))
    return events, {brand: state.to_dict() for brand, state in replayer.states.items()}


def reference_events(values: Iterable[bytes], settings: Settings) -> list[dict[str, Any]]:
    return offline_replay(values, settings)[0]


def decode_events(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]


@dataclass(frozen=True)
class Delivery:
    """What a consumer of the alert topic sees: events, how many (source, id) pairs came
    more than once, and how many of those repeats differ from the first copy."""

    events: list[dict[str, Any]]
    unique: dict[tuple[str, str], dict[str, Any]]
    duplicates: int
    differing: list[tuple[str, list[str]]]  # (id, top-level keys that differ)
    opened_twice: list[str]

    @classmethod
    def of(cls, events: list[dict[str, Any]]) -> Delivery:
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        duplicates, differing = 0, []
        for event in events:
            key = (event["source"], event["id"])
            if key not in unique:
                unique[key] = event
                continue
            duplicates += 1
            if event != unique[key]:
                changed = sorted(
                    k for k in set(event) | set(unique[key]) if event.get(k) != unique[key].get(k)
                )
                differing.append((event["id"], changed))
        opened = collections.Counter(
            e["data"]["alert_id"] for e in events if e["data"]["phase"] == "opened"
        )
        return cls(
            events=events,
            unique=unique,
            duplicates=duplicates,
            differing=differing,
            opened_twice=sorted(a for a, n in opened.items() if n > 1),
        )

    @property
    def ids(self) -> set[str]:
        return {event_id for _, event_id in self.unique}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def own_broker(log_path: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker of the test's own, stopped afterwards."""
    broker = EmbeddedBroker(log_path=log_path).start()
    try:
        yield broker
    finally:
        broker.stop()


def alert_log_lines(worker: Worker) -> int:
    """How many alert events this worker has logged as sent."""
    try:
        text = worker.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return len(re.findall(r"\] alert \w+ (?:opened|escalated|resolved) ", text))


class Progress:
    """The alert topic and the brand-state changelog of a deployment, read as they grow:
    whether every expected alert event is out and every mention counted in state."""

    def __init__(self, deployment: Deployment) -> None:
        self.alerts = TopicLog(deployment.broker_list, deployment.settings.alerts_topic)
        self.changelog = TopicLog(deployment.broker_list, deployment.changelog_topic)

    def poll(self) -> None:
        self.alerts.poll()
        self.changelog.poll()

    def seen(self) -> set[str]:
        return {e["id"] for e in decode_events(self.alerts.records)}

    def counted(self, brands: Iterable[str]) -> dict[str, int | None]:
        states = latest_states(self.changelog.records)
        return {b: states.get(b, {}).get("mentions") for b in brands}

    def complete(self, expected_ids: set[str], sent: dict[str, int]) -> bool:
        self.poll()
        return expected_ids <= self.seen() and self.counted(sent) == sent

    def missing(self, expected_ids: set[str], sent: dict[str, int]) -> str:
        return (
            f"alert events missing {sorted(expected_ids - self.seen())}; mentions counted "
            f"{self.counted(sent)}, sent {sent}"
        )

    def close(self) -> None:
        self.alerts.close()
        self.changelog.close()


def read_count(brokers: list[str], topic: str, count: int, timeout: float = 60.0) -> list[Any]:
    """The first ``count`` records of ``topic``, for a topic written by other producers
    (multi-record batches: the embedded broker's end offsets are wrong there)."""
    log = TopicLog(brokers, topic)
    try:
        deadline = time.monotonic() + timeout
        while len(log.records) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(log.records)} of {count} records of {topic}")
            log.poll()
        return list(log.records)
    finally:
        log.close()


class Quiet:
    """How long a value has not changed."""

    def __init__(self) -> None:
        self.value: float | None = None
        self.since = time.monotonic()

    def for_seconds(self, value: float) -> float:
        if value != self.value:
            self.value, self.since = value, time.monotonic()
        return time.monotonic() - self.since


SKIPPED = re.compile(
    r"(?:ingest|detect): offsets (?P<first>\d+) to (?P<last>\d+) of "
    r"(?P<topic>\S+)/(?P<partition>\d+) were not handed out"
)


def skipped_mentions(deployment: Deployment, input_records: int) -> dict[str, int]:
    """Per brand, the mentions among the offsets the deployment's workers logged as not
    handed out by the consumer (``SkippedOffsets`` in streams/app.py; docs/delivery.md),
    which the agents then read again directly."""
    settings = deployment.settings
    ranges = []
    for path in sorted(deployment.run_dir.glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in SKIPPED.finditer(text):
            ranges.append((m["topic"], int(m["partition"]), int(m["first"]), int(m["last"])))
    if not ranges:
        return {}
    brand_at = {
        (r.partition, r.offset): json.loads(r.value)["brand"]
        for r in read_count(deployment.broker_list, settings.mentions_topic, input_records)
    }
    scored_at = {
        (r.partition, r.offset): [tuple(w["source_position"]) for w in scored_batch.unpack(r.value)]
        for r in read_all(deployment.broker_list, settings.scored_topic)
    }
    positions = set()
    for topic, partition, first_offset, last_offset in ranges:
        for offset in range(first_offset, last_offset + 1):
            if topic == settings.mentions_topic:
                positions.add((partition, offset))
            else:
                positions.update(scored_at.get((partition, offset), []))
    counts: dict[str, int] = {}
    for position in positions:
        if position in brand_at:
            counts[brand_at[position]] = counts.get(brand_at[position], 0) + 1
    return counts


# The share of a crash test's mentions that may be missing from the states: none, since
# commits no longer pass an unacknowledged record (docs/delivery.md, "The commit rule").
MAX_LOST_SHARE = 0.0


def assert_outcome(
    delivery: Delivery,
    expected: list[dict[str, Any]],
    states: dict[str, dict[str, Any]],
    sent: dict[str, int],
    skipped: dict[str, int],
    reference_states: dict[str, dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Check a deployment's outcome against the offline replay of its input; return the
    mentions missing from each brand's state (brands that lost none left out).

    No mention counted twice, at most ``MAX_LOST_SHARE`` missing (none) (``skipped``, the records
    the consumer left out and the agents read again, says where a missing one was); none
    late; repeated
    alert events exact; every alert event id of the replay delivered, no other; and for
    every brand that lost nothing, the replay's
    alert events (but for ``time``: which mention or clock tick finalised a bucket
    depends on how brands share partitions) and baseline."""
    lost = {b: n - states.get(b, {}).get("mentions", 0) for b, n in sent.items()}
    assert all(n >= 0 for n in lost.values()), f"mentions counted twice: {lost}"
    assert sum(lost.values()) <= MAX_LOST_SHARE * sum(sent.values()), (
        f"mentions lost {lost}; among the records the consumer left out (read again) {skipped}"
    )
    every = {e["id"] for e in expected}
    delivered = {i for (_, i) in delivery.unique}
    assert delivered == every, (
        f"missing {sorted(every - delivered)}, extra {sorted(delivered - every)}"
    )
    assert all(s["late"] == 0 for s in states.values())
    assert delivery.differing == [], delivery.differing
    whole = {b for b, n in lost.items() if n == 0}
    wanted = {e["id"]: e for e in expected if e["data"]["brand"] in whole}
    got = {i: e for (_, i), e in delivery.unique.items() if e["data"]["brand"] in whole}
    assert set(got) == set(wanted), (
        f"missing {sorted(set(wanted) - set(got))}, extra {sorted(set(got) - set(wanted))}"
    )
    for event_id, event in got.items():
        assert {**event, "time": None} == {**wanted[event_id], "time": None}, event_id
    if reference_states is not None:
        for brand in whole:
            assert states[brand]["baseline"] == reference_states[brand]["baseline"], brand
    return {b: n for b, n in lost.items() if n}
