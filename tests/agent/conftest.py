"""Fixtures of the agent tests: one Faust app per test, run with ``agent.test_context()``.

Each test gets a new app from ``create_app`` with the in-memory table store, a fresh
Prometheus registry and empty table data. Building several ``faust.App`` objects in one
process works: each has its own agents, topics and tables, and none of them is started
(``test_context`` starts only the agent under test, reading an in-memory channel).

Nothing in this layer talks to Kafka. The app's producer is replaced by
``RecordingProducer``, the one boundary every send goes through (``topic.send`` and the
table's changelog writes), so the tests see what would be produced, already serialised
by the topics' own codecs, and headers included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP, RecordMetadata
from prometheus_client import CollectorRegistry

from config.settings import Settings
from detector.model import Mention
from detector.sentiment import ScoredMention, VaderScorer, to_wire
from detector.thresholds import ThresholdBook, Thresholds
from streams.app import STATE_TABLE, CrisisRadarApp, create_app

BRAND = "acme"
# A bucket boundary (a multiple of 60 s): 2023-11-14T22:13:00Z.
T0 = 1_699_999_980.0

# Small thresholds so a handful of mentions warms a brand up and a dozen is a spike.
# No allowed lateness: a bucket is finalised (learned) as soon as the next one starts.
TEST_THRESHOLDS = Thresholds(
    bucket_seconds=60,
    allowed_lateness_buckets=0,
    warmup_buckets=3,
    baseline_halflife_buckets=10.0,
    virality_min_count=8,
    critical_multiplier=2.5,
    virality_factor=3.0,
    virality_z=3.0,
    negativity_min_count=10,
    resolve_after_buckets=2,
    cooldown_buckets=2,
    max_samples=3,
)

TEST_SETTINGS = Settings(
    app_id="crisis-radar-agent-tests",
    store="memory://",
    partitions=2,
    thresholds=ThresholdBook(defaults=TEST_THRESHOLDS),
    checkpoint_seconds=0.0,  # states written at the end of every batch
)


def input_record(
    value: bytes, key: bytes | None = None, offset: int = 0, partition: int = 0
) -> ConsumerRecord[bytes | None, bytes]:
    """A record of the mention topic as the ingest's consumer hands it over."""
    return ConsumerRecord(
        topic=TEST_SETTINGS.mentions_topic,
        partition=partition,
        offset=offset,
        timestamp=int(T0 * 1000),
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=(),
    )


@dataclass(frozen=True)
class Record:
    """One record the app would have produced."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: dict[str, bytes]

    def json(self) -> Any:
        assert self.value is not None
        return json.loads(self.value)


class RecordingProducer:
    """Stands in for the app's Kafka producer: records each message instead of sending it.

    Implements the part of Faust's producer interface that topics and tables use:
    ``maybe_start``, ``send``, ``send_and_wait``, ``send_soon`` and ``key_partition``.
    """

    def __init__(self) -> None:
        self.records: list[Record] = []

    def on(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    async def maybe_start(self) -> None:
        return None

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, 0)

    def _record(
        self, topic: str, key: Any, value: Any, partition: int | None, headers: Any
    ) -> RecordMetadata:
        self.records.append(Record(topic, key, value, partition, _headers(headers)))
        tp = TP(topic, partition or 0)
        return RecordMetadata(topic, tp.partition, tp, len(self.records) - 1, None, None)

    async def send(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        future.set_result(self._record(topic, key, value, partition, headers))
        return future

    async def send_and_wait(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> RecordMetadata:
        return self._record(topic, key, value, partition, headers)

    def send_soon(self, fut: Any) -> None:
        message = fut.message
        metadata = self._record(
            message.channel.get_topic_name(),
            message.key,
            message.value,
            message.partition,
            message.headers,
        )
        fut.set_result(metadata)


def _headers(headers: Any) -> dict[str, bytes]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {str(k): bytes(v) for k, v in items}


@dataclass
class Harness:
    radar: CrisisRadarApp
    producer: RecordingProducer
    registry: CollectorRegistry
    changelog_topic: str = field(init=False)

    def __post_init__(self) -> None:
        self.changelog_topic = f"{self.radar.settings.app_id}-{STATE_TABLE}-changelog"

    def sample(self, name: str, **labels: str) -> float:
        """A metric's current value; 0 for a labelled child that was never touched."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def processed(self, stage: str, outcome: str) -> float:
        return self.sample("crisis_radar_mentions_processed_total", stage=stage, outcome=outcome)

    def dead_letters(self, reason: str) -> float:
        return self.sample("crisis_radar_dead_letters_total", reason=reason)

    def sent(self, topic: str) -> list[Record]:
        return self.producer.on(topic)


@pytest.fixture(scope="session")
def vader() -> VaderScorer:
    """One VADER analyser for the session (it is stateless; loading its lexicon is slow)."""
    return VaderScorer()


@pytest.fixture
async def harness(vader: VaderScorer) -> AsyncIterator[Harness]:
    async with make_harness(TEST_SETTINGS, vader) as h:
        yield h


@asynccontextmanager
async def make_harness(settings: Settings, vader: VaderScorer) -> AsyncIterator[Harness]:
    """A harness around an app built from ``settings`` (the fixture uses TEST_SETTINGS)."""
    registry = CollectorRegistry()
    radar = create_app(settings, registry=registry, scorer=vader)
    radar.app.finalize()
    producer = RecordingProducer()
    radar.app.producer = cast(Any, producer)  # duck-typed stand-in for Faust's ProducerT
    radar.table.data.clear()
    radar.control_ready.set()  # no control topic here: live changes are applied directly
    yield Harness(radar=radar, producer=producer, registry=registry)
    radar.table.data.clear()
    _close_unstarted_consumer_loop(radar)


def _close_unstarted_consumer_loop(radar: CrisisRadarApp) -> None:
    """Iterating an agent's stream builds (but never starts) the app's Kafka consumer,
    whose consumer thread creates an event loop of its own; close it, or every test
    leaves an unclosed loop behind (a ResourceWarning)."""
    consumer = radar.app._consumer
    thread = getattr(consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.close()


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait for a condition. ``agent.put()`` returns once the agent has *taken* the value,
    which may be before it has finished processing it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.002)


def mention_bytes(**overrides: Any) -> bytes:
    """A valid raw mention event, as the input topic carries it."""
    event: dict[str, Any] = {
        "id": "m-1",
        "brand": "Acme",
        "text": "I love my new acme rocket, it is great!",
        "created_at": "2023-11-14T22:13:20Z",
        "platform": "x",
        "author": {"id": "u-1", "followers": 1200},
        "engagement": {"reposts": 3, "likes": 10, "replies": 1},
    }
    event.update(overrides)
    return json.dumps(event).encode("utf-8")


def scored_record(
    index: int,
    created_at: float,
    compound: float,
    brand: str = BRAND,
    text: str = "",
) -> dict[str, object]:
    """A record of the internal scored topic (what ``ingest`` forwards to ``detect``)."""
    mention = Mention(
        id=f"m-{index}",
        brand=brand,
        text=text or f"mention {index} of {brand}",
        created_at=created_at,
    )
    return to_wire(ScoredMention(mention=mention, compound=compound))
