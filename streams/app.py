"""The Faust application: topics, the brand-state table, ingest, the detect agent, /metrics.

Ingest reads raw mention bytes in batches (``streams.mentions.MentionReader``, a plain
consumer: one Faust event per mention cost a third of the worker's time), decodes and
validates them (bad input goes to the dead-letter topic with its reason), scores the
text and forwards it keyed by brand to the internal scored topic. ``detect`` reads that
topic (so every brand's mentions meet in one partition), runs the detection core's
``step``, writes the brand's new state to the table, and sends alert events.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import socket
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.exceptions import ConsumerNotStarted
from faust.streams import _current_event
from faust.types import TP
from prometheus_client import CollectorRegistry

from config.settings import Settings
from detector import alerts
from detector.core import AlertDecision, Outcome, Position, bucket_of, is_replay, step, tick
from detector.model import Rejection, admit_brand, parse_mention
from detector.sentiment import SentimentScorer, from_wire, score, to_wire
from detector.state import BrandState
from streams import control
from streams import scored as scored_batch
from streams.consumer_fixes import FETCH_MAX_WAIT_ATTRIBUTE, acknowledge_offsets
from streams.control import LiveConfig
from streams.kafka_util import read_offsets
from streams.mentions import MentionReader
from streams.metrics import WorkerMetrics

log = logging.getLogger("crisis_radar.worker")

STATE_TABLE = "brand-state"
REASON_HEADER = "crisis-radar-reason"
# Extra key of a scored record: wall time (Unix seconds) at which ingest received the input.
# ``from_wire`` ignores it; the detect agent uses it for the ingest-to-alert latency.
INGESTED_AT = "ingested_at"
SOURCE_POSITION = "source_position"
# An agent idle this long whose partition the consumer has fetched beyond the records it
# handed out has been left records behind (``SkippedOffsets.left_behind``); checked this
# often, the same offset fetched again at most this often.
LEFT_BEHIND_IDLE_SECONDS = 3.0
LEFT_BEHIND_CHECK_SECONDS = 1.0
LEFT_BEHIND_RETRY_SECONDS = 30.0
# Decoded brand states the detect agent keeps between batches (a day-old state takes
# about 13 kB decoded; its table value, JSON bytes, about 6 kB).
KEEP_DECODED_STATES = 1000
# A detect batch that has changed this many brand states writes them at once, whatever
# the time since the last checkpoint (bounds the memory of many brands).
MAX_CHANGED_STATES = 1000
# How often an idle detect agent checks whether a checkpoint is due.
CHECKPOINT_CHECK_SECONDS = 0.2
# The longest an agent works on a batch before it lets the event loop run other work.
TURN_SECONDS = 0.005
# How long the detect agent waits at start-up for the control topic's live changes.
CONTROL_START_TIMEOUT = 30.0


@dataclass
class CrisisRadarApp:
    """The Faust app and the objects its agents use, built from settings."""

    app: faust.App
    settings: Settings
    metrics: WorkerMetrics
    mentions_topic: Any
    scored_topic: Any
    alerts_topic: Any
    dead_letter_topic: Any
    table: Any
    ingest: Callable[[list[Any]], Awaitable[None]]  # a batch of input records
    reader: MentionReader
    detect: Any
    live: LiveConfig
    control_ready: asyncio.Event  # set once the control topic's records at start-up are applied


def faust_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "broker": settings.faust_broker,
        "store": settings.store,
        "datadir": settings.data_dir,
        "topic_partitions": settings.partitions,
        "broker_rebalance_timeout": settings.rebalance_timeout,
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout / 3),
        # The address other workers and clients use; a wildcard bind is not one.
        "web_host": socket.gethostname()
        if settings.web_host in ("0.0.0.0", "::")
        else settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "consumer_auto_offset_reset": "earliest",
        # Records a stream keeps unread in memory (Faust's default is 4096). A scored record
        # holds up to an ingest batch of mentions, so the default could hold hundreds of
        # megabytes; two batches ahead keep the agents busy.
        "stream_buffer_maxsize": 2 * settings.batch_size,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    if settings.producer_max_batch_size:
        options["producer_max_batch_size"] = settings.producer_max_batch_size
    return options


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    scorer: SentimentScorer | None = None,
) -> CrisisRadarApp:
    app = faust.App(settings.app_id, **faust_options(settings))
    setattr(app, FETCH_MAX_WAIT_ATTRIBUTE, settings.fetch_max_wait)
    metrics = WorkerMetrics(registry or CollectorRegistry(), settings.metrics)
    scorer = scorer or settings.sentiment.scorer()
    raw = {"key_type": bytes, "value_type": bytes}
    mentions_topic = app.topic(settings.mentions_topic, **raw)
    alerts_topic = app.topic(settings.alerts_topic, **raw)
    dead_letter_topic = app.topic(settings.dead_letter_topic, **raw)
    scored_topic = app.topic(
        settings.scored_topic,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",  # see streams.scored
        partitions=settings.partitions,
        internal=True,
    )
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=settings.partitions,
        # Values are the state's JSON as bytes (``encode_state``), kept so in the store:
        # half the memory of the decoded value, and the changelog record is the same JSON.
        # Recovery decodes changelog records with the serializer of ``value_type`` (not
        # the schema's): bytes keeps them as they are.
        value_type=bytes,
        schema=faust.Schema(key_serializer="json", value_serializer="raw"),
    )
    writes = ChangelogWrites(table)

    async def dead_letter(
        message: Any, raw_value: bytes, reason: str, detail: str, source: str | None = None
    ) -> None:
        # An event over the size limit is kept in part, so that the dead letter itself
        # stays sendable; its full size is in a header.
        kept = raw_value[: settings.limits.max_event_bytes]
        headers = [
            (REASON_HEADER, reason.encode()),
            ("crisis-radar-detail", detail.encode("utf-8", "replace")[:1000]),
            (
                "crisis-radar-source",
                (source or f"{message.topic}/{message.partition}/{message.offset}").encode(),
            ),
            ("crisis-radar-original-bytes", str(len(raw_value)).encode()),
        ]
        try:
            await send_delivered(dead_letter_topic, key=message.key, value=kept, headers=headers)
        except Exception as exc:  # noqa: BLE001 - never let a dead letter stop the agent
            metrics.processed("ingest", "dead_letter_failed")
            log.error("could not dead-letter %s: %r", headers[2][1].decode(), exc)
            return
        metrics.dead_letters.labels(reason=reason).inc()

    async def ingest_one(
        message: Any,
        accepted: list[tuple[str, dict[str, Any]]],
        languages: dict[tuple[str | None, bool], int],
    ) -> None:
        """Decode, validate and score the mention of one input record, added to
        ``accepted`` as (brand, scored mention) and counted in ``languages``; a rejected
        one is dead-lettered."""
        raw_value = message.value if isinstance(message.value, bytes) else b""
        received = time.time()
        parsed = parse_mention(raw_value, now=received, limits=settings.limits)
        if isinstance(parsed, Rejection):
            metrics.processed("ingest", "rejected")
            log.warning(
                "dead-lettered %s/%s/%s: %s",
                message.topic,
                message.partition,
                message.offset,
                parsed,
            )
            await dead_letter(message, raw_value, parsed.reason.value, parsed.detail)
            return
        scored = score(parsed, scorer)
        language = (scored.lang, scored.scored)
        languages[language] = languages.get(language, 0) + 1
        wire = to_wire(scored)
        wire[INGESTED_AT] = received
        # Where the mention was read: a replay of this agent after a crash forwards it
        # again at a new offset of the scored topic, but with the same source position.
        wire[SOURCE_POSITION] = [message.partition, message.offset]
        accepted.append((parsed.brand, wire))

    turns = Turns(TURN_SECONDS)

    async def fill_gap(agent: str, gap: Gap, handle: Callable[[Any], Awaitable[None]]) -> None:
        """Hands the records of a gap the consumer left (see ``SkippedOffsets``) to the
        agent, read directly from the broker, before the record that revealed it."""
        try:
            records = await read_offsets(
                settings.broker_list, gap.topic, gap.partition, gap.first, gap.last
            )
        except Exception as exc:  # noqa: BLE001 - the loss is reported, the agent goes on
            metrics.consumer_gaps.labels(agent=agent, outcome="lost").inc(gap.size)
            log.error(
                "%s: offsets %d to %d of %s/%d could not be read again (%r); records among "
                "them are lost (see docs/delivery.md)",
                agent,
                gap.first,
                gap.last,
                gap.topic,
                gap.partition,
                exc,
            )
            return
        for record in records:
            await handle(record)
        metrics.consumer_gaps.labels(agent=agent, outcome="read_again").inc(len(records))
        log.warning(
            "%s: read %d records of offsets %d to %d of %s/%d again directly",
            agent,
            len(records),
            gap.first,
            gap.last,
            gap.topic,
            gap.partition,
        )

    async def in_order(
        events: list[Any],
        skipped: SkippedOffsets,
        handle: Callable[[Any], Awaitable[None]],
        starting: Callable[[Any], None] = lambda event: None,
    ) -> None:
        """Hand each event's record to ``handle``, in order, after the records of a gap it
        reveals (read again directly, see ``SkippedOffsets``); ``starting`` is told of each
        event first."""
        for event in events:
            starting(event)
            gap = await skipped.check(event)
            if gap is not None:
                await fill_gap(skipped.name, gap, handle)
                # Acknowledged with the batch's events: see ``acknowledge_offsets``.
                checkpoints.covered.append(GapAcknowledgement(app.consumer, gap))
            await handle(event.message)

    detect_skipped = SkippedOffsets(app, "detect", settings.scored_topic)

    @app.timer(LEFT_BEHIND_CHECK_SECONDS)
    async def fetch_left_behind() -> None:
        """Has the consumer passed records of the idle detect agent's partition without
        handing them out? Then it reads them again (see ``SkippedOffsets.left_behind``)."""
        skipped = detect_skipped
        for tp, first, position in await skipped.left_behind():
            metrics.consumer_gaps.labels(agent=skipped.name, outcome="fetched_again").inc(
                position - first
            )
            log.warning(
                "%s: the consumer passed offsets %d to %d of %s/%d without handing them "
                "out; fetching them again (see docs/delivery.md)",
                skipped.name,
                first,
                position - 1,
                tp.topic,
                tp.partition,
            )
            await app.consumer.seek(tp, first)

    async def ingest_batch(records: list[Any]) -> None:
        """Ingest a batch of input records (each partition's in offset order); it ends
        once the broker has every scored record the batch sent, and only then are its
        offsets committed (see ``MentionReader``)."""
        by_source: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        languages: dict[tuple[str | None, bool], int] = {}
        for record in records:
            await ingest_one(record, by_source.setdefault(record.partition, []), languages)
            await turns.take()
        for (lang, scored), n in languages.items():
            metrics.observe_language(lang, scored, n)
        # The consumer hands over each input partition's records in a run of their own;
        # interleaved by event time (each partition's keeping its order), a brand's
        # mentions reach the scored partition among those of the same time of the other
        # brands there, as they would in a stream read record by record, so the
        # partition's clock (``PartitionClocks``) does not run ahead of them.
        accepted = list(heapq.merge(*by_source.values(), key=_event_time))
        # One record per scored partition (see streams.scored), all sent, then waited for.
        sends = [
            await scored_topic.send(value=value, partition=partition)
            for partition, value in scored_batch.pack(accepted, settings.partitions)
        ]
        for sent in sends:
            await sent
        metrics.processed("ingest", "accepted", len(accepted))

    reader = MentionReader(
        ingest_batch,
        topic=settings.mentions_topic,
        brokers=settings.broker_list,
        group_id=settings.ingest_group,
        batch_size=settings.batch_size,
        session_timeout=settings.session_timeout,
        rebalance_timeout=settings.rebalance_timeout,
        fetch_max_wait=settings.fetch_max_wait,
    )

    @app.task
    async def start_reader() -> None:
        # A child of the app: it stops (finishing and committing its batch) before the
        # producer its batches send with.
        await app.add_runtime_dependency(reader)

    live = LiveConfig(settings.thresholds)
    control_ready = asyncio.Event()

    def on_control(kind: str, outcome: str) -> None:
        counts = {scope: len(o.values) for scope, o in live.overrides.items()}
        metrics.observe_control(kind, outcome, counts)

    @app.task
    async def follow_control() -> None:
        await control.follow(
            settings.broker_list, settings.control_topic, live, on_control, control_ready
        )

    async def control_read() -> None:
        """Live changes present at start-up apply from the first mention on; a control
        topic that cannot be read in time is waited for no longer (the file applies)."""
        try:
            await asyncio.wait_for(control_ready.wait(), CONTROL_START_TIMEOUT)
        except TimeoutError:
            log.warning(
                "control topic not read within %.0f s; detecting with the config file's "
                "thresholds until it is",
                CONTROL_START_TIMEOUT,
            )

    async def corrupt(message: Any, raw_value: bytes, exc: Exception) -> None:
        metrics.processed("detect", "corrupt")
        log.error("unreadable record on %s: %r", message.topic, exc)
        await dead_letter(message, raw_value, "corrupt_internal", str(exc))

    async def detect_one(message: Any, value: Any) -> None:
        """Apply one scored mention to its brand's state in ``batch``."""
        try:
            scored = from_wire(value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            await corrupt(message, repr(value).encode(), exc)
            return
        brand = scored.mention.brand
        position = _source_position(value) or Position(message.partition, message.offset)
        known = batch.known(brand)
        refused = None if known else admit_brand(known, batch.brands_held(), settings.limits)
        if refused is not None:
            # The mention as decoded; its original bytes stay at the source position.
            metrics.processed("detect", "rejected")
            source = f"{settings.mentions_topic}/{position.partition}/{position.offset}"
            log.warning("dead-lettered %s: %s", source, refused)
            await dead_letter(
                message,
                json.dumps(value).encode(),
                refused.reason.value,
                refused.detail,
                source,
            )
            return
        state = batch.get(brand)
        if is_replay(state, position):
            batch.count(Outcome.DUPLICATE)
            return
        result = step(state, scored, live.for_brand(brand), position, owned=True)
        batch.put(brand, result.state)
        batch.count(result.outcome, brand, scored.mention.created_at)
        # Alerts first, state second: see ``emit``.
        ingested_at = _ingested_at(value)
        if result.decisions:
            await emit(brand, result.decisions, ingested_at)
        if ingested_at is not None:
            batch.decided.append(time.time() - ingested_at)
        for other in clocks.advance(message.partition, brand, scored.mention.created_at):
            await tick_brand(other, scored.mention.created_at)

    async def detect_record(record: Any) -> None:
        """Apply the scored mentions of one record of the scored topic."""
        try:
            values = scored_batch.unpack(record.value)
        except (TypeError, ValueError) as exc:
            await corrupt(record, bytes(record.value or b""), exc)
            return
        for value in values:
            await detect_one(record, value)
            await turns.take()
            if len(batch.touched) >= MAX_CHANGED_STATES:
                await checkpoint()

    @app.agent(scored_topic, concurrency=1)
    async def detect(stream: Any) -> None:
        await control_read()
        detect_skipped.waiting()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            # Each event keeps a reference of ours until a checkpoint covers it (see
            # ``checkpoint``): ``take_events`` acknowledges a batch's events when the batch
            # ends, also when it ends with an exception, and an event still referenced is
            # not acknowledged, so its offset is not committed and a restart reads it again.
            for event in events:
                event.message.incref()
            with detect_skipped.busy():
                async with checkpoints.lock:
                    await detect_batch(events)
                    checkpoints.covered.extend(events)
                    if checkpoints.due():
                        await checkpoint()

    async def detect_batch(events: list[Any]) -> None:
        """Apply a batch of scored records in order, each brand's state in hand updated in
        place by every mention (a record holds up to an ingest batch of them), each
        mention's alerts sent before the next mention."""
        generation = max(event.message.generation_id for event in events)
        if generation != checkpoints.generation:
            forget_changes(generation)
        batch.begin()

        def starting(event: Any) -> None:
            # Table writes of this record, or of the records of a gap it reveals (same
            # partition), go to the changelog partition of this event.
            batch.event = event

        await in_order(events, detect_skipped, detect_record, starting)
        batch.end()
        # The batch's decisions are on the broker (its states at the next checkpoint).
        for outcome, n in batch.outcomes.items():
            metrics.processed("detect", outcome.value, n)
        now = time.time()
        for brand, event_times in batch.judged.items():
            metrics.observe_judged_all(brand, event_times, now)
        metrics.observe_ingest_to_decision(batch.decided)
        batch.counted()

    def forget_changes(generation: int) -> None:
        """A new consumer generation (a rebalance): the partitions may have moved, so the
        states changed since the last checkpoint are dropped unwritten and the events they
        cover are never acknowledged; whoever owns a partition now reads them again from
        its committed offset onto the table's state."""
        if batch.touched or checkpoints.covered:
            log.warning(
                "detect: consumer generation %s: dropping the unwritten states of %d brands; "
                "their %d records are read again",
                generation,
                len(batch.touched),
                len(checkpoints.covered),
            )
        batch.forget()
        checkpoints.covered.clear()
        checkpoints.generation = generation

    async def checkpoint() -> None:
        """Write the states changed since the last checkpoint; once the broker has them,
        acknowledge the events they cover, so that committed offsets never run ahead of
        the states on the broker. Called with ``checkpoints.lock`` held.

        The wait for the broker happens in a task of its own while the agent goes on
        with the next batches: on the embedded broker 200 changelog records take 0.2 to
        0.8 s to arrive, time in which detection stood still. At most one checkpoint is
        on its way: the next one first waits for it (and fails if it failed)."""
        await checkpoints.settled()
        checkpoints.last = time.monotonic()
        if app.consumer_generation_id != checkpoints.generation and checkpoints.covered:
            forget_changes(app.consumer_generation_id)
            return
        changed = batch.touched_states()
        batch.write()
        for brand, state in changed:
            metrics.observe_state(state, live.for_brand(brand))
        covered, checkpoints.covered = checkpoints.covered, []
        # See ``ChangelogWrites``.
        checkpoints.on_the_way(acknowledge(writes.take(), covered, checkpoints.generation))

    async def acknowledge(delivered: list[Any], covered: list[Any], generation: int | None) -> None:
        """Acknowledge a checkpoint's events once its writes are on the broker, unless a
        rebalance came first: its partitions may then have been recovered elsewhere
        without those writes, so the events are left to be read again."""
        for future in delivered:
            await future
        if app.consumer_generation_id != generation:
            log.warning(
                "detect: consumer generation %s: %d records of a checkpoint that reached "
                "the broker after the rebalance are read again",
                app.consumer_generation_id,
                len(covered),
            )
            return
        for event in covered:
            event.ack()

    checkpoints = Checkpoints(settings.checkpoint_seconds)

    @app.task
    async def checkpoint_when_idle() -> None:
        """Checkpoints when no batch comes to do it: the last changes of a stream that
        stopped, and while Faust waits for every event to be acknowledged (when
        partitions are revoked, and when the worker stops). A loop of its own, not a
        Faust timer: timers end as soon as the app begins to stop, before that wait."""
        while True:
            await asyncio.sleep(CHECKPOINT_CHECK_SECONDS)
            if checkpoints.covered and not checkpoints.lock.locked() and checkpoints.due():
                async with checkpoints.lock:
                    await checkpoint()

    async def emit(
        brand: str, decisions: list[AlertDecision], ingested_at: float | None = None
    ) -> None:
        label = metrics.brand_label(brand)
        for decision in decisions:
            cloud_event = alerts.to_event(decision, settings.alert_source)
            # The caller writes the state that no longer holds this decision only once the
            # broker has it. A crash in between replays the mention and sends the same event
            # again; the other order could lose it for good.
            await send_delivered(alerts_topic, key=brand.encode(), value=alerts.encode(cloud_event))
            metrics.alerts.labels(brand=label, kind=decision.kind, phase=decision.phase.value).inc()
            metrics.observe_alert_sent(ingested_at, time.time())
            log.info(
                "alert %s %s %s for %s (%s)",
                decision.kind,
                decision.phase.value,
                decision.alert_id,
                brand,
                decision.severity,
            )

    async def tick_brand(brand: str, event_time: float) -> None:
        state = batch.get(brand)
        if state is None:
            return
        thresholds = live.for_brand(brand)
        result = tick(state, event_time, thresholds)
        if result.state is state:
            return
        await emit(brand, result.decisions)
        batch.put(brand, result.state)

    batch = BrandBatch(table)
    clocks = PartitionClocks(settings.thresholds.defaults.bucket_seconds)
    metrics.consumer_lag.source = lambda: {**consumer_lag(app, {scored_topic}), **reader.lag()}

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        body, content_type = metrics.exposition()
        return web.bytes(body, headers={"Content-Type": content_type})

    return CrisisRadarApp(
        app=app,
        settings=settings,
        metrics=metrics,
        mentions_topic=mentions_topic,
        scored_topic=scored_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=dead_letter_topic,
        table=table,
        ingest=ingest_batch,
        reader=reader,
        detect=detect,
        live=live,
        control_ready=control_ready,
    )


async def send_delivered(topic: Any, **kwargs: Any) -> None:
    """Send one record and wait until the broker has it. An agent moves on (and its
    event's offset becomes committable) only afterwards: Faust's flush before a commit
    may give up early (see ``ChangelogWrites``), so a crash could otherwise lose a record
    still in the producer's buffer while its input offset is committed."""
    sent = await topic.send(**kwargs)
    await sent


@dataclass(frozen=True)
class Gap:
    """Offsets ``first`` to ``last`` of a partition that the consumer did not hand out."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class Turns:
    """Lets the event loop run other work (fetches handed over, produce requests and
    their answers, the other agent) at least every ``seconds`` of an agent's work on a
    batch: a batch of hundreds of mentions otherwise holds the loop for up to 0.3 s, and
    every record on its way to or from the broker waits that long."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since = time.monotonic()

    async def take(self) -> None:
        if time.monotonic() - self.since >= self.seconds:
            await asyncio.sleep(0)
            self.since = time.monotonic()


@dataclass(frozen=True)
class GapAcknowledgement:
    """Acknowledges, at a checkpoint, the offsets of a gap whose records the agent read
    again directly: the consumer never handed them out, so they are not acknowledged
    otherwise, and commits would stop before them."""

    consumer: Any
    gap: Gap

    def ack(self) -> None:
        gap = self.gap
        acknowledge_offsets(self.consumer, TP(gap.topic, gap.partition), gap.first, gap.last)


class Checkpoints:
    """When the detect agent writes the states it changed (see ``checkpoint``): every
    ``seconds``, and the events that the next checkpoint covers."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = asyncio.Lock()  # held by a batch, and by a checkpoint
        self.last = time.monotonic()
        self.covered: list[Any] = []  # events applied since the last checkpoint
        self.generation: int | None = None  # consumer generation of those events
        self.in_flight: asyncio.Future[None] | None = None  # the last checkpoint's wait

    def due(self) -> bool:
        """``seconds`` since the last checkpoint, and that one's writes on the broker: when
        the broker takes longer than the interval to take a checkpoint's writes, the next
        one comes when it has them, instead of detection waiting for it."""
        if self.in_flight is not None and not self.in_flight.done():
            return False
        return time.monotonic() - self.last >= self.seconds

    def on_the_way(self, acknowledged: Awaitable[None]) -> None:
        """Run a checkpoint's wait for the broker and its acknowledgements as a task."""
        self.in_flight = asyncio.ensure_future(acknowledged)
        self.in_flight.add_done_callback(_log_failed_checkpoint)

    async def settled(self) -> None:
        """Wait until the last checkpoint's events are acknowledged; raise what its wait
        raised (its events stay unacknowledged, so a restart reads them again)."""
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            await in_flight


def _log_failed_checkpoint(in_flight: asyncio.Future[None]) -> None:
    if not in_flight.cancelled() and in_flight.exception() is not None:
        log.error(
            "detect: a checkpoint's states did not reach the broker (%r); its records are "
            "not acknowledged and are read again after a restart",
            in_flight.exception(),
        )


class BrandBatch:
    """The brand states the detect agent works on: each read from the table once (on
    first use) and kept as an object, updated in place, and written back at the next
    checkpoint; until then the changed ones stay in hand for the batches that follow.

    It also keeps the decoded states of the ``keep`` brands used last that are as the
    table has them, each with the table value it equals: a batch takes such a state
    instead of decoding the table's value only while the table still holds that very
    value (a rebalance or a table recovery puts new ones there).

    A table write finds its changelog partition from the current event, a context
    variable of faust-streaming 0.15.3 that the stream sets in the task iterating it;
    ``take_events`` iterates in a task of its own, so each write sets it here to the
    last event that touched the brand (a brand's records, and the ticks of its
    partition's clock, all come from the brand's partition)."""

    def __init__(self, table: Any, keep: int = KEEP_DECODED_STATES) -> None:
        self.table = table
        self.keep = keep
        self.kept: OrderedDict[str, tuple[Any, BrandState]] = OrderedDict()
        self.event: Any = None  # the event being applied
        self.forget()
        self.counted()

    def forget(self) -> None:
        """Drop every state in hand, changed or not."""
        self.kept.clear()
        self.states: dict[str, BrandState | None] = {}
        self.sources: dict[str, Any] = {}  # brand -> the table value its state was read from
        self.touched: dict[str, Any] = {}  # brand -> the last event that changed it
        self.stored: set[str] = set()  # brands with a state in the table or made here
        self.created = 0  # brands given a first state since the last write

    def counted(self) -> None:
        """Start counting the outcomes of a new batch."""
        self.outcomes: dict[Outcome, int] = {}
        self.judged: dict[str, list[float]] = {}  # brand -> event times of mentions applied
        self.decided: list[float] = []  # seconds from ingest to each mention's decisions

    def begin(self) -> None:
        """Start a new batch."""
        self.event = None

    def end(self) -> None:
        """End a batch: the states it read but did not change go back to the keep."""
        for brand in [brand for brand in self.states if brand not in self.touched]:
            state, source = self.states.pop(brand), self.sources.pop(brand)
            if state is not None:
                self._keep(brand, source, state)

    def count(self, outcome: Outcome, brand: str | None = None, event_time: float = 0.0) -> None:
        """Count a mention's outcome; a mention applied to ``brand`` also counts as judged."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if brand is not None:
            self.judged.setdefault(brand, []).append(event_time)

    def get(self, brand: str) -> BrandState | None:
        if brand not in self.states:
            stored = self.table.get(brand)
            if stored is not None:
                self.stored.add(brand)
            kept = self.kept.pop(brand, None)
            if kept is not None and kept[0] is stored:
                self.states[brand] = kept[1]
            else:
                self.states[brand] = _load_state(stored, brand)
            self.sources[brand] = stored
        return self.states[brand]

    def _keep(self, brand: str, value: Any, state: BrandState) -> None:
        self.kept[brand] = (value, state)
        self.kept.move_to_end(brand)
        while len(self.kept) > self.keep:
            self.kept.popitem(last=False)

    def put(self, brand: str, state: BrandState) -> None:
        self.states[brand] = state
        self.touched[brand] = self.event
        if brand not in self.stored:
            self.stored.add(brand)
            self.created += 1

    def known(self, brand: str) -> bool:
        """Whether the brand has a state (in the table, or made since the last write)."""
        self.get(brand)
        return brand in self.stored

    def brands_held(self) -> int:
        """Brands with a state: the table's and those made since the last write."""
        return len(self.table) + self.created

    def touched_states(self) -> list[tuple[str, BrandState]]:
        touched = [(brand, self.states[brand]) for brand in self.touched]
        return [(brand, state) for brand, state in touched if state is not None]

    def write(self) -> None:
        """Write the changed states to the table; they go to the keep."""
        for brand, state in self.touched_states():
            token = _current_event.set(weakref.ref(self.touched[brand]))
            try:
                value = self.table[brand] = encode_state(state)
            finally:
                _current_event.reset(token)
            # The store keeps the value it was given, so it is what ``get`` compares.
            self._keep(brand, value, state)
            del self.states[brand]
            # The value it was read from is no longer the table's: not kept alive here.
            self.sources.pop(brand, None)
        self.touched.clear()
        self.created = 0


class SkippedOffsets:
    """Finds the offsets the consumer leaves out of a partition's records.

    faust-streaming 0.15.3 can leave records out: when flow control or the consumer
    generation changes while it hands out a fetched batch (seen at the end of table
    recovery, as a worker starts), it drops the rest of the batch without reading it
    again, and counts the dropped offsets as a gap that commits may pass. Such records
    would be lost: a restart does not read them again either once the commit passed
    them. ``check`` returns the gap, which the agent then reads directly from the broker
    and handles before the record that revealed it, so the records of the partition are
    still handled in order. Offsets also go missing without records being lost
    (compaction, transaction markers): reading them again finds nothing."""

    def __init__(self, app: faust.App, name: str, topic: str) -> None:
        self.app = app
        self.name = name
        self.topic = topic
        self.generation: int | None = None
        self.expected: dict[Any, int] = {}  # TP -> next offset
        self.working = True  # until the agent waits for records: see ``waiting``
        self.last_work = time.monotonic()
        self.sought: dict[Any, tuple[int, float]] = {}  # TP -> (offset, when) of a seek

    def waiting(self) -> None:
        """The agent now waits for its stream's records (from then on, an idle agent is
        one that has been handed nothing)."""
        self.working = False
        self.last_work = time.monotonic()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Around the agent's work on a batch."""
        self.working = True
        try:
            yield
        finally:
            self.working = False
            self.last_work = time.monotonic()

    def _same_generation(self) -> None:
        if self.app.consumer_generation_id != self.generation:
            self.generation = self.app.consumer_generation_id
            self.expected.clear()  # a new assignment starts at the committed offsets
            self.sought.clear()

    async def left_behind(self) -> list[tuple[Any, int, int]]:
        """(partition, first offset, consumer position) of each assigned partition whose
        records from the first offset on the consumer has fetched (its position is
        beyond them) but never handed out, while the agent has been idle for
        ``LEFT_BEHIND_IDLE_SECONDS``. Such a tail is what the dropped rest of a fetched
        batch looks like when no later record reveals it (``check``): it would wait for
        a restart. The same offset is sought again at most every ``LEFT_BEHIND_RETRY_SECONDS``."""
        now = time.monotonic()
        consumer = getattr(self.app, "_consumer", None)
        if (
            consumer is None
            or self.working
            or now - self.last_work < LEFT_BEHIND_IDLE_SECONDS
            or not consumer.flow_active
        ):
            return []
        self._same_generation()
        found = []
        for tp in sorted(consumer.assignment()):
            if tp.topic != self.topic:
                continue
            first = self.expected.get(tp, consumer._committed_offset.get(tp))
            if first is None:
                continue
            position = await consumer.position(tp)
            if position is None or position <= first:
                continue
            offset, when = self.sought.get(tp, (-1, 0.0))
            if offset == first and now - when < LEFT_BEHIND_RETRY_SECONDS:
                continue
            self.sought[tp] = (first, now)
            found.append((tp, first, position))
        return found

    async def _start(self, tp: Any) -> int | None:
        """The first offset of ``tp`` the consumer is due to hand out in this generation:
        the committed one, or the partition's first when nothing was committed (Faust
        keeps a committed 0 as unknown)."""
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return None
        committed: int | None = consumer._committed_offset.get(tp)
        if committed is None:
            try:
                committed = (await consumer.earliest_offsets(tp)).get(tp)
            except ConsumerNotStarted:  # an agent run on its own, in a test context
                return None
        return committed

    async def check(self, event: Any) -> Gap | None:
        """The offsets the consumer left out before ``event``'s record, if any: between
        it and the record handed out before it, or, for the first record of a partition
        in a generation, between it and the offset the consumer started from."""
        message = event.message
        tp, offset = message.tp, message.offset
        self._same_generation()
        expected = self.expected.get(tp)
        if expected is None:
            expected = await self._start(tp)
        gap = None
        if expected is not None and offset > expected:
            gap = Gap(tp.topic, tp.partition, expected, offset - 1)
            log.error(
                "%s: offsets %d to %d of %s/%d were not handed out by the consumer; "
                "reading them again directly (see docs/delivery.md)",
                self.name,
                gap.first,
                gap.last,
                gap.topic,
                gap.partition,
            )
        if expected is None or offset >= expected:
            self.expected[tp] = offset + 1
        return gap


class ChangelogWrites:
    """Keeps the futures of a table's changelog writes, so that an agent can wait until
    the states an event wrote are on the broker before it moves on to the next event.

    Faust buffers changelog writes and commits input offsets after flushing that
    buffer, but its flush gives up after 0.1 s without progress (faust-streaming
    0.15.3, ``ProducerBuffer.flush_atmost``). With one record per batch (the embedded
    broker's setting) the buffer often holds a hundred writes, so an offset could be
    committed while the states of the events before it were still in the buffer, and
    a crash then lost them for good: the events are not read again."""

    def __init__(self, table: Any) -> None:
        self.pending: list[Any] = []
        send_changelog = table.send_changelog

        def send_and_keep(*args: Any, **kwargs: Any) -> Any:
            future = send_changelog(*args, **kwargs)
            self.pending.append(future)
            return future

        table.send_changelog = send_and_keep

    def take(self) -> list[Any]:
        """The futures of the writes sent since the last call."""
        pending, self.pending = self.pending, []
        return pending


class PartitionClocks:
    """The event-time clock of each input partition (the newest event time seen on it).
    Each time a partition's clock enters a new bucket, every other brand seen on that
    partition is ticked to it, so that alerts resolve and silences are noticed even for
    a brand whose stream has stopped. Ticks happen inside the agent, on the brands of the
    event's own partition, so the table's changelog stays co-partitioned."""

    def __init__(self, bucket_seconds: int):
        self.bucket_seconds = bucket_seconds
        self.clock: dict[int, float] = {}
        self.ticked: dict[int, int] = {}
        self.brands: dict[int, set[str]] = {}

    def advance(self, partition: int, brand: str, event_time: float) -> list[str]:
        """A mention of ``brand`` at ``event_time`` on ``partition``: the brands to tick to
        ``event_time`` (in order), none unless the partition's clock entered a new bucket."""
        self.brands.setdefault(partition, set()).add(brand)
        if event_time <= self.clock.get(partition, float("-inf")):
            return []
        self.clock[partition] = event_time
        bucket = bucket_of(event_time, self.bucket_seconds)
        previous = self.ticked.setdefault(partition, bucket)
        if bucket <= previous:
            return []
        self.ticked[partition] = bucket
        return sorted(self.brands[partition] - {brand})


def consumer_lag(app: faust.App, topics: set[Any]) -> dict[tuple[str, int], int]:
    """Lag per assigned partition of the agents' input topics: the partition's high-water
    mark (from the consumer's last fetch) minus the next offset Faust will commit. Empty
    while the consumer is not running. On the embedded broker the high-water mark can be
    wrong after multi-record batches (see the README), and so can this value."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None:
        return {}
    names = {name for topic in topics for name in topic.topics}
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic not in names:
            continue
        highwater = consumer.highwater(tp)
        committed = consumer._committed_offset.get(tp)  # next offset to consume, or None
        if highwater is None:
            continue
        lags[(tp.topic, tp.partition)] = highwater - (committed or 0)
    return lags


def _source_position(value: Any) -> Position | None:
    """The input topic's (partition, offset) the ingest agent read the mention from.
    Offsets of one input partition reach a brand in order, so the core's per-partition
    "last applied offset" skips the replays of both agents."""
    pair = value.get(SOURCE_POSITION) if isinstance(value, dict) else None
    if (
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
    ):
        return Position(pair[0], pair[1])
    return None


def _event_time(accepted: tuple[str, dict[str, Any]]) -> float:
    created_at: float = accepted[1]["created_at"]
    return created_at


def _ingested_at(value: Any) -> float | None:
    stamp = value.get(INGESTED_AT) if isinstance(value, dict) else None
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return float(stamp)
    return None


# A brand's state in the table and on its changelog: its JSON, deflated (zlib, level 1).
# A day-old state's 6 to 9 kB of JSON become 2.5 to 3.7 kB, for about 35 us more per
# write (once per brand and checkpoint) and 15 us per read that misses the decoded keep;
# the table holds every brand's value in memory (docs/performance.md).
STATE_COMPRESSION = 1
_DEFLATED = b"\x78"  # zlib's header byte; a JSON object starts with "{"


def encode_state(state: BrandState) -> bytes:
    """A brand's state as the table keeps it and its changelog carries it: deflated JSON."""
    return encode_state_value(state.to_dict())


def encode_state_value(value: dict[str, Any]) -> bytes:
    """``encode_state`` of a state's ``BrandState.to_dict`` value."""
    return zlib.compress(orjson.dumps(value), STATE_COMPRESSION)


def state_json(stored: bytes | bytearray) -> bytes | bytearray:
    """The JSON of a stored state: inflated if deflated, else as it is (plain JSON, as
    releases before wrote it)."""
    if stored[:1] != _DEFLATED:
        return stored
    try:
        return zlib.decompress(stored)
    except zlib.error as exc:
        raise ValueError(f"a brand state that does not inflate: {exc}") from exc


def decode_state(stored: Any) -> dict[str, Any]:
    """The serialised state (``BrandState.to_dict``) of a table value: deflated JSON,
    plain JSON bytes (as releases before it wrote them), or the decoded value itself."""
    if isinstance(stored, bytes | bytearray):
        stored = state_json(stored)
    value = orjson.loads(stored) if isinstance(stored, bytes | bytearray | str) else stored
    if not isinstance(value, dict):
        raise TypeError(f"a brand state is a JSON object, not {type(value).__name__}")
    return value


def _load_state(stored: Any, brand: str) -> BrandState | None:
    if stored is None:
        return None
    try:
        return BrandState.from_dict(decode_state(stored))
    except (KeyError, TypeError, ValueError) as exc:
        log.error("state of brand %r is unreadable (%r); starting it afresh", brand, exc)
        return None
